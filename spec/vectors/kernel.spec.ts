import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { jsKernel, type Kernel, wasmKernel } from "../../lib/vectors/kernel.js";
import { rng } from "./reference.js";

const run = promisify(execFile);
const buildScript = fileURLToPath(new URL("../../scripts/build-wasm.mjs", import.meta.url));

function fill(kernel: Kernel, n: number, dpad: number, seed: number) {
  const mem = kernel.memory(16 + dpad * 4 * (n + 2) + n * 4);
  const f = new Float32Array(mem.buffer);
  const next = rng(seed);
  const q = 0;
  const out = dpad * 4;
  const mat = out + Math.ceil(n / 4) * 16;
  for (let i = 0; i < dpad; i++) f[i] = next();
  for (let i = 0; i < n * dpad; i++) f[(mat >> 2) + i] = next() * (i % 7 === 0 ? 1e-30 : 1);
  return { mem, q, out, mat };
}

describe("scan kernel", () => {
  it("committed wasm bytes are exactly what kernel.wat assembles to", async () => {
    const { stdout } = await run(process.execPath, [buildScript, "--check"], { timeout: 30_000 });
    expect(stdout).toContain("matches kernel.wat");
  });

  it("runs the SIMD kernel on this Node", () => {
    expect(wasmKernel()?.name).toBe("wasm-simd128");
  });

  it("SIMD and fallback give bit-identical float32 dot products", () => {
    const simd = wasmKernel()!;
    for (const dpad of [4, 8, 12, 16, 20, 60, 64, 384, 388]) {
      const n = 37;
      const a = fill(simd, n, dpad, dpad);
      const b = fill(jsKernel(), n, dpad, dpad);
      a.mem.dotF32(a.mat, a.q, a.out, n, dpad);
      b.mem.dotF32(b.mat, b.q, b.out, n, dpad);
      const sa = new Float32Array(a.mem.buffer, a.out, n);
      const sb = new Float32Array(b.mem.buffer, b.out, n);
      expect(Array.from(sa), `dpad=${dpad}`).toEqual(Array.from(sb));
      // And they are dot products (to float32 accuracy).
      const f = new Float32Array(a.mem.buffer);
      for (let i = 0; i < n; i++) {
        let dot = 0;
        for (let j = 0; j < dpad; j++) dot += f[(a.mat >> 2) + i * dpad + j]! * f[j]!;
        expect(sa[i]).toBeCloseTo(dot, 4);
      }
    }
  });

  it("SIMD and fallback agree on the int8 scan, which is an exact integer dot times the row scale", () => {
    const n = 23;
    for (const dpad of [16, 32, 400]) {
      const results = [wasmKernel()!, jsKernel()].map((kernel) => {
        const mem = kernel.memory(1 << 20);
        const q16 = 0;
        const scales = dpad * 2;
        const out = scales + 128;
        const mat = out + 128;
        const next = rng(dpad + 1);
        const q = new Int16Array(mem.buffer, q16, dpad);
        const rows = new Int8Array(mem.buffer, mat, n * dpad);
        const sc = new Float32Array(mem.buffer, scales, n);
        for (let j = 0; j < dpad; j++) q[j] = Math.round(next() * 170) % 128;
        for (let j = 0; j < n * dpad; j++) rows[j] = Math.round(next() * 170) % 128;
        for (let i = 0; i < n; i++) sc[i] = 0.5 + i;
        mem.dotI8(mat, q16, scales, out, n, dpad);
        const expected = Array.from({ length: n }, (_, i) => {
          let s = 0;
          for (let j = 0; j < dpad; j++) s += rows[i * dpad + j]! * q[j]!;
          return Math.fround(s * (0.5 + i));
        });
        expect(Array.from(new Float32Array(mem.buffer, out, n))).toEqual(expected);
        return expected;
      });
      expect(results[0]).toEqual(results[1]);
    }
  });

  it("gather entries score listed rows exactly as the full scans do, SIMD and fallback alike", () => {
    const n = 41;
    for (const dpad of [4, 16, 20, 384, 388]) {
      const sel = [40, 0, 7, 7, 13, 39, 2];
      const results = [wasmKernel()!, jsKernel()].map((kernel) => {
        const { mem, q, out, mat } = fill(kernel, n, dpad, dpad + 5);
        mem.grow(mem.buffer.byteLength + 4096);
        const selAt = mem.buffer.byteLength - 4096;
        const outRows = selAt + 1024;
        new Int32Array(mem.buffer, selAt, sel.length).set(sel);
        mem.dotF32(mat, q, out, n, dpad);
        mem.dotF32Rows(mat, selAt, sel.length, q, outRows, dpad);
        const full = new Float32Array(mem.buffer, out, n);
        const got = Array.from(new Float32Array(mem.buffer, outRows, sel.length));
        expect(got, `dpad=${dpad}`).toEqual(sel.map((r) => full[r]!));
        return got;
      });
      expect(results[0], `dpad=${dpad}`).toEqual(results[1]);
    }
    for (const dpad of [16, 400]) {
      const sel = [22, 0, 5, 5, 11];
      const results = [wasmKernel()!, jsKernel()].map((kernel) => {
        const mem = kernel.memory(1 << 20);
        const [q16, scales, out, outRows, selAt] = [0, dpad * 2, dpad * 2 + 128, dpad * 2 + 256, dpad * 2 + 384];
        const mat = dpad * 2 + 512;
        const next = rng(dpad + 9);
        const q = new Int16Array(mem.buffer, q16, dpad);
        const rows = new Int8Array(mem.buffer, mat, 23 * dpad);
        for (let j = 0; j < dpad; j++) q[j] = Math.round(next() * 170) % 128;
        for (let j = 0; j < 23 * dpad; j++) rows[j] = Math.round(next() * 170) % 128;
        new Float32Array(mem.buffer, scales, 23).forEach((_, i, a) => {
          a[i] = 0.25 + i;
        });
        new Int32Array(mem.buffer, selAt, sel.length).set(sel);
        mem.dotI8(mat, q16, scales, out, 23, dpad);
        mem.dotI8Rows(mat, selAt, sel.length, q16, scales, outRows, dpad);
        const full = new Float32Array(mem.buffer, out, 23);
        const got = Array.from(new Float32Array(mem.buffer, outRows, sel.length));
        expect(got).toEqual(sel.map((r) => full[r]!));
        return got;
      });
      expect(results[0]).toEqual(results[1]);
    }
  });

  it("sums memory for the bandwidth probe", () => {
    for (const kernel of [wasmKernel()!, jsKernel()]) {
      const mem = kernel.memory(4096);
      new Float32Array(mem.buffer, 64, 64).fill(0.5);
      expect(mem.sumF32(64, 64)).toBe(32);
    }
  });

  it("keeps contents when memory grows", () => {
    for (const kernel of [wasmKernel()!, jsKernel()]) {
      const mem = kernel.memory(100);
      new Float32Array(mem.buffer)[3] = 7;
      mem.grow(300_000);
      expect(mem.buffer.byteLength).toBeGreaterThanOrEqual(300_000);
      expect(new Float32Array(mem.buffer)[3]).toBe(7);
    }
  });
});
