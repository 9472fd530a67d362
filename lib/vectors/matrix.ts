/**
 * One workspace's vectors as one contiguous block of linear memory, the layout the scan
 * kernels read at memory speed. Rows are unit-normalised copies (cosine = dot product),
 * zero-padded to a multiple of 4 float32 (and of 16 int8 in int8 mode); ids, metadata and
 * the stored value each row came from are parallel JS arrays, whose estimated size is kept
 * per row so `bytes` stays O(1) (see footprint.ts). Deletes swap the last row in, so rows
 * stay dense.
 *
 * Memory layout (byte offsets, all 16-aligned):
 *   query f32 [dpad] | query i16 [dpad8] | scores f32 [cap] | scales f32 [cap, int8 only]
 *   | selected rows i32 [cap] | rows f32 [cap × dpad] | rows i8 [cap × dpad8, int8 only]
 *
 * A filtered search scans only the rows its filter selects: the selection (row numbers, built
 * once per filter and row change, see `select`) is copied beside the rows and the kernel's
 * gather entry scores just those, so a selective filter reads less memory, not more.
 */
import { decodeInto, LITTLE_ENDIAN } from "./codec.js";
import type { CompiledFilter } from "./filter.js";
import { jsonBytes, ROW_OVERHEAD, stringBytes } from "./footprint.js";
import type { Kernel, KernelMemory } from "./kernel.js";
import { quantizeInto } from "./quantize.js";
import { Selections } from "./selection.js";
import { topK } from "./topk.js";

interface Layout {
  cap: number;
  q16: number;
  scores: number;
  scales: number;
  sel: number;
  f32: number;
  i8: number;
  end: number;
}

export interface MatrixSearchResult {
  rows: Int32Array;
  scores: Float32Array;
}

/** Unit-normalises `src` into `dst` (float64 norm, float32 result); zero vectors stay zero. */
export function normalizeInto(src: ArrayLike<number>, dst: Float32Array, d: number): boolean {
  let sum = 0;
  for (let i = 0; i < d; i++) {
    const x = src[i]!;
    sum += x * x;
  }
  if (!Number.isFinite(sum)) return false;
  const norm = Math.sqrt(sum);
  for (let i = 0; i < d; i++) dst[i] = norm > 0 ? src[i]! / norm : 0;
  return true;
}

/** Matrices smaller than this scan float32 even in int8 mode (same results, less work). */
export const INT8_MIN_BYTES = 4 << 20;

const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

function isEmpty(object: Record<string, unknown>): boolean {
  for (const _ in object) return false;
  return true;
}

export class Matrix {
  readonly d: number;
  readonly dpad: number;
  /** Bytes per int8 row; 0 when not quantised. */
  readonly dpad8: number;
  readonly int8: boolean;
  n = 0;
  readonly ids: string[] = [];
  readonly metadata: Record<string, unknown>[] = [];
  /** The stored value each row was decoded from (when the cache compares values to resync). */
  readonly raw: unknown[] = [];
  /** Estimated JS bytes of each row's id, metadata and stored value, parallel to `ids`. */
  readonly #rowBytes: number[] = [];
  #heapBytes = 0;
  readonly #index = new Map<string, number>();
  readonly #mem: KernelMemory;
  #layout: Layout;
  #f32: Float32Array;
  #u8: Uint8Array;
  #bytes: Buffer;

  readonly #int8MinBytes: number;
  /** Bumped by every row change: a selection built at another count is stale. */
  #mutations = 0;
  readonly #selections = new Selections();

  constructor(kernel: Kernel, d: number, options: { int8: boolean; capacity?: number; int8MinBytes?: number }) {
    this.#int8MinBytes = options.int8MinBytes ?? INT8_MIN_BYTES;
    this.d = d;
    this.dpad = Math.ceil(d / 4) * 4;
    this.int8 = options.int8;
    this.dpad8 = options.int8 ? Math.ceil(d / 16) * 16 : 0;
    this.#layout = this.#layoutFor(Math.max(4, options.capacity ?? 16));
    this.#mem = kernel.memory(this.#layout.end);
    this.#f32 = new Float32Array(this.#mem.buffer);
    this.#u8 = new Uint8Array(this.#mem.buffer);
    this.#bytes = Buffer.from(this.#mem.buffer);
  }

  /** Everything the matrix holds: its linear memory plus the estimated JS side (`heapBytes`). */
  get bytes(): number {
    return this.#mem.buffer.byteLength + this.#heapBytes + this.#selections.bytes;
  }

