/**
 * The Redis driver: plain commands, no Lua, in one of two layouts (docs/redis-index.md):
 * - "keys" (the default, API.md's layout): key k of a collection at keyspace.key(collection, k),
 *   listed by a sorted-set index beside it (strings.ts), so raw Keyv and redis-cli see every key;
 * - "hash": each collection one hash (hash.ts), one command per plain write and less memory; its
 *   keys are fields of `<prefix>#data`, not keys of their own.
 * The workspace registry keeps the string layout in both, because there each tenant's ACL user
 * may write its own name only, and Redis ACLs grant keys, not fields of a hash.
 */
import { InvalidConfigError } from "../../errors.js";
import { metaKey } from "../../keys.js";
import { Memo, MemoSet } from "../../memo.js";
import { LOG_LIMIT } from "../change-log.js";
import type { Driver, ScopeOptions } from "../driver.js";
import { adoptOnce } from "./adopt.js";
import { type Registry, ServerClock, utf8 } from "./common.js";
import { type HashContext, hashScope } from "./hash.js";
import { Nonces } from "./log.js";
import { notifier, Publisher, type Subscribe } from "./notify.js";
import { QuotaGate, type QuotaHook } from "./quota.js";
import { redisQuotaBook } from "./quota-book.js";
import { stringScope } from "./strings.js";
import { existsBatch } from "./tick-batch.js";
import type { RedisCommander } from "./tx.js";
import { redisWatch } from "./watch.js";

export type { RedisCommander } from "./tx.js";

export interface RedisDriverOptions {
  /** Change-log entries kept per tracked prefix, at least (default LOG_LIMIT; Redis may keep ~100 more). */
  logLimit?: number;
  /** "keys" (default) or "hash"; see above. */
  layout?: "keys" | "hash" | undefined;
  /** A subscribe-mode connection for storage.watch() (notify.ts); without it the driver cannot watch. */
  subscribe?: Subscribe | undefined;
  /** Shared by the drivers of one server in a process (notify.ts publisherFor). */
  publisher?: Publisher | undefined;
  /** A Redis Cluster: changes go by sharded pub/sub (notify.ts Publisher), when no publisher is given. */
  sharded?: boolean | undefined;
}

/** The registry's prefix (lifecycle/registry.ts workspacesPrefix): `<root>#workspaces`, maybe in braces. */
export const keepsStringLayout = (prefix: string) => prefix.endsWith("#workspaces") || prefix.endsWith("#workspaces}");

