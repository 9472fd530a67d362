import KeyvRedis from "@keyv/redis";
import { InvalidNameError, InvalidValueError } from "../errors.js";
import { isWellFormed, joinKey, metaKey } from "../keys.js";
import type { Driver, Entry } from "./driver.js";
import { CLEAR_BATCH, DELETE, type Script, SET } from "./redis-scripts.js";

/** The one client call we need; node-redis clients (and KeyvRedis's) provide it. */
export interface RedisCommander {
  sendCommand(args: string[]): Promise<unknown>;
}

export interface RedisDriverOptions {
  /**
   * Change-log entries kept per prefix, at least (default 1000; Redis trims whole stream
   * nodes, so up to ~100 more stay). A cache further behind than this reloads everything;
   * an entry costs about the length of its name plus a few bytes of Redis memory.
   */
  logLimit?: number;
}

export const DEFAULT_LOG_LIMIT = 1000;
const CLEAR_BATCH_SIZE = 1000;
const SCAN_COUNT = "1000";

/** The bookkeeping keys of one prefix, in the order every script takes them. */
export function bookkeeping(prefix: string): [index: string, version: string, log: string] {
  return [metaKey(prefix, "index"), metaKey(prefix, "version"), metaKey(prefix, "log")];
}

/**
 * Redis sends keys as UTF-8, which turns every unpaired surrogate into U+FFFD: "\uD800" and
 * "\uDC00" would be one key. The collections refuse such names already; this covers collection().
 */
function utf8(key: string): string {
  if (!isWellFormed(key)) {
    throw new InvalidNameError(
      `key ${JSON.stringify(key)} contains an unpaired UTF-16 surrogate, which Redis cannot keep apart from others`,
    );
  }
  return key;
}

function redisString(value: unknown): string {
  if (typeof value === "string") return value;
  if (Buffer.isBuffer(value)) return value.toString("binary");
  throw new InvalidValueError(`the Redis backend stores strings (Keyv serialises values); got ${typeof value}`);
}

export async function runScript(client: RedisCommander, s: Script, keys: string[], args: string[]): Promise<unknown> {
  try {
    return await client.sendCommand(["EVALSHA", s.sha, String(keys.length), ...keys, ...args]);
  } catch (error) {
    if (!String((error as Error)?.message).startsWith("NOSCRIPT")) throw error;
    return client.sendCommand(["EVAL", s.source, String(keys.length), ...keys, ...args]);
  }
}

/** A sorted-set score as Redis sends it: "inf" in RESP2, a number in RESP3. */
export function score(value: unknown): number {
  if (typeof value === "number") return value;
  const text = String(value);
  if (text === "inf" || text === "+inf") return Number.POSITIVE_INFINITY;
  if (text === "-inf") return Number.NEGATIVE_INFINITY;
  return Number(text);
}

