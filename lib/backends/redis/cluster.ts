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
import { createCluster, ErrorReply, MultiErrorReply, type RedisClusterType } from "@redis/client";
import { ConnectionError, InvalidConfigError } from "../../errors.js";
import type { Backend, OpenOptions } from "../driver.js";
import { clusterSubscriptions } from "./cluster-subscribe.js";
import { clusterOptimistic } from "./cluster-watch.js";
import { redisDriver } from "./driver.js";
import { publisherFor, type Subscribe } from "./notify.js";
import { DEFAULT_CONNECT_TIMEOUT_MS, InFlight, redisError, sleep, within } from "./open.js";
import { isTransient, type RedisCommander, sendMulti } from "./tx.js";
import { redact, scrub, urlPassword } from "./url.js";

/** Any node-redis cluster client (whatever its modules, scripts or RESP version). */
export type ClusterClient = Pick<
  RedisClusterType,
  "sendCommand" | "multi" | "nodeByAddress" | "nodeClient" | "getSlotMaster"
>;

const RECONNECT_MAX_DELAY_MS = 2000;
// Commands that name no key: node-redis sends them to any node.
const KEYLESS = new Set(["TIME", "PING", "SCAN", "ACL", "CLUSTER", "INFO", "DBSIZE", "ECHO", "SCRIPT", "FUNCTION"]);
const SCRIPT = new Set(["EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"]);
const READS = new Set(["GET", "MGET", "EXISTS", "ZRANGE", "ZRANGEBYSCORE", "ZSCAN", "XRANGE", "XREVRANGE", "TIME"]);

/** The key node-redis routes `args` by: the first key argument, undefined for keyless commands. */
export function firstKey(args: readonly string[]): string | undefined {
  const name = String(args[0]).toUpperCase();
  if (KEYLESS.has(name)) return undefined;
  if (SCRIPT.has(name)) return Number(args[2]) > 0 ? args[3] : undefined;
  // PUBSUB SHARDNUMSUB <channel>: asked where the channel's slot lives (notify.ts).
  if (name === "PUBSUB") return args[2];
  return args[1];
}

/** The redirection a failed transaction was refused with, if any (its queued commands carry it). */
function redirection(error: unknown): { kind: "MOVED" | "ASK"; address: string } | undefined {
  const replies = error instanceof MultiErrorReply ? error.replies : [error];
  for (const reply of replies) {
    if (!(reply instanceof ErrorReply)) continue;
    const match = /^(MOVED|ASK) \d+ (\S+)$/.exec(reply.message);
    if (match) return { kind: match[1] as "MOVED" | "ASK", address: match[2] as string };
  }
  return undefined;
}

/** The reply a transaction failed with: the first refused command's, not EXECABORT's. */
function firstFailure(error: unknown): unknown {
  if (!(error instanceof MultiErrorReply)) return error;
  return error.replies[error.errorIndexes[0] as number] ?? error;
}

export interface ClusterCommanderOptions {
  /** Bound on one command (retries included); default 10000 ms. */
  commandTimeoutMs?: number;
  /** How errors name the cluster (a redacted seed URL); default "the Redis Cluster". */
  where?: string;
  /** Secrets to keep out of error messages. */
  secrets?: ReadonlyArray<string | undefined>;
}

/**
 * A RedisCommander over a node-redis cluster client (ours, or one an app's @keyv/redis holds):
 * sendCommand routed by the first key, transaction() routed by its first command's first key.
 * Every error is a typed KeyvWorkspacesError; nothing waits longer than commandTimeoutMs.
 */
