/**
 * Per-workspace quotas on Redis, with plain commands only (no Lua: workspace ACL users may not
 * EVAL, and the driver runs none on its write path). Per workspace base `B` = `<root>:ws:<id>`
 * (`<root>:ws:{<id>}` in the hash-tag layout, so on a cluster all of it shares the workspace's slot):
 *
 *   `<root>#quota:<id>`  the limit, JSON (or a "counting" marker while setQuota counts). Outside
 *                        `B:*`, so a workspace ACL user may read it (`%R~`) but never write it.
 *   `B:#quota`           hash: `entries`, `bytes`, and `k<key>` → bytes for each entry with an expiry.
 *   `B:#quota-ttl`       sorted set of those entries, member `<bytes>:<key>`, score = expiry.
 *
 * A write under a quota is optimistic (optimistic.ts): WATCH the three keys and what it writes,
 * read the limit, the usage and the old sizes, check lib/quota.ts exceeds(), then MULTI: the
 * layout's own commands and HINCRBY of the usage. Entries that expired count until a quota write
 * (or quota()) settles them through `B:#quota-ttl`, which is what stats() already hides.
 * Whether a workspace has a quota is cached per process for at most QUOTA_REFRESH_MS, so a
 * workspace without one pays one GET per second per process, not one per write. docs/operations.md.
 */
import { PermissionDeniedError, StoreCommandError, UnsupportedStoreError } from "../../errors.js";
import { SEPARATOR, WORKSPACE_SEGMENT } from "../../keys.js";
import { exceeds, type Quota, type QuotaDelta, QUOTA_REFRESH_MS, quotaExceeded } from "../../quota.js";
import type { ServerClock } from "./common.js";
import { canWatch } from "./optimistic.js";
import type { RedisCommander } from "./tx.js";

/** Attempts of one quota write whose watched keys others keep changing, and how long it waits out a count. */
export const QUOTA_ATTEMPTS = 50;
export const COUNTING_WAIT_MS = 60_000;
/** Expired entries one write settles at most (the rest: the next writes). */
const SETTLE_LIMIT = 100;

export interface QuotaKeys {
  limit: string;
  usage: string;
  expiring: string;
}

export function quotaKeys(base: string): QuotaKeys {
  const marker = `${SEPARATOR}${WORKSPACE_SEGMENT}${SEPARATOR}`;
  const at = base.indexOf(marker);
  const id = base.slice(at + marker.length);
  return { limit: `${base.slice(0, at)}#quota${SEPARATOR}${id}`, usage: `${base}:#quota`, expiring: `${base}:#quota-ttl` };
}

export type Stored = { kind: "none" } | { kind: "counting" } | { kind: "limit"; limit: Quota };