function serverMs(time: unknown): number {
  const [seconds, micros] = time as [string, string];
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/**
 * Every member of a sorted set with its score, via ZSCAN: unlike paging by offset it never
 * skips a member that stays put while others come and go (it may repeat one; callers dedupe).
 */
export async function* scanSortedSet(client: RedisCommander, key: string): AsyncGenerator<[string, unknown]> {
  let cursor = "0";
  do {
    const [next, flat] = (await client.sendCommand(["ZSCAN", key, cursor, "COUNT", SCAN_COUNT])) as [string, unknown[]];
    for (let i = 0; i < flat.length; i += 2) yield [String(flat[i]), flat[i + 1]];
    cursor = String(next);
  } while (cursor !== "0");
}

type LogEntry = [id: string, fields: string[]];

/**
 * Driver that talks to Redis directly (never through KeyvRedis's namespace or SCAN):
 * values at `<prefix>:<name>`, and per prefix a sorted-set index (listing and clearing cost
 * O(entries in that scope), not O(keys in the database)), a version and a bounded change
 * log, all kept in step atomically by the scripts in redis-scripts.ts.
 */
export function redisDriver(connect: () => Promise<RedisCommander>, options: RedisDriverOptions = {}): Driver {
  const cap = String(Math.max(1, Math.floor(options.logLimit ?? DEFAULT_LOG_LIMIT)));
  const set = async (prefix: string, entries: readonly Entry[], ttl: number | undefined) => {
    if (entries.length === 0) return;
    const keys: string[] = bookkeeping(prefix);
    const args = [ttl === undefined ? "" : String(Math.max(1, Math.ceil(ttl))), cap];
    for (const { name, value } of entries) {
      keys.push(utf8(joinKey(prefix, name)));
      args.push(name, redisString(value));
    }
    await runScript(await connect(), SET, keys, args);
  };
  const del = async (prefix: string, names: readonly string[]) => {
    if (names.length === 0) return 0;
    const keys = [...bookkeeping(prefix), ...names.map((n) => utf8(joinKey(prefix, n)))];
    return Number(await runScript(await connect(), DELETE, keys, [cap, ...names]));
  };
  const validTtl = (ttl: number | undefined) => (typeof ttl === "number" && ttl > 0 ? ttl : undefined);

  return {
    scope(prefix) {
      const key = (name: string) => utf8(joinKey(prefix, name));
      return {
        prefix,
        async get(name) {
          return (await (await connect()).sendCommand(["GET", key(name)])) ?? undefined;
        },
        async getMany(names) {
          if (names.length === 0) return [];
          const values = (await (await connect()).sendCommand(["MGET", ...names.map(key)])) as unknown[];
          return values.map((value) => value ?? undefined);
        },
        async has(name) {
          return Number(await (await connect()).sendCommand(["EXISTS", key(name)])) > 0;
        },
        set: (name, value, ttl) => set(prefix, [{ name, value }], validTtl(ttl)),
        async setMany(entries) {
          // Group by TTL so each group is one atomic script call.
          const groups = new Map<number | undefined, Entry[]>();
          for (const entry of entries) {
            const ttl = validTtl(entry.ttl);
            let group = groups.get(ttl);
            if (!group) groups.set(ttl, (group = []));
            group.push(entry);
          }
          for (const [ttl, group] of groups) await set(prefix, group, ttl);
        },
        delete: async (name) => (await del(prefix, [name])) > 0,
        deleteMany: (names) => del(prefix, names),
        async *names() {
          const client = await connect();
          // Expired members are hidden here and pruned by the next write to the prefix; listing
          // never writes, so read-only ACL users can list. The clock is Redis's, as in the
          // scripts, so a skewed client clock neither hides live names nor shows expired ones.
          const time = client.sendCommand(["TIME"]);
          time.catch(() => {}); // awaited below; this only keeps an early return from leaving it unhandled
          let now: number | undefined;
          const seen = new Set<string>();
          for await (const [name, raw] of scanSortedSet(client, bookkeeping(prefix)[0])) {
            now ??= serverMs(await time);
            if (score(raw) >= now && !seen.has(name)) {
              seen.add(name);
              yield name;
            }
          }
          await time;
        },
        async clear() {
          const client = await connect();
          const keys = bookkeeping(prefix);
          let first = "1";
          while (Number(await runScript(client, CLEAR_BATCH, keys, [prefix, String(CLEAR_BATCH_SIZE), first])) > 0) {
            first = "0";
          }
        },
        async version() {
          const value = await (await connect()).sendCommand(["GET", bookkeeping(prefix)[1]]);
          return value == null ? "0" : String(value);
        },
        async changedSince(version) {
          if (!/^\d{1,16}$/.test(version) || !Number.isSafeInteger(Number(version) + 1)) return undefined;
          const since = Number(version);
          const client = await connect();
          const [, versionKey, logKey] = bookkeeping(prefix);
          // Sent together (one round trip). The log only ever loses entries from its head, and
          // each version logs at least one entry starting at `<v>-0`: so if the first entry
          // after `since` is `<since+1>-0`, nothing after `since` has been trimmed away.
          const [entries, current] = (await Promise.all([
            client.sendCommand(["XRANGE", logKey, `${since + 1}-0`, "+"]),
            client.sendCommand(["GET", versionKey]),
          ])) as [LogEntry[], unknown];
          const now = Number(current ?? 0);
          // A version from before the counter was reset (or made up) says nothing about now.
          if (since > now) return undefined;
          // An empty answer is only trusted when the version agrees: a log deleted by hand (or a
          // write landing between the two reads) must not pass for "nothing changed".
          if (entries.length === 0) return since === now ? [] : undefined;
          if (entries[0]?.[0] !== `${since + 1}-0`) return undefined;
          const names = new Set<string>();
          for (const [, fields] of entries) {
            if (fields[0] !== "n") return undefined; // a clear: everything may have changed
            names.add(String(fields[1]));
          }
          return [...names];
        },
      };
    },
  };
}

/** A driver for a @keyv/redis adapter the app already has, or undefined for other stores. */
export function redisDriverFor(store: object, options?: RedisDriverOptions): Driver | undefined {
  if (!(store instanceof KeyvRedis)) return undefined;
  const adapter = store as KeyvRedis<unknown>;
  return redisDriver(async () => (await adapter.getClient()) as unknown as RedisCommander, options);
}
