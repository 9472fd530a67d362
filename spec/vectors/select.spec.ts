import { describe, expect, it } from "vitest";
import { compileFilter } from "../../lib/vectors/filter.js";
import { jsKernel, type Kernel, wasmKernel } from "../../lib/vectors/kernel.js";
import { Matrix } from "../../lib/vectors/matrix.js";
import { MAX_SELECTIONS } from "../../lib/vectors/selection.js";
import { randomVectors } from "./reference.js";

const kernels: Kernel[] = [wasmKernel()!, jsKernel()];
const id = (i: number) => `v${String(i).padStart(5, "0")}`;
const meta = (i: number) => ({ g: i % 10 });

function build(kernel: Kernel, vectors: Float32Array[], int8: boolean, keep = (_: number) => true): Matrix {
  const m = new Matrix(kernel, vectors[0]!.length, { int8, capacity: 4, int8MinBytes: 0 });
  vectors.forEach((v, i) => {
    if (keep(i)) m.set(id(i), v, meta(i));
  });
  return m;
}

const results = (m: Matrix, r: { rows: Int32Array; scores: Float32Array }) =>
  Array.from(r.rows, (row, i) => [m.ids[row], r.scores[i]]);

describe("filtered Matrix search", () => {
  for (const int8 of [false, true]) {
    it(`scans only selected rows, with the results of a matrix holding just them, on both kernels (int8=${int8})`, () => {
      for (const [n, d] of [
        [300, 5],
        [700, 96],
        [200, 385],
      ] as const) {
        const vectors = randomVectors(n, d, n + d);
        // Duplicates: ties broken by id, as everywhere.
        for (let i = 0; i < n; i += 7) vectors[i] = vectors[(i + 10) % n]!;
        const q = randomVectors(1, d, 99)[0]!;
        const perKernel = kernels.map((kernel) => {
          const full = build(kernel, vectors, int8);
          const out = [];
          for (const [filter, keep] of [
            [{ g: { $lt: 5 } }, (i: number) => i % 10 < 5],
            [{ g: 3 }, (i: number) => i % 10 === 3],
            [{ g: { $in: [0, 9] } }, (i: number) => i % 10 === 0 || i % 10 === 9],
          ] as const) {
            const only = build(kernel, vectors, int8, keep);
            const selection = full.select(compileFilter(filter)!);
            expect(selection.length).toBe(only.n);
            for (const k of [1, 10, 100, n]) {
              const got = results(full, full.search(q, k, selection));
              expect(got, `${kernel.name} n=${n} d=${d} k=${k}`).toEqual(results(only, only.search(q, k)));
              out.push(got);
            }
          }
          return out;
        });
        expect(perKernel[0]).toEqual(perKernel[1]);
      }
    });
  }

  it("an empty selection returns nothing without scanning", () => {
    const m = build(jsKernel(), randomVectors(10, 4, 1), false);
    const r = m.search(Float32Array.of(1, 0, 0, 0), 5, new Int32Array(0));
    expect(r.rows.length).toBe(0);
  });
});

describe("Matrix selections", () => {
  it("are reused while no row changes, rebuilt after any change", () => {
    const vectors = randomVectors(50, 4, 2);
    const m = build(jsKernel(), vectors, false);
    const filter = compileFilter({ g: { $gte: 8 } })!;
    const first = m.select(filter);
    expect(Array.from(first, (r) => m.ids[r])).toEqual(vectors.flatMap((_, i) => (i % 10 >= 8 ? [id(i)] : [])));
    expect(m.select(compileFilter({ g: { $gte: 8 } })!)).toBe(first);
    m.set(id(0), vectors[0]!, { g: 9 });
    const second = m.select(filter);
    expect(second).not.toBe(first);
    expect(Array.from(second, (r) => m.ids[r])).toContain(id(0));
    m.remove(id(8));
    expect(Array.from(m.select(filter), (r) => m.ids[r])).not.toContain(id(8));
  });

  it(`keep at most ${MAX_SELECTIONS}, counted in the matrix's bytes`, () => {
    const m = build(jsKernel(), randomVectors(1000, 4, 3), false);
    const base = m.bytes;
    const all = compileFilter({ g: { $ne: -1 } })!;
    m.select(all);
    expect(m.bytes - base).toBeGreaterThanOrEqual(1000 * 4);
    for (let i = 0; i < 3 * MAX_SELECTIONS; i++) m.select(compileFilter({ g: { $ne: i } })!);
    expect(m.bytes - base).toBeLessThanOrEqual(MAX_SELECTIONS * (1000 * 4 + 200));
    expect(m.bytes - base).toBeGreaterThanOrEqual(MAX_SELECTIONS * 900 * 4);
  });
});
