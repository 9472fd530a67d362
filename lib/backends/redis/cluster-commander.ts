/**
 * A RedisCommander over any node-redis cluster client, and the cluster's node list. Apart from
 * cluster.ts (which opens clusters): this module loads no Redis client, so recognising an app's
 * cluster adapter, or exporting clusterCommander, costs a `memory:` app nothing.
 */
import type { MultiErrorReply, RedisClusterType } from "@redis/client";
import { ConnectionError, InvalidConfigError } from "../../errors.js";
import { within } from "./bounds.js";
import { clusterOptimistic } from "./cluster-watch.js";
import { DEFAULT_CONNECT_TIMEOUT_MS, redisError, sleep } from "./errors.js";
import { isA, isErrorReply, isTransient, type RedisCommander, sendMulti } from "./tx.js";

/** Any node-redis cluster client (whatever its modules, scripts or RESP version). */
export type ClusterClient = Pick<
  RedisClusterType,
  "sendCommand" | "multi" | "nodeByAddress" | "nodeClient" | "getSlotMaster"
>;

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

/** A half-moved slot's refusal of a command whose keys are on both sides (or nowhere yet). */
const tryAgain = (error: unknown) => error instanceof Error && /^TRYAGAIN\b/.test(error.message);

/** The redirection a failed transaction was refused with, if any (its queued commands carry it). */
function redirection(error: unknown): { kind: "MOVED" | "ASK"; address: string } | undefined {
  const replies = isA(error, "MultiErrorReply") ? (error as MultiErrorReply).replies : [error];
  for (const reply of replies) {
    if (!isErrorReply(reply)) continue;
    const match = /^(MOVED|ASK) \d+ (\S+)$/.exec(reply.message);
    if (match) return { kind: match[1] as "MOVED" | "ASK", address: match[2] as string };
  }
  return undefined;
}

/** The reply a transaction failed with: the first refused command's, not EXECABORT's. */
function firstFailure(error: unknown): unknown {
  if (!isA(error, "MultiErrorReply")) return error;
  const multi = error as MultiErrorReply;
  return multi.replies[multi.errorIndexes[0] as number] ?? error;
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

  /**
   * A multi-key read refused by a half-moved slot (TRYAGAIN: its keys are on both sides) as one
   * command per key, each served where its key is; undefined for anything else. Reads promise no
   * snapshot across keys, so the answer is what MGET or EXISTS would have given, key by key.
   */
  const splitRead = (args: readonly string[]): Promise<unknown> | undefined => {
    const name = String(args[0]).toUpperCase();
    const keys = args.slice(1);
    if (keys.length < 2 || (name !== "MGET" && name !== "EXISTS")) return undefined;
    const each = Promise.all(
      keys.map((key) => cluster.sendCommand(key, true, [name === "MGET" ? "GET" : "EXISTS", key])),
    );
    return name === "MGET" ? each : each.then((counts) => counts.reduce((sum: number, n) => sum + Number(n), 0));
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
      return retrying(name, async () => {
        try {
          return await cluster.sendCommand(firstKey(args), READS.has(name), args);
        } catch (error) {
          const split = tryAgain(error) ? splitRead(args) : undefined;
          if (split === undefined) throw error;
          return await split;
        }
      });
    },
    transaction: (commands, apart) =>
      retrying("MULTI", async () => {
        try {
          return await transactionOnce(commands);
        } catch (error) {
          if (apart === undefined || !tryAgain(error)) throw error;
          // The slot is half-moved and the keys are on both sides: Redis refuses the MULTI until
          // the slot has moved, but serves each key's own commands where the key is (ASK followed).
          return await apart({
            send: (command) => cluster.sendCommand(firstKey(command), false, command),
            multi: transactionOnce,
          });
        }
      }),
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
