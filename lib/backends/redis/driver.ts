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
import { LOG_LIMIT } from "../change-log.js";
import type { Driver, ScopeOptions } from "../driver.js";
import { ServerClock } from "./common.js";
import { type HashContext, hashScope } from "./hash.js";
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
  const context: HashContext = {
    notify,
    connect,
    cap,
    clock,
    nonces,
    adopted: new Set(),
    adopting: new Map(),
    swept: new Map(),
  };
  const checked = new Map<string, Promise<void> | true>();
  const gate = new QuotaGate(clock);
  const layoutOf = (prefix: string) => (options.layout === "hash" && !keepsStringLayout(prefix) ? "hash" : "keys");
  const scope = (prefix: string, scopeOptions?: ScopeOptions) => {
    const quota: QuotaHook | undefined =
      scopeOptions?.quota === undefined ? undefined : { base: scopeOptions.quota, gate };
    if (keepsStringLayout(prefix)) return stringScope(prefix, connect, cap, clock, nonces, notify);
    if (options.layout === "hash") return hashScope(prefix, context, quota);
    return stringScope(prefix, refusingHashed(prefix, connect, checked), cap, clock, nonces, notify, quota);
  };
  const quotas = redisQuotaBook(gate, connect, layoutOf);
  return options.subscribe
    ? { scope, quotas, watch: redisWatch(options.subscribe, scope, publisher) }
    : { scope, quotas };
}

/**
 * The key layout serving a prefix kept in the hash layout would find none of its data and write
 * beside it, silently. So each prefix is checked once per process (one EXISTS of its hash) before
 * it is served, and refused with a typed error while it is a hash.
 */
function refusingHashed(
  prefix: string,
  connect: () => Promise<RedisCommander>,
  checked: Map<string, Promise<void> | true>,
): () => Promise<RedisCommander> {
  let ok = false; // this view's own flag: once checked, every command goes straight to connect()
  const first = async () => {
    const client = await connect();
    let state = checked.get(prefix);
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
    if (state !== true) await state;
    ok = true;
    return client;
  };
  return () => (ok ? connect() : first());
}
