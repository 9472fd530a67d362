/**
 * Transactions of both layouts as steps that each name one key, for a Redis Cluster slot that is
 * half-migrated: Redis refuses a MULTI naming keys on both sides (TRYAGAIN) until the whole slot
 * has moved, but serves each key's own commands where that key is (ASK followed). Without these,
 * a write naming two keys would wait for the end of the migration (docs/cluster.md, Resharding).
 *
 * The steps keep what the MULTI kept, ordered so that a client dying between two of them, or a
 * writer of the same name landing between them, leaves at worst a member without a value (listed
 * until rebuildIndex, as after a delete at maxmemory), never a value without a member:
 *  - a write puts its members in before its values and again after them (a delete that landed in
 *    between removed them);
 *  - a delete removes values before members, then looks at its keys once more and lists again any
 *    that a write landing in between filled;
 *  - on a tracked prefix, a log entry before the change and one after: a reader that read the
 *    values between the two reads them again.
 * What steps cannot give is the one instant: a reader may see a value before its #ttl entry, or a
 * log entry before the change it announces, for the round trips they take. Only the combination
 * of a racing write of the same name AND this client dying between two steps can unlist a value.
 */
import type { Apart } from "./tx.js";

export interface WriteSteps {
  /** Registry entries (one key each), before anything else, as in the MULTI. */
  before?: readonly string[][];
  /** `ZADD <prefix>#index 0 <name>…` (the key layout). */
  members?: string[];
  /** `ZADD <prefix>#ttl <expiry> <name>…` (sent if it names any): before the values, as in the MULTI. */
  timed?: string[];
  /** The values, in order, so a name given twice ends with its last value. */
  values: () => string[][];
  /** A new log entry (XADD) per call, for tracked prefixes. */
  log?: () => string[];
}

export function writeApart({ before = [], members, timed, values, log }: WriteSteps): Apart {
  return async ({ send }) => {
    if (log) await send(log());
    for (const command of before) await send(command);
    if (members) await send(members);
    if (timed && timed.length > 2) await send(timed);
    for (const command of values()) await send(command);
    if (members) await send(members);
    if (log) await send(log());
    return [];
  };
}

export interface RemovalSteps {
  del: "DEL" | "UNLINK";
  keys: readonly string[];
  names: readonly string[];
  index: string;
  ttl: string;
  /** Bookkeeping sent before and again after (the log entry, or a clear's DELs), one key each. */
  around: () => string[][];
}

/** A key-layout removal; resolves with [how many values it removed], as DEL's reply. */
export function removalApart({ del, keys, names, index, ttl, around }: RemovalSteps): Apart {
  return async ({ send }) => {
    for (const command of around()) await send(command);
    const removed = await Promise.all(keys.map((key) => send([del, key])));
    await send(["ZREM", index, ...names]);
    await send(["ZREM", ttl, ...names]);
    // A write of one of these names between its DEL and the ZREM left a value the ZREM unlisted.
    const present = await Promise.all(keys.map((key) => send(["EXISTS", key])));
    const back = names.flatMap((name, i) => (Number(present[i]) > 0 ? ["0", name] : []));
    if (back.length > 0) await send(["ZADD", index, ...back]);
    for (const command of around()) await send(command);
    return [removed.reduce((sum: number, n) => sum + Number(n), 0)];
  };
}

/** A hash-layout removal on a tracked prefix: the HMGET + HDEL stay one MULTI on `#data`. */
export function hashRemovalApart(atomic: readonly string[][], log: () => string[]): Apart {
  return async ({ send, multi }) => {
    await send(log());
    const replies = await multi(atomic);
    await send(log());
    return replies;
  };
}

/**
 * A hash-layout clear: #ttl before #data (a TTL write landing between them leaves a #ttl entry
 * without its field, which the sweep drops, never a field the sweep cannot find), the log after
 * #data (a tracked write landing between them is seen by every reader, which reloads).
 */
export function clearApart(keys: { ttl: string; log: string; legacyVersion: string }, data: string): Apart {
  return async ({ send }) => {
    for (const key of [keys.ttl, data, keys.log, keys.legacyVersion]) await send(["UNLINK", key]);
    return [];
  };
}
