/**
 * Per-workspace quotas over a MapCore (memory and file backends). Counts exist only for the
 * workspaces that have a quota: while none has, the core holds no MapQuotas at all and a write
 * pays one field check. A write runs in one turn of the event loop (the file store: under its lock,
 * after catching up with other processes), so check-then-write is atomic without more locking.
 */
import { joinKey, SEPARATOR } from "../keys.js";
import { exceeds, type Quota, type QuotaDelta, type QuotaUsage, quotaExceeded, valueBytes } from "../quota.js";

/** What the counts need of their core. */
export interface CountedCore {
  /** Every prefix holding entries, with the full keys listed under it. */
  prefixes(): Iterable<[string, ReadonlySet<string>]>;
  value(key: string): unknown;
  /** Full keys of `prefix` still listed although their TTL passed (names() hides them, prune deletes them). */
  expired(prefix: string, now: number): Iterable<string>;
  prune(prefix: string): void;
}

interface Counted {
  readonly base: string;
  limit: Quota;
  entries: number;
  bytes: number;
  /**
   * The bytes of every counted full key: a change knows what it replaces without the value it
   * replaced (a file store replaying another process's records has already overwritten it).
   */
  readonly sizes: Map<string, number>;
  /** The workspace's prefixes that have held entries: pruned when a write would be refused. */
  readonly prefixes: Set<string>;
}

/** Prefixes whose workspace is remembered at most (then forgotten, and worked out again). */
const PREFIX_CACHE = 10_000;

/** A write to judge: [name, value], value undefined for a delete. */
export type Write = readonly [string, unknown];

/**
 * The workspace base a prefix is a data prefix of: `<base>:<collection>`, collections having no
 * `:` (so `<root>:ws:a:b:notes` is workspace "a:b"'s) and bookkeeping a `#` (never counted).
 * Decided by the key alone, so every process counts the same entries of a shared file.
 */
export function baseOf(prefix: string): string | undefined {
  const cut = prefix.lastIndexOf(SEPARATOR);
  if (cut <= 0 || prefix.includes("#", cut)) return undefined;
  return prefix.slice(0, cut);
}

export class MapQuotas {
  readonly #core: CountedCore;
  readonly #bases = new Map<string, Counted>();
  /** prefix → its workspace's counts, or null: worked out once per prefix while some quota exists. */
  readonly #byPrefix = new Map<string, Counted | null>();
  /** The last value admitOne measured, and its bytes (see added). */
  #judged: unknown;
  #judgedBytes = 0;

  constructor(core: CountedCore) {
    this.#core = core;
  }

  get size(): number {
    return this.#bases.size;
  }