export function clusterCommander(cluster: ClusterClient, options: ClusterCommanderOptions = {}): RedisCommander {
  const commandTimeoutMs = options.commandTimeoutMs ?? 2 * DEFAULT_CONNECT_TIMEOUT_MS;
  const where = options.where ?? "the cluster";
  const secrets = options.secrets ?? [];
  const fail = (error: unknown) => redisError(error, where, secrets);

  const retrying = async <T>(what: string, attempt: () => Promise<T>): Promise<T> => {
    const deadline = Date.now() + commandTimeoutMs;
    for (let delay = 20; ; delay = Math.min(2 * delay, 500)) {
      const left = deadline - Date.now();
      try {
        return await within(attempt(), Math.max(1, left), () => {
          return new ConnectionError(`${where} did not answer ${what} within ${commandTimeoutMs} ms`);
        });
      } catch (raw) {
        const error = fail(raw);
        if (!isTransient(error) || Date.now() + delay >= deadline) throw error;
        await sleep(delay);
      }
    }
  };

  /** MULTI … EXEC on the node that imports the slot, each command allowed there by ASKING. */
  const asking = async (address: string, commands: readonly string[][]): Promise<unknown[]> => {
    const node = cluster.nodeByAddress.get(address);
    if (!node) throw new ConnectionError(`${where} redirected a transaction to unknown node ${address}`);
    const client = (await cluster.nodeClient(node)) as unknown as RedisCommander;
    // Same tick, one connection: nothing else lands between ASKING, MULTI and EXEC.
    return (await sendMulti((args) => client.sendCommand(args), commands, [["ASKING"]])) ?? [];
  };

  const transactionOnce = async (commands: readonly string[][]): Promise<unknown[]> => {
    const key = firstKey(commands[0] ?? []);
    let ask: string | undefined;
    for (let hops = 0; ; hops++) {
      try {
        if (ask !== undefined) return await asking(ask, commands);
        const multi = cluster.multi(key);
        for (const command of commands) multi.addCommand(key, false, command);
        return (await multi.exec()) as unknown[];
      } catch (error) {
        const moved = hops < 5 ? redirection(error) : undefined;
        if (!moved) throw firstFailure(error);
        if (moved.kind === "ASK") {
          ask = moved.address;
        } else {
          ask = undefined;
          // A plain routed command follows MOVED and refreshes node-redis's slot map.
          if (key !== undefined) await cluster.sendCommand(key, true, ["EXISTS", key]);
        }
      }
    }
  };

  return {
    optimistic: clusterOptimistic(cluster, commandTimeoutMs),
    sendCommand(args) {
      const name = String(args[0]).toUpperCase();
      if (name === "MULTI" || name === "EXEC" || name === "DISCARD" || name === "WATCH") {
        return Promise.reject(
          new InvalidConfigError("cluster", `${name} cannot be sent on its own to a cluster; use transaction()`),
        );
      }
      return retrying(name, () => cluster.sendCommand(firstKey(args), READS.has(name), args));
    },
    transaction: (commands) => retrying("MULTI", () => transactionOnce(commands)),
  };
}

/**
 * Every master and replica the node at `url` knows of, as URLs with `url`'s credentials and
 * scheme, or undefined when that node is not in cluster mode. Nodes marked failed, without an
 * address or still in the handshake are left out: they cannot be reached now.
 */
export async function clusterNodeUrls(
  url: string,
  send: (args: string[]) => Promise<unknown>,
  options: { mastersOnly?: boolean } = {},
): Promise<string[] | undefined> {
  const info = String(await send(["INFO", "cluster"]));
  if (!/cluster_enabled:1/.test(info)) return undefined;
  const urls: string[] = [];
  for (const line of String(await send(["CLUSTER", "NODES"])).split("\n")) {
    const [, address, flags] = line.trim().split(" ");
    if (!address || !flags || /fail|noaddr|handshake/.test(flags)) continue;
    if (options.mastersOnly && !flags.split(",").includes("master")) continue;
    const match = /^(.*):(\d+)@/.exec(address);
    if (!match) continue;
    const node = new URL(url);
    node.hostname = match[1] === "" ? node.hostname : (match[1] as string);
    node.port = match[2] as string;
    urls.push(node.href);
  }
  return urls.sort();
}

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
    transaction: (commands) =>
      counted(() => (inner.transaction as NonNullable<RedisCommander["transaction"]>)(commands)),
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
