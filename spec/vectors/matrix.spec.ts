import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jsKernel, type Kernel, wasmKernel } from "../../lib/vectors/kernel.js";
import { Matrix } from "../../lib/vectors/matrix.js";
import { topK } from "../../lib/vectors/topk.js";
import { randomVectors, referenceTopK, rng } from "./reference.js";

const kernels: Kernel[] = [wasmKernel()!, jsKernel()];
const id = (i: number) => `v${String(i).padStart(5, "0")}`;

function build(kernel: Kernel, vectors: Float32Array[], int8 = false): Matrix {
  // int8MinBytes 0: take the int8 path even for matrices this small.
  const m = new Matrix(kernel, vectors[0]!.length, { int8, capacity: 4, int8MinBytes: 0 });
  vectors.forEach((v, i) => void expect(m.set(id(i), v, { i })).toBe(true));
  return m;
}

function search(m: Matrix, q: Float32Array, k: number) {
  const { rows, scores } = m.search(q, k);
  return Array.from(rows, (r, i) => ({ id: m.ids[r]!, score: scores[i]! }));
}

describe("topK", () => {
  it("equals a full sort (score desc, id asc) for any scores, ties included", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 0, maxLength: 60 }),
        fc.integer({ min: 1, max: 70 }),
        (raw, k) => {
          const ids = raw.map((_, i) => `id${(i * 7919) % 101}-${i}`);
          const scores = Float32Array.from(raw, (x) => x / 4);
          const got = Array.from(topK(scores, raw.length, k, ids));
          const want = raw
            .map((_, i) => i)
            .sort((a, b) => scores[b]! - scores[a]! || (ids[a]! < ids[b]! ? -1 : 1))
            .slice(0, k);
          expect(got).toEqual(want);
        },
      ),
    );
  });
});

describe("Matrix search", () => {
  for (const kernel of kernels) {
    describe(kernel.name, () => {
      const cases: Array<[number, number]> = [
        [1, 1],
        [7, 1],
        [50, 3],
        [200, 5],
        [300, 16],
        [257, 17],
        [1000, 64],
        [500, 384],
        [120, 1536],
      ];
      for (const [n, d] of cases) {
        it(`top-k ids equal the float64 reference (n=${n}, d=${d})`, () => {
          const vectors = randomVectors(n, d, n * 31 + d);
          const m = build(kernel, vectors);
          const rows = vectors.map((v, i) => [id(i), v] as [string, Float32Array]);
          for (const [qi, k] of [
            [0, 1],
            [1, 10],
            [2, n],
            [3, n + 5],
          ] as const) {
            const q = randomVectors(1, d, 999 + qi)[0]!;
            const got = search(m, q, k);
            const want = referenceTopK(rows, q, k);
            expect(got.map((r) => r.id)).toEqual(want.map((r) => r.id));
            got.forEach((r, i) => void expect(r.score).toBeCloseTo(want[i]!.score, 5));
          }
        });
      }

      it("orders equal scores by id, whatever the insertion order", () => {
        const base = randomVectors(3, 10, 5);
        const m = new Matrix(kernel, 10, { int8: false });
        // Duplicates of the same vector score identically; inserted in reverse id order.
        for (const name of ["e", "d", "c", "b", "a"]) m.set(name, base[0]!, {});
        m.set("z", base[1]!, {});
        const got = search(m, base[0]!, 4).map((r) => r.id);
        expect(got).toEqual(["a", "b", "c", "d"]);
        // A zero query scores everything 0: pure id order.
        expect(search(m, new Float32Array(10), 6).map((r) => r.id)).toEqual(["a", "b", "c", "d", "e", "z"]);
      });

      it("stays correct through replaces, deletes and growth", () => {
        const d = 13;
        const vectors = randomVectors(400, d, 77);
        const m = new Matrix(kernel, d, { int8: false, capacity: 4 });
        const live = new Map<string, Float32Array>();
        const next = rng(3);
        for (let step = 0; step < 1500; step++) {
          const i = Math.floor((next() + 1.5) * 100) % 400;
          if (next() > 0.2) {
            m.set(id(i), vectors[(i + step) % 400]!, {});
            live.set(id(i), vectors[(i + step) % 400]!);
          } else {
            expect(m.remove(id(i))).toBe(live.delete(id(i)));
          }
        }
        expect(m.n).toBe(live.size);
        const q = randomVectors(1, d, 8)[0]!;
        expect(search(m, q, 25).map((r) => r.id)).toEqual(referenceTopK([...live], q, 25).map((r) => r.id));
      });

      it("int8 mode finds the exact float32 top-k (recall@10 = 1) with identical scores", () => {
        const n = 3000;
        const d = 96;
        const vectors = randomVectors(n, d, 11);
        const exact = build(kernel, vectors);
        const quant = build(kernel, vectors, true);
        for (let t = 0; t < 20; t++) {
          const q = randomVectors(1, d, 100 + t)[0]!;
          expect(search(quant, q, 10)).toEqual(search(exact, q, 10));
        }
      });
    });
  }

  it("SIMD and fallback return identical results", () => {
    const vectors = randomVectors(700, 130, 4);
    const [a, b] = kernels.map((k) => build(k, vectors));
    for (let t = 0; t < 5; t++) {
      const q = randomVectors(1, 130, 50 + t)[0]!;
      expect(search(a!, q, 20)).toEqual(search(b!, q, 20));
    }
  });

  it("refuses rows that are not finite, leaving the old row in place", () => {
    const m = new Matrix(kernels[0]!, 2, { int8: false });
    m.set("a", Float32Array.of(1, 0), {});
    expect(m.set("a", [Number.NaN, 1], {})).toBe(false);
    expect(m.set("b", [1e308, 1e308], {})).toBe(false);
    expect(m.n).toBe(1);
    expect(Array.from(m.normalizedRow("a")!)).toEqual([1, 0]);
  });
});

