/**
 * Recognising the Redis adapters an app already holds — by what they are, not by `instanceof`:
 * an app may load another copy or version of @keyv/redis (npm nests ours), or load it with
 * `require` (a second module instance), and still hold a perfectly good Redis connection.
 * Each recognised adapter yields a `RedisCommander` for the one Redis driver.
 */
import type { ErrorReply } from "@redis/client";
import { KeyvWorkspacesError } from "../../errors.js";
import type { Driver } from "../driver.js";
import { type ClusterClient, clusterCommander } from "./cluster-commander.js";
import { clusterSubscriptions } from "./cluster-subscribe.js";
import { type RedisDriverOptions, redisDriver } from "./driver.js";
import type { Subscribe } from "./notify.js";
import { type Dedicated, duplicateOf, type Optimistic, optimisticOver } from "./optimistic.js";
import { ioSubscriptions, type NodeRedisLike, nodeRedisSubscriptions, type Subscriptions } from "./subscribe.js";
import { execOnce, isErrorReply, type RedisCommander, typedReply } from "./tx.js";

type Send = (args: string[]) => Promise<unknown>;
type Fn = (...args: never[]) => unknown;

/** What a recognised adapter is, for messages, and how to reach its server. */
export interface RedisAdapter {
  readonly kind: string;
  connect(): Promise<RedisCommander>;
  /** Subscribe-mode connections for storage.watch(), made from the adapter's client; absent: no watch. */
  readonly subscribe?: Subscribe;
  /** A cluster client: the change feed goes by sharded pub/sub (notify.ts). */
  readonly sharded?: boolean;
}