  /** The limits kept, by base. */
  limits(): Map<string, Quota> {
    return new Map([...this.#bases].map(([base, counted]) => [base, counted.limit]));
  }

  #of(prefix: string): Counted | null {
    let counted = this.#byPrefix.get(prefix);
    if (counted === undefined) {
      // Bounded: a store of many workspaces must not keep an entry per prefix it ever wrote.
      if (this.#byPrefix.size >= PREFIX_CACHE) this.#byPrefix.clear();
      const base = baseOf(prefix);
      counted = (base !== undefined && this.#bases.get(base)) || null;
      this.#byPrefix.set(prefix, counted);
    }
    return counted;
  }

  /** `key` of `prefix` now holds `value` (new or overwritten). */
  added(prefix: string, key: string, value: unknown): void {
    const counted = this.#of(prefix);
    if (!counted) return;
    // The value admitOne just measured, most of the time: measured once.
    const bytes = value !== undefined && value === this.#judged ? this.#judgedBytes : valueBytes(value);
    this.#judged = undefined;
    const was = counted.sizes.get(key);
    if (was === undefined) {
      counted.entries++;
      counted.prefixes.add(prefix);
    }
    counted.bytes += bytes - (was ?? 0);
    counted.sizes.set(key, bytes);
  }

  /** `key` of `prefix` is gone. */
  removed(prefix: string, key: string): void {
    const counted = this.#of(prefix);
    const was = counted?.sizes.get(key);
    if (!counted || was === undefined) return;
    counted.sizes.delete(key);
    counted.entries--;
    counted.bytes -= was;
  }

  /** The whole map was emptied, or is about to be counted again key by key: every count restarts. */
  reset(): void {
    for (const counted of this.#bases.values()) {
      counted.entries = 0;
      counted.bytes = 0;
      counted.sizes.clear();
    }
  }

  /** Sets or (null) removes `base`'s quota; a new one counts what the core holds now. */
  set(base: string, limit: Quota | null): void {
    const existing = this.#bases.get(base);
    if (existing && limit !== null) {
      existing.limit = limit;
      return;
    }
    if (limit === null) {
      if (existing && this.#bases.delete(base)) this.#byPrefix.clear();
      return;
    }
    this.#bases.set(base, { base, limit, entries: 0, bytes: 0, sizes: new Map(), prefixes: new Set() });
    this.#byPrefix.clear();
    for (const [prefix, keys] of this.#core.prefixes()) {
      if (baseOf(prefix) !== base) continue;
      for (const key of keys) this.added(prefix, key, this.#core.value(key));
    }
  }

  /** Makes the limits exactly `limits` (another process changed them), counting the new ones. */
  sync(limits: ReadonlyMap<string, Quota>): void {
    for (const base of [...this.#bases.keys()]) if (!limits.has(base)) this.set(base, null);
    for (const [base, limit] of limits) this.set(base, limit);
  }

  /** What stats() counts: the entries listed, less those whose TTL passed (hidden, not yet pruned). */
  #live(counted: Counted, now = Date.now()): QuotaDelta {
    let { entries, bytes } = counted;
    for (const prefix of counted.prefixes) {
      for (const key of this.#core.expired(prefix, now)) {
        const size = counted.sizes.get(key);
        if (size === undefined) continue;
        entries--;
        bytes -= size;
      }
    }
    return { entries, bytes };
  }

  read(base: string): QuotaUsage | undefined {
    const counted = this.#bases.get(base);
    return counted && { limit: { ...counted.limit }, ...this.#live(counted) };
  }

  /**
   * Throws quotaExceeded when `writes` to `prefix`, applied in order, would grow its workspace
   * past its quota; the caller then writes nothing. Entries whose TTL passed still count until
   * pruned, so before refusing, the workspace is pruned and the writes judged again.
   */
  admit(prefix: string, writes: Iterable<Write>): void {
    const counted = this.#of(prefix);
    if (counted && exceeds(counted.limit, counted, this.#delta(counted, prefix, writes))) {
      this.#pruneOrRefuse(counted, prefix, writes);
    }
  }

  /** admit() for one set, without the batch's allocations (the common write). */
  admitOne(prefix: string, name: string, value: unknown): void {
    const counted = this.#of(prefix);
    if (!counted) return;
    const bytes = valueBytes(value);
    this.#judged = value;
    this.#judgedBytes = bytes;
    const { maxEntries, maxBytes } = counted.limit;
    // Far from the limit (the common case): it fits even as a new entry, whatever it replaces.
    if (
      (maxEntries === undefined || counted.entries < maxEntries) &&
      (maxBytes === undefined || counted.bytes + bytes <= maxBytes)
    ) {
      return;
    }
    const was = counted.sizes.get(joinKey(prefix, name));
    const delta = { entries: was === undefined ? 1 : 0, bytes: bytes - (was ?? 0) };
    if (exceeds(counted.limit, counted, delta)) this.#pruneOrRefuse(counted, prefix, [[name, value]]);
  }

  #pruneOrRefuse(counted: Counted, prefix: string, writes: Iterable<Write>): void {
    for (const each of counted.prefixes) this.#core.prune(each);
    const delta = this.#delta(counted, prefix, writes);
    if (exceeds(counted.limit, counted, delta)) {
      throw quotaExceeded(counted.base, counted.limit, { entries: counted.entries, bytes: counted.bytes }, delta);
    }
  }

  #delta(counted: Counted, prefix: string, writes: Iterable<Write>): QuotaDelta {
    let entries = 0;
    let bytes = 0;
    // A batch may write a name twice: each write replaces what the one before it left.
    const left = new Map<string, number | undefined>();
    for (const [name, value] of writes) {
      const key = joinKey(prefix, name);
      const was = left.has(key) ? left.get(key) : counted.sizes.get(key);
      const size = value === undefined ? undefined : valueBytes(value);
      entries += (size === undefined ? 0 : 1) - (was === undefined ? 0 : 1);
      bytes += (size ?? 0) - (was ?? 0);
      left.set(key, size);
    }
    return { entries, bytes };
  }
}