  /** Estimated JS heap bytes of ids, metadata and kept stored values (high rather than low). */
  get heapBytes(): number {
    return this.#heapBytes;
  }

  #layoutFor(capacity: number): Layout {
    const cap = Math.ceil(capacity / 4) * 4;
    const q16 = this.dpad * 4;
    const scores = q16 + this.dpad8 * 2;
    const scales = scores + cap * 4;
    const sel = scales + (this.int8 ? cap * 4 : 0);
    const f32 = sel + cap * 4;
    const i8 = f32 + cap * this.dpad * 4;
    return { cap, q16, scores, scales, sel, f32, i8, end: i8 + cap * this.dpad8 };
  }

  #views(): void {
    if (this.#u8.buffer !== this.#mem.buffer) {
      this.#f32 = new Float32Array(this.#mem.buffer);
      this.#u8 = new Uint8Array(this.#mem.buffer);
      this.#bytes = Buffer.from(this.#mem.buffer);
    }
  }

  #reserve(rows: number): void {
    const old = this.#layout;
    if (rows <= old.cap) return;
    const next = this.#layoutFor(Math.max(rows, Math.ceil(old.cap * 1.25)));
    this.#mem.grow(next.end);
    this.#views();
    // Every region only moves up; moving the last one first never overwrites one not yet moved.
    // The selection region is rewritten by every filtered search, so it is not moved.
    const u8 = this.#u8;
    u8.copyWithin(next.i8, old.i8, old.i8 + this.n * this.dpad8);
    u8.copyWithin(next.f32, old.f32, old.f32 + this.n * this.dpad * 4);
    if (this.int8) u8.copyWithin(next.scales, old.scales, old.scales + this.n * 4);
    this.#layout = next;
  }

  has(id: string): boolean {
    return this.#index.has(id);
  }

  rawOf(id: string): unknown {
    const row = this.#index.get(id);
    return row === undefined ? undefined : this.raw[row];
  }

  /**
   * Adds or replaces a row from the caller's vector or a stored one (`source` of length d).
   * Returns false, changing nothing, when the values are not finite.
   */
  set(id: string, source: Float32Array | string | number[], metadata: Record<string, unknown>, raw?: unknown): boolean {
    const existing = this.#index.get(id);
    const row = existing ?? this.n;
    if (existing === undefined) this.#reserve(this.n + 1);
    const { d, dpad } = this;
    const base = this.#layout.f32 + row * dpad * 4;
    const at = base >> 2;
    const f = this.#f32;
    const before = existing === undefined ? undefined : f.slice(at, at + d);
    // Whole-memory views with offsets: no per-row view objects on the load path.
    if (typeof source === "string") {
      if (this.#bytes.write(source, base, d * 4, "base64") !== d * 4) return this.#restore(at, before);
      if (!LITTLE_ENDIAN) decodeInto(source, f.subarray(at, at + d));
    } else if (Array.isArray(source)) {
      for (let i = 0; i < d; i++) f[at + i] = source[i]!;
    } else {
      f.set(source.subarray(0, d), at);
    }
    let sum = 0;
    for (let i = at; i < at + d; i++) sum += f[i]! * f[i]!;
    if (!Number.isFinite(sum)) return this.#restore(at, before);
    const norm = Math.sqrt(sum);
    for (let i = at; i < at + d; i++) f[i] = norm > 0 ? f[i]! / norm : 0;
    // Growing moves regions, so a fresh row may hold stale bytes in its padding.
    f.fill(0, at + d, at + dpad);
    if (this.int8) {
      const i8 = new Int8Array(this.#mem.buffer, this.#layout.i8 + row * this.dpad8, this.dpad8);
      i8.fill(0);
      f[(this.#layout.scales >> 2) + row] = quantizeInto(f.subarray(at, at + d), i8);
    }
    const empty = isEmpty(metadata);
    // Walks only this row's metadata, about what decoding it cost; never all rows.
    const size =
      ROW_OVERHEAD + stringBytes(id) + (empty ? 0 : jsonBytes(metadata)) + (raw === undefined ? 0 : jsonBytes(raw));
    if (existing === undefined) {
      this.#index.set(id, row);
      this.ids.push(id);
      this.#rowBytes.push(size);
      this.n++;
    } else {
      this.#heapBytes -= this.#rowBytes[row]!;
      this.#rowBytes[row] = size;
    }
    this.#heapBytes += size;
    this.metadata[row] = empty ? EMPTY : metadata;
    this.raw[row] = raw;
    this.#mutations++;
    return true;
  }

  #restore(at: number, before: Float32Array | undefined): false {
    if (before) this.#f32.set(before, at);
    return false;
  }

  remove(id: string): boolean {
    const row = this.#index.get(id);
    if (row === undefined) return false;
    this.#heapBytes -= this.#rowBytes[row]!;
    const last = this.n - 1;
    if (row !== last) {
      const { f32, i8, scales } = this.#layout;
      const rowBytes = this.dpad * 4;
      this.#u8.copyWithin(f32 + row * rowBytes, f32 + last * rowBytes, f32 + (last + 1) * rowBytes);
      if (this.int8) {
        this.#u8.copyWithin(i8 + row * this.dpad8, i8 + last * this.dpad8, i8 + (last + 1) * this.dpad8);
        this.#f32[(scales >> 2) + row] = this.#f32[(scales >> 2) + last]!;
      }
      const moved = this.ids[last]!;
      this.ids[row] = moved;
      this.metadata[row] = this.metadata[last]!;
      this.raw[row] = this.raw[last];
      this.#rowBytes[row] = this.#rowBytes[last]!;
      this.#index.set(moved, row);
    }
    this.ids.pop();
    this.#rowBytes.pop();
    this.metadata.pop();
    this.raw.pop();
    this.#index.delete(id);
    this.n--;
    this.#mutations++;
    return true;
  }

  /**
   * The rows `filter` selects, ascending: every row's metadata is tested once, and the result is
   * reused by later searches with the same filter until any row changes.
   */
  select(filter: CompiledFilter): Int32Array {
    return this.#selections.select(filter, this.metadata, this.#mutations);
  }

  /**
   * The k best rows for `query` (length d, any norm), best first; only among `selection` (row
   * numbers from `select`) when given. Selected rows get the very scores a full scan gives them.
   */
  search(query: Float32Array, k: number, selection?: Int32Array): MatrixSearchResult {
    const mem = this.#mem;
    const { d, dpad, n } = this;
    const L = this.#layout;
    const count = selection ? selection.length : n;
    if (count === 0) return { rows: new Int32Array(0), scores: new Float32Array(0) };
    const q = new Float32Array(this.#mem.buffer, 0, dpad);
    normalizeInto(query, q, d);
    q.fill(0, d);
    if (selection) new Int32Array(this.#mem.buffer, L.sel, count).set(selection);
    const scores = new Float32Array(this.#mem.buffer, L.scores, count);
    const rowOf = selection ? (p: number) => selection[p]! : (p: number) => p;
    // Below a few MiB the float32 rows sit in cache and the scan is not bandwidth-bound, so the
    // int8 pass would only add a second selection and the re-rank: scan exactly instead.
    const small = count * dpad * 4 < this.#int8MinBytes;
    const candidates = this.int8 && !small ? Math.min(count, Math.max(k + 64, 4 * k)) : count;
    if (candidates >= count) {
      if (selection) mem.dotF32Rows(L.f32, L.sel, count, 0, L.scores, dpad);
      else mem.dotF32(L.f32, 0, L.scores, n, dpad);
      const best = topK(scores, count, k, this.ids, selection);
      return { rows: best.map(rowOf), scores: Float32Array.from(best, (p) => scores[p]!) };
    }
    const q16 = new Int16Array(this.#mem.buffer, L.q16, this.dpad8);
    q16.fill(0);
    quantizeInto(q, q16);
    if (selection) mem.dotI8Rows(L.i8, L.sel, count, L.q16, L.scales, L.scores, this.dpad8);
    else mem.dotI8(L.i8, L.q16, L.scales, L.scores, n, this.dpad8);
    const cand = topK(scores, count, candidates, this.ids, selection).map(rowOf);
    // Exact float32 re-rank with the same kernel, so scores equal those of a float32 scan.
    for (let c = 0; c < candidates; c++) mem.dotF32(L.f32 + cand[c]! * dpad * 4, 0, L.scores + c * 4, 1, dpad);
    const best = topK(scores, candidates, k, this.ids, cand);
    return { rows: Int32Array.from(best, (p) => cand[p]!), scores: Float32Array.from(best, (p) => scores[p]!) };
  }

  /** Reads the normalised row back (tests and diagnostics). */
  normalizedRow(id: string): Float32Array | undefined {
    const row = this.#index.get(id);
    if (row === undefined) return undefined;
    return new Float32Array(this.#mem.buffer, this.#layout.f32 + row * this.dpad * 4, this.d).slice();
  }
}