describe("Matrix byte accounting", () => {
  it("keeps heapBytes equal to a fresh matrix of the same rows through sets, replaces and removes", () => {
    const meta = (i: number, step: number) =>
      step % 3 === 0 ? {} : { i, text: "m".repeat((i * 37 + step) % 200), list: [step, i / 3] };
    const m = new Matrix(kernels[0]!, 3, { int8: false, capacity: 4 });
    const live = new Map<string, [Float32Array, Record<string, unknown>, string | undefined]>();
    const next = rng(9);
    for (let step = 0; step < 2000; step++) {
      const i = Math.floor((next() + 1.5) * 60) % 120;
      if (next() > 0.3) {
        const v = Float32Array.of(i + 1, step % 7, 1);
        const raw = step % 2 ? `raw-${step}` : undefined;
        m.set(id(i), v, meta(i, step), raw);
        live.set(id(i), [v, meta(i, step), raw]);
      } else {
        m.remove(id(i));
        live.delete(id(i));
      }
    }
    const fresh = new Matrix(kernels[0]!, 3, { int8: false });
    for (const [name, [v, metadata, raw]] of live) fresh.set(name, v, metadata, raw);
    expect(m.heapBytes).toBe(fresh.heapBytes);
    for (const name of [...live.keys()]) m.remove(name);
    expect(m.heapBytes).toBe(0);
  });

  it("counts metadata and kept stored values at two bytes per character at least", () => {
    const m = new Matrix(kernels[0]!, 2, { int8: false });
    m.set("a", Float32Array.of(1, 0), {});
    const base = m.bytes;
    m.set("b", Float32Array.of(1, 0), { text: "t".repeat(5000) });
    expect(m.bytes - base).toBeGreaterThanOrEqual(5000 * 2);
    const withMeta = m.bytes;
    m.set("b", Float32Array.of(1, 0), { text: "t".repeat(5000) }, "r".repeat(8000));
    expect(m.bytes - withMeta).toBeGreaterThanOrEqual(8000 * 2);
    // A refused row changes nothing, accounting included.
    const before = m.bytes;
    expect(m.set("b", [Number.NaN, 1], { text: "other" })).toBe(false);
    expect(m.bytes).toBe(before);
  });
});
