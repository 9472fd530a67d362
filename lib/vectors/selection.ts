/**
 * The rows a filter selects, kept per filter so that repeated searches with one filter test
 * each row's metadata once: valid only at the row-change count they were built at.
 */
import type { CompiledFilter } from "./filter.js";
import { stringBytes } from "./footprint.js";

/** Row selections a matrix keeps (per filter, least recently used dropped first). */
export const MAX_SELECTIONS = 8;

export class Selections {
  /** Filter key → selected rows (ascending) and the mutation count they reflect; insertion order = recency. */
  readonly #kept = new Map<string, { mutations: number; rows: Int32Array }>();
  #bytes = 0;

  /** Estimated bytes of the kept selections. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The rows among `metadata` (one per row) that `filter` selects, as of row-change count `mutations`. */
  select(filter: CompiledFilter, metadata: readonly Record<string, unknown>[], mutations: number): Int32Array {
    const kept = this.#kept.get(filter.key);
    if (kept?.mutations === mutations) {
      this.#kept.delete(filter.key);
      this.#kept.set(filter.key, kept);
      return kept.rows;
    }
    // The count only grows, so a stale selection can never be valid again: drop them all.
    for (const [key, old] of this.#kept) if (old.mutations !== mutations) this.#forget(key, old.rows);
    const n = metadata.length;
    const picked = new Int32Array(n);
    let count = 0;
    for (let r = 0; r < n; r++) if (filter.matches(metadata[r]!)) picked[count++] = r;
    const rows = picked.slice(0, count);
    this.#kept.set(filter.key, { mutations, rows });
    this.#bytes += rows.byteLength + stringBytes(filter.key);
    for (const [key, old] of this.#kept) {
      if (this.#kept.size <= MAX_SELECTIONS) break;
      this.#forget(key, old.rows);
    }
    return rows;
  }

  #forget(key: string, rows: Int32Array): void {
    this.#kept.delete(key);
    this.#bytes -= rows.byteLength + stringBytes(key);
  }
}
