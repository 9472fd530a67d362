/**
 * The scan kernels behind vector search: a WebAssembly SIMD128 module (kernel.wat) and a
 * plain TypeScript fallback that performs the same float32 operations in the same order,
 * so both return bit-identical scores. The fallback is used when WebAssembly SIMD is
 * unavailable or KEYV_WORKSPACES_SIMD=0.
 *
 * All pointers are byte offsets into one linear memory per matrix; rows are contiguous.
 */
import { KERNEL_WASM_BASE64 } from "./kernel-wasm.js";

const PAGE = 65536;

export interface KernelMemory {
  /** The current backing buffer; replaced (old views detached) by grow(). */
  readonly buffer: ArrayBuffer;
  /** Ensures at least `bytes` bytes, keeping the contents. */
  grow(bytes: number): void;
  /** out[i] = dot(row i, q), rows of `dpad` float32 starting at `mat` (dpad % 4 == 0). */
  dotF32(mat: number, q: number, out: number, n: number, dpad: number): void;
  /** out[i] = f32(dot(int8 row i, int16 query)) * scales[i], rows of `dpad` bytes (dpad % 16 == 0). */
  dotI8(mat: number, q16: number, scales: number, out: number, n: number, dpad: number): void;
  /** out[i] = dot(row sel[i], q) for i < count; `sel` points at int32 row numbers. Same sums as dotF32. */
  dotF32Rows(mat: number, sel: number, count: number, q: number, out: number, dpad: number): void;
  /** out[i] = f32(dot(int8 row sel[i], q16)) * scales[sel[i]] for i < count. */
  dotI8Rows(mat: number, sel: number, count: number, q16: number, scales: number, out: number, dpad: number): void;
  /** Sum of `count` float32 at `p` (count % 16 == 0). */
  sumF32(p: number, count: number): number;
}

export interface Kernel {
  /** "wasm-simd128" or "js". */
  readonly name: string;
  memory(bytes: number): KernelMemory;
}

interface KernelExports {
  dot_f32(mat: number, q: number, out: number, n: number, dpad: number): void;
  dot_i8(mat: number, q: number, scales: number, out: number, n: number, dpad: number): void;
  dot_f32_rows(mat: number, sel: number, count: number, q: number, out: number, dpad: number): void;
  dot_i8_rows(mat: number, sel: number, count: number, q: number, scales: number, out: number, dpad: number): void;
  sum_f32(p: number, count: number): number;
}

const pagesFor = (bytes: number) => Math.max(1, Math.ceil(bytes / PAGE));

/** The slice of the WebAssembly JS API we use (this project compiles without DOM typings). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (descriptor: { initial: number }) => { readonly buffer: ArrayBuffer; grow(pages: number): number };
}

const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
let compiled: object | null | undefined;

function wasmModule(): object | undefined {
  if (compiled === undefined) {
    try {
      const bytes = Buffer.from(KERNEL_WASM_BASE64, "base64");
      compiled = wasm?.validate(bytes) ? new wasm.Module(bytes) : null;
    } catch {
      // Runtimes without SIMD128 reject the module; the fallback takes over.
      compiled = null;
    }
  }
  return compiled ?? undefined;
}

/** The SIMD kernel, or undefined where this runtime cannot run it. */
export function wasmKernel(): Kernel | undefined {
  const module = wasmModule();
  if (!module || !wasm) return undefined;
  const api = wasm;
  return {
    name: "wasm-simd128",
    memory(bytes) {
      const memory = new api.Memory({ initial: pagesFor(bytes) });
      const exports = new api.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
      return {
        get buffer() {
          return memory.buffer;
        },
        grow(wanted) {
          const missing = pagesFor(wanted) - memory.buffer.byteLength / PAGE;
          if (missing > 0) memory.grow(missing);
        },
        dotF32: exports.dot_f32,
        dotI8: exports.dot_i8,
        dotF32Rows: exports.dot_f32_rows,
        dotI8Rows: exports.dot_i8_rows,
        sumF32: exports.sum_f32,
      };
    },
  };
}

const fround = Math.fround;

