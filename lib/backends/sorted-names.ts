import { compareNames, type PageOptions } from "./driver.js";

/** Names added since the last fold, kept sorted by insertion; folding costs O(n), so it waits for this many. */
const FRESH_LIMIT = 512;

/** Binary search: the first index whose name sorts after `name` (`strict`) or at/after it. */
function lowerBound(names: readonly string[], name: string, strict: boolean): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareNames(names[mid] as string, name);
    if (c < 0 || (strict && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function merge(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = new Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = compareNames(a[i]!, b[j]!) <= 0 ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}

/**
 * The names of one prefix in listing order, so a page costs O(log n + page) instead of sorting
 * every name: a large sorted run plus a small sorted run of recent additions (binary insertion,
 * ≤ FRESH_LIMIT), folded into the large one by a linear merge once full — amortised O(n / FRESH_LIMIT)
 * per new name. Deletes leave the name in place (the live set is the truth, checked while paging)
 * and the runs are rebuilt from the live names once the dead outnumber half the live.
 * May hold a name twice (deleted, then added again): a page skips repeats, which sort together.
 */
export class SortedNames {
  #base: string[];
  #fresh: string[] = [];
  #dead = 0;

  constructor(names: Iterable<string>) {
    this.#base = [...names].sort(compareNames);
  }

  added(name: string): void {
    const fresh = this.#fresh;
    fresh.splice(lowerBound(fresh, name, false), 0, name);
    if (fresh.length >= FRESH_LIMIT) {
      this.#base = merge(this.#base, fresh);
      this.#fresh = [];
    }
  }

  /** A name was deleted: `liveCount` names are left, which `live()` gives when the runs are rebuilt. */
  removed(liveCount: number, live: () => string[]): void {
    if (++this.#dead > (liveCount >> 1) + FRESH_LIMIT) {
      this.#base = live().sort(compareNames);
      this.#fresh = [];
      this.#dead = 0;
    }
  }

  /** One page of the names `isLive` accepts. */
  page({ after, startsWith, limit }: PageOptions, isLive: (name: string) => boolean): string[] {
    // Every name starting with `startsWith` sorts at or after it: start there, stop at the first that does not.
    const fromAfter = after !== undefined && (startsWith === undefined || compareNames(after, startsWith) >= 0);
    const from = fromAfter ? (after as string) : startsWith;
    const base = this.#base;
    const fresh = this.#fresh;
    let i = from === undefined ? 0 : lowerBound(base, from, fromAfter);
    let j = from === undefined ? 0 : lowerBound(fresh, from, fromAfter);
    const out: string[] = [];
    let last: string | undefined;
    while (out.length < limit && (i < base.length || j < fresh.length)) {
      const name =
        j >= fresh.length || (i < base.length && compareNames(base[i]!, fresh[j]!) <= 0) ? base[i++]! : fresh[j++]!;
      if (startsWith !== undefined && !name.startsWith(startsWith)) break;
      if (name === last || !isLive(name)) continue;
      last = name;
      out.push(name);
    }
    return out;
  }
}
