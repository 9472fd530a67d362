/**
 * Where a workspace's quota lives on Redis and how it is encoded (quota.ts has the layout of the
 * keys), and the bookkeeping of one optimistic attempt, which may carry many writes: the usage
 * read under WATCH, each write's delta against what the writes before it in the same attempt
 * left, and at the end the commands that bring `B:#quota` and `B:#quota-ttl` in step.
 */
import { StoreCommandError } from "../../errors.js";
import { SEPARATOR, WORKSPACE_SEGMENT } from "../../keys.js";
import type { Quota, QuotaDelta } from "../../quota.js";

export interface QuotaKeys {
  limit: string;
  usage: string;
  expiring: string;
}

export function quotaKeys(base: string): QuotaKeys {
  const marker = `${SEPARATOR}${WORKSPACE_SEGMENT}${SEPARATOR}`;
  const at = base.indexOf(marker);
  const id = base.slice(at + marker.length);
  return {
    limit: `${base.slice(0, at)}#quota${SEPARATOR}${id}`,
    usage: `${base}:#quota`,
    expiring: `${base}:#quota-ttl`,
  };
}

export type Stored = { kind: "none" } | { kind: "counting" } | { kind: "limit"; limit: Quota };

export function parseStored(raw: unknown): Stored {
  if (raw == null) return { kind: "none" };
  let parsed: { counting?: true; maxEntries?: number; maxBytes?: number };
  try {
    parsed = JSON.parse(String(raw));
  } catch (cause) {
    throw new StoreCommandError("a workspace's quota limit on Redis is not JSON: set it again with setQuota", {
      cause,
    });
  }
  if (parsed.counting) return { kind: "counting" };
  const limit: Quota = {};
  if (typeof parsed.maxEntries === "number") limit.maxEntries = parsed.maxEntries;
  if (typeof parsed.maxBytes === "number") limit.maxBytes = parsed.maxBytes;
  return { kind: "limit", limit };
}

/** What one write does to one entry (named by its full key, unique within the workspace). */
export interface Change {
  member: string;
  /** Bytes of the live value it replaces, as the layout read it; undefined: none. */
  old: number | undefined;
  /** Bytes of the value written; undefined: deleted. */
  next: number | undefined;
  /** Expiry (server clock) of the value written. */
  expiresAt?: number | undefined;
}

export const sizeField = (member: string) => `k${member}`;
export const expiringMember = (bytes: number | string, member: string) => `${bytes}:${member}`;
/** The bytes and the member of an `expiring` entry (`<bytes>:<key>`). */
export function parseExpiring(entry: string): { bytes: number; member: string } {
  const cut = entry.indexOf(":");
  return { bytes: Number(entry.slice(0, cut)), member: entry.slice(cut + 1) };
}

interface State {
  /** Bytes it counts for now; undefined: not counted. */
  counted: number | undefined;
  /** Its size on record (an entry with an expiry), and that expiry. */
  size?: string | undefined;
  expiresAt?: number | undefined;
}

export class Ledger {
  readonly usage: QuotaDelta;
  readonly #read: QuotaDelta;
  readonly #sizes: ReadonlyMap<string, string>;
  readonly #settled: readonly string[];
  readonly #states = new Map<string, State>();

  /** `sizes`: sizes on record of the members read; `settled`: expired entries this attempt uncounts. */
  constructor(read: QuotaDelta, sizes: ReadonlyMap<string, string>, settled: readonly string[]) {
    this.#read = read;
    this.#sizes = sizes;
    this.#settled = settled;
    this.usage = { ...read };
    for (const entry of settled) {
      this.usage.entries -= 1;
      this.usage.bytes -= parseExpiring(entry).bytes;
    }
  }

  #state(change: Change, overlay: Map<string, State>): State {
    const known = overlay.get(change.member) ?? this.#states.get(change.member);
    if (known) return known;
    // An entry with a size on record is counted (live or expired, until settled); else the layout's read tells.
    const size = this.#sizes.get(change.member);
    return { counted: size !== undefined ? Number(size) : change.old, size };
  }

  /** What `changes` (one write) add to the usage, and the states they leave, applied by commit(). */
  plan(changes: readonly Change[]): { delta: QuotaDelta; commit(): void } {
    const overlay = new Map<string, State>();
    const delta = { entries: 0, bytes: 0 };
    for (const change of changes) {
      const before = this.#state(change, overlay);
      if (before.counted !== undefined) {
        delta.entries -= 1;
        delta.bytes -= before.counted;
      }
      if (change.next !== undefined) {
        delta.entries += 1;
        delta.bytes += change.next;
      }
      const timed = change.next !== undefined && change.expiresAt !== undefined;
      overlay.set(change.member, {
        counted: change.next,
        size: timed ? String(change.next) : undefined,
        expiresAt: timed ? change.expiresAt : undefined,
      });
    }
    return {
      delta,
      commit: () => {
        for (const [member, state] of overlay) this.#states.set(member, state);
        this.usage.entries += delta.entries;
        this.usage.bytes += delta.bytes;
      },
    };
  }

  /** The commands that record what was committed (none when nothing changed). */
  commands(keys: QuotaKeys): string[][] {
    const zrem = [...this.#settled];
    const hdel = this.#settled.map((entry) => sizeField(parseExpiring(entry).member));
    const zadd: string[] = [];
    const hset: string[] = [];
    for (const [member, state] of this.#states) {
      const initial = this.#sizes.get(member);
      if (initial !== undefined) {
        zrem.push(expiringMember(initial, member));
        hdel.push(sizeField(member));
      }
      if (state.size !== undefined) {
        zadd.push(String(state.expiresAt), expiringMember(state.size, member));
        hset.push(sizeField(member), state.size);
      }
    }
    const commands: string[][] = [];
    if (zrem.length > 0) commands.push(["ZREM", keys.expiring, ...zrem]);
    if (hdel.length > 0) commands.push(["HDEL", keys.usage, ...hdel]);
    if (zadd.length > 0) commands.push(["ZADD", keys.expiring, ...zadd]);
    if (hset.length > 0) commands.push(["HSET", keys.usage, ...hset]);
    const entries = this.usage.entries - this.#read.entries;
    const bytes = this.usage.bytes - this.#read.bytes;
    if (entries !== 0) commands.push(["HINCRBY", keys.usage, "entries", String(entries)]);
    if (bytes !== 0) commands.push(["HINCRBY", keys.usage, "bytes", String(bytes)]);
    return commands;
  }
}