/** One row of kernel.wat's dot_f32, operation by operation (see the note there); `row`, `qb` in floats. */
function dotRowJs(f: Float32Array, row: number, qb: number, dpad: number): number {
  const end16 = dpad & ~15;
  // a<acc><lane>: four f32x4 accumulators, as in the kernel.
  let a00 = 0,
    a01 = 0,
    a02 = 0,
    a03 = 0,
    a10 = 0,
    a11 = 0,
    a12 = 0,
    a13 = 0;
  let a20 = 0,
    a21 = 0,
    a22 = 0,
    a23 = 0,
    a30 = 0,
    a31 = 0,
    a32 = 0,
    a33 = 0;
  let j = 0;
  for (; j < end16; j += 16) {
    const r = row + j;
    const s = qb + j;
    a00 = fround(a00 + fround(f[r]! * f[s]!));
    a01 = fround(a01 + fround(f[r + 1]! * f[s + 1]!));
    a02 = fround(a02 + fround(f[r + 2]! * f[s + 2]!));
    a03 = fround(a03 + fround(f[r + 3]! * f[s + 3]!));
    a10 = fround(a10 + fround(f[r + 4]! * f[s + 4]!));
    a11 = fround(a11 + fround(f[r + 5]! * f[s + 5]!));
    a12 = fround(a12 + fround(f[r + 6]! * f[s + 6]!));
    a13 = fround(a13 + fround(f[r + 7]! * f[s + 7]!));
    a20 = fround(a20 + fround(f[r + 8]! * f[s + 8]!));
    a21 = fround(a21 + fround(f[r + 9]! * f[s + 9]!));
    a22 = fround(a22 + fround(f[r + 10]! * f[s + 10]!));
    a23 = fround(a23 + fround(f[r + 11]! * f[s + 11]!));
    a30 = fround(a30 + fround(f[r + 12]! * f[s + 12]!));
    a31 = fround(a31 + fround(f[r + 13]! * f[s + 13]!));
    a32 = fround(a32 + fround(f[r + 14]! * f[s + 14]!));
    a33 = fround(a33 + fround(f[r + 15]! * f[s + 15]!));
  }
  for (; j < dpad; j += 4) {
    const r = row + j;
    const s = qb + j;
    a00 = fround(a00 + fround(f[r]! * f[s]!));
    a01 = fround(a01 + fround(f[r + 1]! * f[s + 1]!));
    a02 = fround(a02 + fround(f[r + 2]! * f[s + 2]!));
    a03 = fround(a03 + fround(f[r + 3]! * f[s + 3]!));
  }
  const s0 = fround(fround(a00 + a10) + fround(a20 + a30));
  const s1 = fround(fround(a01 + a11) + fround(a21 + a31));
  const s2 = fround(fround(a02 + a12) + fround(a22 + a32));
  const s3 = fround(fround(a03 + a13) + fround(a23 + a33));
  return fround(fround(s0 + s1) + fround(s2 + s3));
}

function dotF32Js(f: Float32Array, mat: number, q: number, out: number, n: number, dpad: number): void {
  const ob = out >> 2;
  for (let i = 0, row = mat >> 2; i < n; i++, row += dpad) f[ob + i] = dotRowJs(f, row, q >> 2, dpad);
}

function dotF32RowsJs(f: Float32Array, mat: number, sel: number, count: number, q: number, out: number, dpad: number) {
  const rows = new Int32Array(f.buffer, sel, count);
  const ob = out >> 2;
  for (let i = 0; i < count; i++) f[ob + i] = dotRowJs(f, (mat >> 2) + rows[i]! * dpad, q >> 2, dpad);
}

function dotI8Js(
  buffer: ArrayBuffer,
  mat: number,
  q16: number,
  scales: number,
  out: number,
  n: number,
  dpad: number,
): void {
  dotI8RowsJs(
    buffer,
    mat,
    Int32Array.from({ length: n }, (_, i) => i),
    q16,
    scales,
    out,
    dpad,
  );
}

function dotI8RowsJs(
  buffer: ArrayBuffer,
  mat: number,
  sel: Int32Array,
  q16: number,
  scales: number,
  out: number,
  dpad: number,
): void {
  const n = sel.length;
  const rows = new Int8Array(buffer, mat);
  const q = new Int16Array(buffer, q16, dpad);
  const sc = new Float32Array(buffer, scales);
  const o = new Float32Array(buffer, out, n);
  for (let i = 0; i < n; i++) {
    const row = sel[i]!;
    const r = row * dpad;
    let sum = 0;
    for (let j = 0; j < dpad; j++) sum += rows[r + j]! * q[j]!;
    o[i] = fround(fround(sum) * sc[row]!);
  }
}

/** The fallback: same arithmetic, plain loops over an ArrayBuffer. */
export function jsKernel(): Kernel {
  return {
    name: "js",
    memory(bytes) {
      let buffer = new ArrayBuffer(pagesFor(bytes) * PAGE);
      let f32 = new Float32Array(buffer);
      return {
        get buffer() {
          return buffer;
        },
        grow(wanted) {
          if (wanted <= buffer.byteLength) return;
          const next = new ArrayBuffer(pagesFor(wanted) * PAGE);
          new Uint8Array(next).set(new Uint8Array(buffer));
          buffer = next;
          f32 = new Float32Array(buffer);
        },
        dotF32: (mat, q, out, n, dpad) => dotF32Js(f32, mat, q, out, n, dpad),
        dotI8: (mat, q16, scales, out, n, dpad) => dotI8Js(buffer, mat, q16, scales, out, n, dpad),
        dotF32Rows: (mat, sel, count, q, out, dpad) => dotF32RowsJs(f32, mat, sel, count, q, out, dpad),
        dotI8Rows: (mat, sel, count, q16, scales, out, dpad) =>
          dotI8RowsJs(buffer, mat, new Int32Array(buffer, sel, count).slice(), q16, scales, out, dpad),
        sumF32(p, count) {
          let s = 0;
          for (let i = p >> 2, end = (p >> 2) + count; i < end; i++) s = fround(s + f32[i]!);
          return s;
        },
      };
    },
  };
}

let chosen: Kernel | undefined;

/** The kernel this process uses: SIMD unless unavailable or KEYV_WORKSPACES_SIMD=0. */
export function defaultKernel(): Kernel {
  chosen ??= (process.env.KEYV_WORKSPACES_SIMD === "0" ? undefined : wasmKernel()) ?? jsKernel();
  return chosen;
}
