import KeyvRedis from "@keyv/redis";
import { InvalidValueError } from "../errors.js";
import { joinKey, metaKey } from "../keys.js";
import type { Driver, DriverEntry } from "./driver.js";
import { CLEAR_BATCH, DELETE, type Script, SET } from "./redis-scripts.js";

/** The one client call we need; node-redis clients (and KeyvRedis's) provide it. */
export interface RedisCommander {
  sendCommand(args: string[]): Promise<unknown>;
}

const CLEAR_BATCH_SIZE = 1000;
const LIST_PAGE = 1000;

function redisString(value: unknown): string {
  if (typeof value === "string") return value;
  if (Buffer.isBuffer(value)) return value.toString("binary");
  throw new InvalidValueError(`the Redis backend stores strings (Keyv serialises values); got ${typeof value}`);
}

async function run(client: RedisCommander, s: Script, keys: string[], args: string[]): Promise<unknown> {
  try {
    return await client.sendCommand(["EVALSHA", s.sha, String(keys.length), ...keys, ...args]);
  } catch (error) {
    if (!String((error as Error)?.message).startsWith("NOSCRIPT")) throw error;
    return client.sendCommand(["EVAL", s.source, String(keys.length), ...keys, ...args]);
  }
}

/**
 * Driver that talks to Redis directly (never through KeyvRedis's namespace or SCAN):
 * values at `<prefix>:<name>`, and a sorted-set index per prefix so listing and
 * clearing one scope costs O(entries in that scope), not O(keys in the database).
 */
export function redisDriver(connect: () => Promise<RedisCommander>): Driver {
  const index = (prefix: string) => metaKey(prefix, "index");
  const set = async (prefix: string, entries: readonly DriverEntry[], ttl: number | undefined) => {
    if (entries.length === 0) return;
    const client = await connect();
    const keys = [index(prefix)];
    const args = [ttl === undefined ? "" : String(Math.max(1, Math.ceil(ttl)))];
    for (const { name, value } of entries) {
      keys.push(joinKey(prefix, name));
      args.push(name, redisString(value));
    }
    await run(client, SET, keys, args);
  };
  const del = async (prefix: string, names: readonly string[]) => {
    if (names.length === 0) return 0;
    const client = await connect();
    return Number(await run(client, DELETE, [index(prefix), ...names.map((n) => joinKey(prefix, n))], [...names]));
  };
  const validTtl = (ttl: number | undefined) => (typeof ttl === "number" && ttl > 0 ? ttl : undefined);

  return {
    async get(key) {
      return (await (await connect()).sendCommand(["GET", key])) ?? undefined;
    },
    async getMany(keys) {
      if (keys.length === 0) return [];
      const values = (await (await connect()).sendCommand(["MGET", ...keys])) as unknown[];
      return values.map((value) => value ?? undefined);
    },
    async has(key) {
      return Number(await (await connect()).sendCommand(["EXISTS", key])) > 0;
    },
    set: (prefix, name, value, ttl) => set(prefix, [{ name, value }], validTtl(ttl)),
    async setMany(prefix, entries) {
      // Group by TTL so each group is one atomic script call.
      const groups = new Map<number | undefined, DriverEntry[]>();
      for (const entry of entries) {
        const ttl = validTtl(entry.ttl);
        groups.set(ttl, [...(groups.get(ttl) ?? []), entry]);
      }
      for (const [ttl, group] of groups) await set(prefix, group, ttl);
    },
    delete: async (prefix, name) => (await del(prefix, [name])) > 0,
    deleteMany: async (prefix, names) => (await del(prefix, names)) === names.length,
    async *names(prefix) {
      const client = await connect();
      // Members whose expiry has passed are hidden here and pruned by the next TTL write;
      // listing itself never writes, so read-only ACL users can list.
      const now = String(Date.now());
      let offset = 0;
      for (;;) {
        const page = (await client.sendCommand([
          "ZRANGE",
          index(prefix),
          `(${now}`,
          "+inf",
          "BYSCORE",
          "LIMIT",
          String(offset),
          String(LIST_PAGE),
        ])) as string[];
        yield* page;
        if (page.length < LIST_PAGE) return;
        offset += page.length;
      }
    },
    async clear(prefix) {
      const client = await connect();
      while (Number(await run(client, CLEAR_BATCH, [index(prefix)], [prefix, String(CLEAR_BATCH_SIZE)])) > 0) {
        // keep going until the index is empty
      }
    },
  };
}

/** A driver for a @keyv/redis adapter the app already has, or undefined for other stores. */
export function redisDriverFor(store: object): Driver | undefined {
  if (!(store instanceof KeyvRedis)) return undefined;
  const adapter = store as KeyvRedis<unknown>;
  return redisDriver(async () => (await adapter.getClient()) as unknown as RedisCommander);
}
