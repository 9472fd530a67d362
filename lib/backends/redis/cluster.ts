/**
 * Redis Cluster: one seed node, the rest discovered by node-redis's cluster client. Every
 * command is routed by its first key; with the hash-tag layout (keys.ts) everything one
 * driver operation touches shares that key's slot, so a MULTI/EXEC never spans nodes.
 *
 * MOVED and ASK on single commands are followed by node-redis. Its cluster MULTI follows
 * neither, so transaction() does: MOVED refreshes the slot map (through a plain routed command)
 * and resends, ASK sends ASKING + the transaction to the importing node. TRYAGAIN (a slot
 * half-migrated), CLUSTERDOWN, LOADING, BUSY are retried with backoff until commandTimeoutMs,
 * then the caller gets a typed ConnectionError.
 */
import KeyvRedis from "@keyv/redis";
import { createCluster, type RedisClusterType } from "@redis/client";
import { ConnectionError, InvalidConfigError } from "../../errors.js";
import type { Backend, OpenOptions } from "../driver.js";
import { InFlight, within } from "./bounds.js";
import { clusterCommander } from "./cluster-commander.js";
import { clusterSubscriptions } from "./cluster-subscribe.js";
import { redisDriver } from "./driver.js";
import { DEFAULT_CONNECT_TIMEOUT_MS, redisError } from "./errors.js";
import { publisherFor, type Subscribe } from "./notify.js";
import type { RedisCommander } from "./tx.js";
import { redact, scrub, urlPassword } from "./url.js";

export {
  type ClusterClient,
  type ClusterCommanderOptions,
  clusterCommander,
  clusterNodeUrls,
  firstKey,
} from "./cluster-commander.js";

const RECONNECT_MAX_DELAY_MS = 2000;

export interface ClusterConnection {
  readonly cluster: RedisClusterType;
  readonly commander: RedisCommander;
  /** Sharded subscriptions for watchers (cluster-subscribe.ts). */
  readonly subscribe: Subscribe;
  close(): Promise<void>;
}

/**
 * Connects to the cluster `url` names one node of (bounded by connectTimeoutMs). Credentials
 * and TLS of the seed URL apply to every node. A node that goes away is reconnected with capped
 * backoff for as long as the connection is open; meanwhile commands to it fail at once.
 */
export async function connectCluster(url: string, options: OpenOptions = {}): Promise<ClusterConnection> {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const commandTimeoutMs = options.commandTimeoutMs ?? 2 * connectTimeoutMs;
  const where = `${redact(url)} (cluster seed)`;
  const secrets = [urlPassword(url)];
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new InvalidConfigError("url", `invalid Redis URL ${redact(url)}`, { cause: error });
  }
  let closing = false;
  let cluster: RedisClusterType;
  try {
    cluster = createCluster({
      rootNodes: [{ url }],
      defaults: {
        ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
        ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
        disableOfflineQueue: true,
        socket: {
          connectTimeout: connectTimeoutMs,
          ...(parsed.protocol === "rediss:" ? { tls: true } : {}),
          reconnectStrategy: () => (closing ? false : RECONNECT_MAX_DELAY_MS / 4 + Math.floor(Math.random() * 50)),
        },
      },
    }) as RedisClusterType;
  } catch (error) {
    throw new InvalidConfigError("url", `invalid Redis URL ${redact(url)}: ${scrub(String(error), secrets)}`, {
      cause: error,
    });
  }
  // Failures reach callers through their commands; unheard "error" events would crash the process.
  cluster.on("error", () => {});
  cluster.on("node-error", () => {});
  const connecting = cluster.connect();
  connecting.catch(() => {});
  try {
    await within(connecting, connectTimeoutMs, () => {
      return new ConnectionError(`${where} did not complete the connection within ${connectTimeoutMs} ms`);
    });
  } catch (error) {
    closing = true;
    cluster.destroy();
    throw redisError(error, where, secrets);
  }

  const inFlight = new InFlight();
  const inner = clusterCommander(cluster, { commandTimeoutMs, where, secrets });
  const counted = <T>(work: () => Promise<T>): Promise<T> => {
    inFlight.begin();
    return work().finally(() => inFlight.end());
  };
  const commander: RedisCommander = {
    ...(inner.optimistic && { optimistic: inner.optimistic }),
    sendCommand: (args) => counted(() => inner.sendCommand(args)),
    transaction: (commands, apart) =>
      counted(() => (inner.transaction as NonNullable<RedisCommander["transaction"]>)(commands, apart)),
  };
  const subscriptions = clusterSubscriptions(cluster, (error) => redisError(error, where, secrets));
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      closing = true;
      (inner.optimistic as { close?: () => void } | undefined)?.close?.();
      subscriptions.close();
      await inFlight.drained();
      cluster.destroy();
    })();
    return closed;
  };
  return { cluster, commander, subscribe: subscriptions.subscribe, close };
}

export async function openRedisClusterBackend(url: string, options: OpenOptions = {}): Promise<Backend> {
  const connection = await connectCluster(url, options);
  // For apps that also want plain Keyv on the same cluster connection.
  const store = new KeyvRedis(connection.cluster as never, { throwOnErrors: true });
  const layout = options.redisLayout ?? "keys";
  const driver = redisDriver(async () => connection.commander, {
    layout,
    subscribe: connection.subscribe,
    publisher: publisherFor(url, { sharded: true }),
    // One MULTI per slot: a write's registry entries on other slots go first (driver.ts).
    sharded: true,
  });
  return {
    store,
    driver,
    url,
    cluster: true,
    ...(layout === "hash" && { redisLayout: layout }),
    close: connection.close,
  };
}
