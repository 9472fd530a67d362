/** Where rebuild.ts runs: a URL (standalone or cluster, opened and closed here), a client, or an adapter. */
import type KeyvRedis from "@keyv/redis";
import { InvalidArgumentError } from "../../errors.js";
import { clusterNodeUrls } from "./cluster-commander.js";
import type { RedisConnection } from "./open.js";
import type { RebuildOptions } from "./rebuild.js";
import type { RedisCommander } from "./tx.js";
import { redact } from "./url.js";

/** A Redis URL, a connected node-redis client, or a @keyv/redis adapter. */
export type RedisTarget = string | RedisCommander | KeyvRedis<unknown>;

/** `work` gets the client for keyed commands and the nodes to SCAN (one, or every master of a cluster). */
export async function withClient<T>(
  target: RedisTarget,
  options: RebuildOptions,
  work: (client: RedisCommander, nodes: readonly RedisCommander[]) => Promise<T>,
): Promise<T> {
  if (typeof target !== "string") {
    // Only an app that holds a KeyvRedis can pass one, so loading the class costs nothing new;
    // at import it would load a Redis client for every app (lib/index.ts exports rebuildIndex).
    const { default: Adapter } = await import("@keyv/redis");
    const client =
      target instanceof Adapter
        ? ((await target.getClient()) as unknown as RedisCommander)
        : (target as RedisCommander);
    return work(client, [client]);
  }
  const [{ connectRedis }, { connectCluster }] = await Promise.all([import("./open.js"), import("./cluster.js")]);
  const timeouts = options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs };
  if (!options.cluster) {
    const connection = await connectRedis(target, timeouts);
    try {
      return await work(connection.commander, [connection.commander]);
    } finally {
      await connection.close();
    }
  }
  const seed = await connectRedis(target, timeouts);
  const masters = await clusterNodeUrls(target, (args) => seed.commander.sendCommand(args), {
    mastersOnly: true,
  }).finally(() => seed.close());
  if (masters === undefined) {
    throw new InvalidArgumentError(`cluster: true, but ${redact(target)} is not in cluster mode`);
  }
  const connections: RedisConnection[] = [];
  const cluster = await connectCluster(target, timeouts);
  try {
    for (const url of masters) connections.push(await connectRedis(url, timeouts));
    return await work(
      cluster.commander,
      connections.map((c) => c.commander),
    );
  } finally {
    await Promise.all([cluster.close(), ...connections.map((c) => c.close())]);
  }
}