export function parseStored(raw: unknown): Stored {
  if (raw == null) return { kind: "none" };
  const parsed = JSON.parse(String(raw)) as { counting?: true; maxEntries?: number; maxBytes?: number };
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

/** A layout's write as a quota attempt sees it: what to watch and read, then what that means. */
export interface Plan<R> {
  members: readonly string[];
  watch: readonly string[];
  reads: readonly string[][];
  /** From the layout's read replies (and the server time): the changes, the commands, the result. */
  build(replies: unknown[], now: number): { changes: Change[]; commands: string[][]; result: R };
}

export const sizeField = (member: string) => `k${member}`;
const expiringMember = (bytes: number | string, member: string) => `${bytes}:${member}`;

/** The quota bookkeeping a change list needs: usage deltas and the expiring entries' members. */
function bookkeeping(
  keys: QuotaKeys,
  changes: readonly Change[],
  sizes: Map<string, string>,
  settled: readonly string[],
): { delta: QuotaDelta; settledDelta: QuotaDelta; commands: string[][] } {
  const delta = { entries: 0, bytes: 0 };
  const settledDelta = { entries: 0, bytes: 0 };
  const zrem: string[] = [];
  const hdel: string[] = [];
  const zadd: string[] = [];
  const hset: string[] = [];
  for (const member of settled) {
    const cut = member.indexOf(":");
    settledDelta.entries -= 1;
    settledDelta.bytes -= Number(member.slice(0, cut));
    zrem.push(member);
    hdel.push(sizeField(member.slice(cut + 1)));
  }
  for (const change of changes) {
    const size = sizes.get(change.member);
    // An entry with a size on record is counted (live or expired, until settled); else the layout's read tells.
    const old = size !== undefined ? Number(size) : change.old;
    if (old !== undefined) {
      delta.entries -= 1;
      delta.bytes -= old;
    }
    if (size !== undefined) {
      zrem.push(expiringMember(size, change.member));
      hdel.push(sizeField(change.member));
    }
    if (change.next !== undefined) {
      delta.entries += 1;
      delta.bytes += change.next;
      if (change.expiresAt !== undefined) {
        zadd.push(String(change.expiresAt), expiringMember(change.next, change.member));
        hset.push(sizeField(change.member), String(change.next));
      }
    }
  }
  const commands: string[][] = [];
  if (zrem.length > 0) commands.push(["ZREM", keys.expiring, ...zrem]);
  if (hdel.length > 0) commands.push(["HDEL", keys.usage, ...hdel]);
  if (zadd.length > 0) commands.push(["ZADD", keys.expiring, ...zadd]);
  if (hset.length > 0) commands.push(["HSET", keys.usage, ...hset]);
  const entries = delta.entries + settledDelta.entries;
  const bytes = delta.bytes + settledDelta.bytes;
  if (entries !== 0) commands.push(["HINCRBY", keys.usage, "entries", String(entries)]);
  if (bytes !== 0) commands.push(["HINCRBY", keys.usage, "bytes", String(bytes)]);
  return { delta, settledDelta, commands };
}

const COUNTING = Symbol("counting");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Quota state of the workspaces one driver writes, cached per process (see the module comment). */
export class QuotaGate {
  readonly #cache = new Map<string, { at: number; stored: Stored }>();
  readonly #refreshing = new Map<string, Promise<Stored>>();
  constructor(readonly clock: ServerClock) {}

  /** Remembers what a read sent at `at` (local ms) saw; a later reading never loses to an older one. */
  remember(base: string, stored: Stored, at: number): void {
    const known = this.#cache.get(base);
    if (!known || known.at <= at) this.#cache.set(base, { at, stored });
  }

  /** Whether writes of `base` take the quota path: cached, read again once the cache is QUOTA_REFRESH_MS old. */
  active(client: RedisCommander, base: string): boolean | Promise<boolean> {
    const known = this.#cache.get(base);
    if (known && Date.now() - known.at < QUOTA_REFRESH_MS) return known.stored.kind !== "none";
    let refreshing = this.#refreshing.get(base);
    if (!refreshing) {
      const at = Date.now();
      refreshing = client
        .sendCommand(["GET", quotaKeys(base).limit])
        .then((raw) => {
          const stored = parseStored(raw);
          this.remember(base, stored, at);
          return stored;
        })
        .finally(() => this.#refreshing.delete(base));
      this.#refreshing.set(base, refreshing);
    }
    return refreshing.then((stored) => stored.kind !== "none");
  }

  /**
   * One optimistic attempt of `plan` under the quota of `base`: its result, null when a watched
   * key changed (try again), or COUNTING while setQuota counts. A refusal throws quotaExceeded.
   */
  async attempt<R>(client: RedisCommander, base: string, plan: Plan<R>): Promise<{ result: R } | null | typeof COUNTING> {
    if (!canWatch(client)) {
      throw new UnsupportedStoreError(
        "a workspace with a quota needs conditional writes (WATCH) on its own connection, which this Redis client does not give; open the storage by URL",
      );
    }
    const keys = quotaKeys(base);
    const now = await this.clock.now(client);
    const at = Date.now();
    let outcome: { result: R } | typeof COUNTING | { refused: Error } | undefined;
    const done = await client.optimistic(
      [keys.limit, keys.usage, keys.expiring, ...plan.watch],
      [
        ["GET", keys.limit],
        ["HMGET", keys.usage, "entries", "bytes", ...plan.members.map(sizeField)],
        ["ZRANGEBYSCORE", keys.expiring, "-inf", `(${now}`, "LIMIT", "0", String(SETTLE_LIMIT)],
        ...plan.reads,
      ],
      ([rawLimit, rawUsage, rawExpired, ...replies]) => {
        const stored = parseStored(rawLimit);
        this.remember(base, stored, at);
        // Not thrown: an error inside an attempt drops its connection (optimistic.ts).
        if (stored.kind === "counting") {
          outcome = COUNTING;
          return undefined;
        }
        const built = plan.build(replies, now);
        outcome = { result: built.result };
        if (stored.kind === "none") return built.commands; // removed meanwhile: a plain write
        const [entries, bytes, ...sizeList] = rawUsage as unknown[];
        const sizes = new Map<string, string>();
        plan.members.forEach((member, i) => {
          if (sizeList[i] != null) sizes.set(member, String(sizeList[i]));
        });
        const mine = new Set(plan.members);
        const settled = (rawExpired as unknown[])
          .map(String)
          .filter((member) => !mine.has(member.slice(member.indexOf(":") + 1)));
        const { delta, settledDelta, commands } = bookkeeping(keys, built.changes, sizes, settled);
        const usage = {
          entries: Number(entries ?? 0) + settledDelta.entries,
          bytes: Number(bytes ?? 0) + settledDelta.bytes,
        };
        if (exceeds(stored.limit, usage, delta)) {
          outcome = { refused: quotaExceeded(base, stored.limit, usage, delta) };
          return undefined;
        }
        return [...built.commands, ...commands];
      },
    );
    if (outcome === undefined || done === null) return null;
    if ("refused" in (outcome as object)) throw (outcome as { refused: Error }).refused;
    return outcome as { result: R } | typeof COUNTING;
  }

  /** One attempt for transact's loop: null means read again (a watched key changed, or a count is under way). */
  async once<R>(client: RedisCommander, base: string, plan: Plan<R>): Promise<R | null> {
    const outcome = await this.attempt(client, base, plan);
    if (outcome === COUNTING) {
      await sleep(50);
      return null;
    }
    return outcome === null ? null : outcome.result;
  }

  /** `plan` under the quota, retried while others change the watched keys or setQuota counts. */
  async guard<R>(client: RedisCommander, base: string, plan: () => Plan<R>): Promise<R> {
    const deadline = Date.now() + COUNTING_WAIT_MS;
    for (let tries = 0; tries < QUOTA_ATTEMPTS; ) {
      const outcome = await this.attempt(client, base, plan());
      if (outcome === COUNTING) {
        if (Date.now() > deadline) break;
        await sleep(50);
        continue;
      }
      if (outcome !== null) return outcome.result;
      tries++;
      await sleep(Math.random() * Math.min(50, 2 ** tries));
    }
    throw new StoreCommandError(
      `gave up a write under the quota of ${base} after ${QUOTA_ATTEMPTS} attempts: others kept writing the workspace (or its quota was being counted)`,
    );
  }
}

/** The hook a quota-scoped prefix store gets: its workspace base and the driver's gate. */
export interface QuotaHook {
  base: string;
  gate: QuotaGate;
}

/** What a tenant's NOPERM on the limit key means for setQuota. */
export function deniedQuota(base: string, cause: unknown): PermissionDeniedError {
  return new PermissionDeniedError(
    `setQuota needs the operator's connection: this user may not write ${quotaKeys(base).limit} (a workspace's ACL user cannot change its own quota)`,
    { cause },
  );
}
