/** Change-log entries a prefix keeps, in every backend (Redis keeps up to ~100 more: it trims whole stream nodes). */
export const LOG_LIMIT = 1000;
/** @deprecated the same number as LOG_LIMIT; kept until the map driver imports LOG_LIMIT. */
export const MAP_LOG_LIMIT = LOG_LIMIT;

/**
 * The names written or deleted under one prefix, newest last, as a ring of at most `limit`
 * [version, name] pairs. Answers "what changed after version v" exactly for every v from
 * `floor` (inclusive) on; for older versions it cannot tell.
 *
 * Pushing costs two array stores and no allocation once the ring is full.
 */
export class ChangeLog {
  #versions: number[] = [];
  #names: string[] = [];
  /** Index of the oldest entry once the ring is full (0 until then). */
  #head = 0;
  /** Every change after this version is in the log. */
  #floor: number;
  readonly #limit: number;

  constructor(floor: number, limit = MAP_LOG_LIMIT) {
    this.#floor = floor;
    this.#limit = Math.max(1, Math.floor(limit));
  }

  push(version: number, name: string): void {
    if (this.#names.length < this.#limit) {
      this.#versions.push(version);
      this.#names.push(name);
      return;
    }
    // Overwriting the oldest entry: versions up to its own are no longer complete.
    this.#floor = this.#versions[this.#head]!;
    this.#versions[this.#head] = version;
    this.#names[this.#head] = name;
    this.#head = this.#head + 1 === this.#limit ? 0 : this.#head + 1;
  }

  /** Forget everything: only changes after `version` will be known (a clear, or a change that cannot be named). */
  reset(version: number): void {
    this.#versions = [];
    this.#names = [];
    this.#head = 0;
    this.#floor = version;
  }

  /** Distinct names changed after `since`, or undefined when the log does not reach back that far. */
  since(since: number): string[] | undefined {
    if (since < this.#floor) return undefined;
    const out = new Set<string>();
    const count = this.#names.length;
    // Newest first, stopping at the first entry not after `since` (entries are in version order).
    for (let i = count - 1; i >= 0; i--) {
      const at = (this.#head + i) % count;
      if (this.#versions[at]! <= since) break;
      out.add(this.#names[at]!);
    }
    return [...out];
  }
}