const isFn = (value: unknown): value is Fn => typeof value === "function";
const field = (value: unknown, name: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[name] : undefined;

// Reply errors of node-redis (any copy) and of ioredis/iovalkey (redis-errors); anything else is
// a connection problem and left to the driver's own mapping.
const REPLY_ERRORS = new Set(["ErrorReply", "SimpleError", "BlobError", "MultiErrorReply", "ReplyError"]);

function rethrowTyped(error: unknown): never {
  if (error instanceof KeyvWorkspacesError || isErrorReply(error)) throw error;
  if (error instanceof Error && REPLY_ERRORS.has(error.constructor?.name ?? "")) {
    throw typedReply(error as ErrorReply, error.message, "this server");
  }
  throw error;
}

function commander(send: Send, transaction?: RedisCommander["transaction"], optimistic?: Optimistic): RedisCommander {
  const raw: RedisCommander = { sendCommand: send };
  return {
    ...(optimistic && { optimistic }),
    sendCommand: (args) => send(args).catch(rethrowTyped),
    // A reply error inside EXEC's array is thrown by execOnce as is: map it here too.
    transaction: (commands, apart) =>
      (transaction ? transaction(commands, apart) : execOnce(raw, commands)).catch(rethrowTyped),
  };
}

/**
 * ioredis/iovalkey: `call(command, ...args)`; MULTI as its own pipeline (it tracks transactions
 * itself), whose commands are named by its lower-case methods.
 */
function ioCommander(client: Record<string, unknown>): RedisCommander {
  const call = client.call as (command: string, ...args: string[]) => Promise<unknown>;
  const multi = client.multi as (commands: string[][]) => { exec(): Promise<Array<[Error | null, unknown]> | null> };
  return commander(
    (args) => call.call(client, args[0] as string, ...args.slice(1)),
    async (commands) => {
      let results: Array<[Error | null, unknown]> | null;
      try {
        results = await multi
          .call(
            client,
            commands.map(([name, ...args]) => [String(name).toLowerCase(), ...args]),
          )
          .exec();
      } catch (error) {
        // EXECABORT: a command was refused while queueing (OOM, NOPERM); that refusal is the reason.
        const previous = field(error, "previousErrors") as unknown[] | undefined;
        throw previous?.[0] ?? error;
      }
      if (!results) throw new Error("Redis discarded a transaction (EXEC returned null)");
      const failed = results.find(([error]) => error);
      if (failed) throw failed[0];
      return results.map(([, reply]) => reply);
    },
    client.isCluster ? undefined : optimisticOver(async () => ioDedicated(client)),
  );
}

/** A connection of its own for WATCH: ioredis's duplicate(), which connects by itself. */
function ioDedicated(client: Record<string, unknown>): Dedicated {
  const copy = (client.duplicate as () => Record<string, unknown>).call(client);
  (copy.on as (event: string, listener: () => void) => void).call(copy, "error", () => {});
  const call = copy.call as (command: string, ...args: string[]) => Promise<unknown>;
  return {
    send: (args) => call.call(copy, args[0] as string, ...args.slice(1)),
    close: () => (copy.disconnect as () => void).call(copy),
  };
}

const isNodeRedisClient = (client: unknown) =>
  isFn(field(client, "sendCommand")) && isFn(field(client, "connect")) && isFn(field(client, "multi"));
const isNodeRedisCluster = (client: unknown) => isNodeRedisClient(client) && field(client, "slots") !== undefined;
const isSentinel = (store: object, client: unknown) =>
  (isFn(field(store, "isSentinel")) && (store as { isSentinel(): boolean }).isSentinel()) ||
  isFn(field(client, "getSentinelNode"));
const isIoRedis = (client: unknown) =>
  isFn(field(client, "call")) &&
  isFn(field(client, "multi")) &&
  typeof field(client, "status") === "string" &&
  typeof field(client, "isCluster") === "boolean";

/**
 * The Redis behind a @keyv/redis (any copy or version, ESM or CJS; standalone or cluster) or
 * @keyv/valkey adapter, or undefined. Both adapters say `opts.dialect === "redis"` — but so does
 * keyv-file, so the client itself must have the shape of a Redis client too.
 */
export function redisAdapterOf(store: object): RedisAdapter | undefined {
  if (field(field(store, "opts"), "dialect") !== "redis") return undefined;
  const client = field(store, "client");
  if (isFn(field(store, "getClient")) && isNodeRedisClient(client) && !isSentinel(store, client)) {
    const adapter = store as { getClient(): Promise<unknown> };
    const cluster = isNodeRedisCluster(client);
    const shims = new WeakMap<object, RedisCommander>();
    // Watchers' connections are copies of the client the adapter connected (subscribe.ts).
    const subscriptions = new WeakMap<object, Subscriptions>();
    const subscribe: Subscribe = async (channels, onMessage, onReset) => {
      const connected = (await adapter.getClient()) as object;
      let made = subscriptions.get(connected);
      if (!made) {
        made = cluster
          ? clusterSubscriptions(connected as unknown as ClusterClient, (error) => error as Error)
          : nodeRedisSubscriptions(connected as NodeRedisLike);
        subscriptions.set(connected, made);
      }
      return made.subscribe(channels, onMessage, onReset);
    };
    return {
      kind: cluster ? "@keyv/redis (cluster client)" : "@keyv/redis",
      subscribe,
      sharded: cluster,
      async connect() {
        const connected = (await adapter.getClient()) as Record<string, unknown>;
        let shim = shims.get(connected);
        if (!shim) {
          shim = cluster
            ? clusterCommander(connected as unknown as ClusterClient)
            : commander(
                (args) => (connected.sendCommand as Send).call(connected, args),
                undefined,
                optimisticOver(() => duplicateOf(connected as { duplicate(): unknown })),
              );
          shims.set(connected, shim);
        }
        return shim;
      },
    };
  }
  const io = field(store, "redis");
  if (isIoRedis(io)) {
    const shim = ioCommander(io as Record<string, unknown>);
    // An ioredis Cluster routes PUBSUB and SPUBLISH by no key: its writes tell no watcher, and it cannot watch.
    if (field(io, "isCluster")) return { kind: "@keyv/valkey (cluster client)", connect: async () => shim };
    const { subscribe } = ioSubscriptions(io as Record<string, unknown>);
    return { kind: "@keyv/valkey", connect: async () => shim, subscribe };
  }
  return undefined;
}

/**
 * A driver for a Redis adapter the app already has (@keyv/redis of any copy or version, standalone
 * or cluster, or @keyv/valkey), or undefined for other stores. Recognised by shape: above.
 */
export function redisDriverFor(store: object, options?: RedisDriverOptions): Driver | undefined {
  const adapter = redisAdapterOf(store);
  return (
    adapter &&
    redisDriver(() => adapter.connect(), {
      ...options,
      ...(adapter.subscribe && { subscribe: adapter.subscribe }),
      ...(adapter.sharded && { sharded: true }),
    })
  );
}
