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
import { joinKey, metaKey } from "../../keys.js";
import { Memo, MemoSet } from "../../memo.js";
import { LOG_LIMIT } from "../change-log.js";
import type { Driver, ScopeOptions } from "../driver.js";
import { type Registry, ServerClock, utf8 } from "./common.js";
import { adoptOnce, type HashContext, hashScope } from "./hash.js";
import { Nonces } from "./log.js";
import { notifier, Publisher, type Subscribe } from "./notify.js";
import { QuotaGate, type QuotaHook } from "./quota.js";
import { redisQuotaBook } from "./quota-book.js";
import { stringScope } from "./strings.js";
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
  const hashed = (prefix: string) => options.layout === "hash" && !keepsStringLayout(prefix);
  const gate = new QuotaGate(clock);
  const registry: Registry = (prefix, names, quotaBase) =>
    connect().then(async (client) => {
      // A first write's other first-use reads go out beside the layout check, not after it.
      publisher.prime(client, prefix);
      if (quotaBase !== undefined) Promise.resolve(gate.active(client, quotaBase)).catch(() => {});
      const commands: string[][] = [];
      const waits: Promise<unknown>[] = [];
      // The data prefix's own first-use check goes in the same EXISTS as the registries'.
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
      const checking =
        options.layout === "hash" ? adoptMany(context, client, checks) : checkLayouts(client, checks, checked);
      await Promise.all([...waits, checking]);
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
  };
  const layoutOf = (prefix: string) => (options.layout === "hash" && !keepsStringLayout(prefix) ? "hash" : "keys");
  const scope = (prefix: string, scopeOptions?: ScopeOptions) => {
    const quota: QuotaHook | undefined =
      scopeOptions?.quota === undefined ? undefined : { base: scopeOptions.quota, gate };
    if (keepsStringLayout(prefix)) return stringScope(prefix, connect, cap, clock, nonces, notify, undefined, registry);
    if (options.layout === "hash") return hashScope(prefix, context, quota);
    return stringScope(prefix, refusingHashed(prefix, connect, checked), cap, clock, nonces, notify, quota, registry);
  };
  const quotas = redisQuotaBook(gate, connect, layoutOf);
  return options.subscribe
    ? { scope, quotas, watch: redisWatch(options.subscribe, scope, publisher) }
    : { scope, quotas };
}

/**
 * A registry entry as its own layout keeps it, to be queued in a data write's MULTI. No ZREM of
 * the registry's #ttl, which a plain write of its own sends: registry names never expire.
 */
function registryWrite(prefix: string, name: string, hashed: boolean): string[][] {
  if (hashed) return [["HSET", metaKey(prefix, "data"), utf8(name), "1"]];
  return [
    ["ZADD", metaKey(prefix, "index"), "0", utf8(name)],
    ["SET", utf8(joinKey(prefix, name)), "1"],
  ];
}

/**
 * The key layout serving a prefix kept in the hash layout would find none of its data and write
 * beside it, silently. So each prefix is checked once per process (one EXISTS of its hash) before
 * it is served, and refused with a typed error while it is a hash. Undefined once passed.
 */
function checkLayout(
  client: RedisCommander,
  prefix: string,
  checked: Map<string, Promise<void> | true>,
): Promise<void> | undefined {
  let state = checked.get(prefix);
  if (state === true) return undefined;
  if (state === undefined) {
    state = client.sendCommand(["EXISTS", metaKey(prefix, "data")]).then((exists) => {
      if (Number(exists) > 0) {
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

/**
 * First-use checks of several prefixes in one EXISTS of the keys that would tell (`key`): when
 * none exists every prefix passes (`pass`); otherwise each is checked alone (`single`), so the
 * one refused is named. Prefixes already checked or being checked (`state`) are not asked again.
 */
function checkMany(
  client: RedisCommander,
  prefixes: readonly string[],
  how: {
    state(prefix: string): Promise<void> | true | undefined;
    set(prefix: string, state: Promise<void> | undefined): void;
    key(prefix: string): string;
    pass(prefix: string): void;
    single(prefix: string): Promise<void> | undefined;
  },
): Promise<unknown> {
  const todo = prefixes.filter((prefix) => how.state(prefix) === undefined);
  const waits: unknown[] = prefixes.map((prefix) => how.state(prefix)).filter((state) => state !== true);
  if (todo.length < 2) return Promise.all([...waits, ...todo.map((prefix) => how.single(prefix))]);
  const exists = client.sendCommand(["EXISTS", ...todo.map(how.key)]).then(Number);
  for (const prefix of todo) {
    const state = exists.then((count) => {
      how.set(prefix, undefined);
      if (count > 0) return how.single(prefix);
      how.pass(prefix);
    });
    state.catch(() => how.set(prefix, undefined));
    how.set(prefix, state);
    waits.push(state);
  }
  return Promise.all(waits);
}

function checkLayouts(client: RedisCommander, prefixes: readonly string[], checked: Map<string, Promise<void> | true>) {
  return checkMany(client, prefixes, {
    state: (prefix) => checked.get(prefix),
    set: (prefix, state) => (state ? checked.set(prefix, state) : checked.delete(prefix)),
    key: (prefix) => metaKey(prefix, "data"),
    pass: (prefix) => checked.set(prefix, true),
    single: (prefix) => checkLayout(client, prefix, checked),
  });
}

/** The hash layout's first-use step (adopt.ts), for several prefixes: none has a string index, none to move. */
function adoptMany(ctx: HashContext, client: RedisCommander, prefixes: readonly string[]) {
  return checkMany(client, prefixes, {
    state: (prefix) => (ctx.adopted.has(prefix) ? true : ctx.adopting.get(prefix)),
    set: (prefix, state) => (state ? ctx.adopting.set(prefix, state) : ctx.adopting.delete(prefix)),
    key: (prefix) => metaKey(prefix, "index"),
    pass: (prefix) => ctx.adopted.add(prefix),
    single: (prefix) => adoptOnce(ctx, prefix, client),
  });
}

function refusingHashed(
  prefix: string,
  connect: () => Promise<RedisCommander>,
  checked: Map<string, Promise<void> | true>,
): () => Promise<RedisCommander> {
  let ok = false; // this view's own flag: once checked, every command goes straight to connect()
  const first = async () => {
    const client = await connect();
    const state = checkLayout(client, prefix, checked);
    if (state) await state;
    ok = true;
    return client;
  };
  return () => (ok ? connect() : first());
}