/** A driver on Redis; `connect` is called per operation and should return one shared client. */
export function redisDriver(connect: () => Promise<RedisCommander>, options: RedisDriverOptions = {}): Driver {
  const cap = String(Math.max(1, Math.floor(options.logLimit ?? LOG_LIMIT)));
  const clock = new ServerClock();
  const nonces = new Nonces();
  const publisher = options.publisher ?? new Publisher({ sharded: options.sharded === true });
  const notify = notifier(publisher);
  const checked = new Memo<string, Promise<void> | true>();
  // A cluster's keys of one tick may live in different slots: no multi-key first-use reads there.
  const batched = options.sharded !== true;
  const existing = batched ? existsBatch() : undefined;
  const exists: Exists = (client, key) =>
    existing ? existing.ask(client, key) : client.sendCommand(["EXISTS", key]).then(Number);
  const hashed = (prefix: string) => options.layout === "hash" && !keepsStringLayout(prefix);
  const gate = new QuotaGate(clock, batched);
  const registry: Registry = (prefix, names, quotaBase) =>
    connect().then(async (client) => {
      // A first write's other first-use reads go out beside the layout check, not after it.
      publisher.prime(client, prefix);
      if (quotaBase !== undefined) Promise.resolve(gate.active(client, quotaBase)).catch(() => {});
      const commands: string[][] = [];
      const waits: Promise<unknown>[] = [];
      // The data prefix's own first-use check goes out beside the registries' (one EXISTS per tick).
      const checks = keepsStringLayout(prefix) ? [] : [prefix];
      for (const { prefix: at, name } of names) {
        // A cluster writes its registries first, each on its own: one elsewhere cannot join a MULTI
        // on the data's slot, and while that slot migrates a MULTI naming two keys gets TRYAGAIN
        // where one key's write is served (ASK), so a first write keeps flowing in a reshard too.
        if (options.sharded) {
          waits.push(scope(at).set(name, "1"));
          continue;
        }
        if (!keepsStringLayout(at)) checks.push(at);
        commands.push(...registryWrite(at, name, hashed(at)));
      }
      for (const at of checks) {
        const checking =
          options.layout === "hash" ? adoptOnce(context, at, client) : checkLayout(client, at, checked, exists);
        if (checking) waits.push(checking);
      }
      await Promise.all(waits);
      return commands;
    });
  const context: HashContext = {
    notify,
    connect,
    cap,
    clock,
    nonces,
    adopted: new MemoSet(),
    adopting: new Map(),
    swept: new Memo(),
    registry,
    exists,
  };
  const layoutOf = (prefix: string) => (options.layout === "hash" && !keepsStringLayout(prefix) ? "hash" : "keys");
  const scope = (prefix: string, scopeOptions?: ScopeOptions) => {
    const quota: QuotaHook | undefined =
      scopeOptions?.quota === undefined ? undefined : { base: scopeOptions.quota, gate };
    if (keepsStringLayout(prefix)) return stringScope(prefix, connect, cap, clock, nonces, notify, undefined, registry);
    if (options.layout === "hash") return hashScope(prefix, context, quota);
    return stringScope(
      prefix,
      refusingHashed(prefix, connect, checked, exists),
      cap,
      clock,
      nonces,
      notify,
      quota,
      registry,
    );
  };
  const quotas = redisQuotaBook(gate, connect, layoutOf);
  return options.subscribe
    ? { scope, quotas, watch: redisWatch(options.subscribe, scope, publisher) }
    : { scope, quotas };
}

/**
 * A registry entry, to be queued in a data write's MULTI: its index member alone (a field of
 * `#data` in the hash layout). Listing reads only the index, so the value key `"1"` a plain write
 * would add buys nothing but a command and a key per new workspace (docs/redis-index.md). No ZREM
 * of the registry's #ttl, which a plain write of its own sends: registry names never expire.
 */
function registryWrite(prefix: string, name: string, hashed: boolean): string[][] {
  if (hashed) return [["HSET", metaKey(prefix, "data"), utf8(name), "1"]];
  return [["ZADD", metaKey(prefix, "index"), "0", utf8(name)]];
}

type Exists = (client: RedisCommander, key: string) => Promise<number>;

/**
 * The key layout serving a prefix kept in the hash layout would find none of its data and write
 * beside it, silently. So each prefix is checked once per process (one EXISTS of its hash, batched
 * with the other first uses of its tick: tick-batch.ts) before it is served, and refused with a
 * typed error while it is a hash. Undefined once passed.
 */
function checkLayout(
  client: RedisCommander,
  prefix: string,
  checked: Map<string, Promise<void> | true>,
  exists: Exists,
): Promise<void> | undefined {
  let state = checked.get(prefix);
  if (state === true) return undefined;
  if (state === undefined) {
    state = exists(client, metaKey(prefix, "data")).then((count) => {
      if (count > 0) {
        throw new InvalidConfigError(
          "redisLayout",
          `${prefix} is kept in the hash layout (${metaKey(prefix, "data")} exists): open this store with redisLayout "hash" (KVWS_REDIS_LAYOUT=hash, kvws --redis-layout hash)`,
        );
      }
      checked.set(prefix, true);
    });
    // Refused (or the check failed): asked again next time, never remembered as passed.
    state.catch(() => checked.delete(prefix));
    checked.set(prefix, state);
  }
  return state;
}

function refusingHashed(
  prefix: string,
  connect: () => Promise<RedisCommander>,
  checked: Map<string, Promise<void> | true>,
  exists: Exists,
): () => Promise<RedisCommander> {
  let ok = false; // this view's own flag: once checked, every command goes straight to connect()
  const first = async () => {
    const client = await connect();
    const state = checkLayout(client, prefix, checked, exists);
    if (state) await state;
    ok = true;
    return client;
  };
  return () => (ok ? connect() : first());
}
