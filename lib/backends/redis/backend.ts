/** A Backend (store adapter, driver, close) over one Redis connection, plain or Sentinel-followed. */
import KeyvRedis from "@keyv/redis";
import type { Backend } from "../driver.js";
import { redisDriver } from "./driver.js";
import { publisherFor } from "./notify.js";
import { connectRedis, type RedisConnection, type RedisOpenOptions } from "./open.js";

export async function openRedisBackend(url: string, options: RedisOpenOptions = {}): Promise<Backend> {
  return backendOver(await connectRedis(url, options), url, options);
}

/** The Backend of one server's connection (or of a Sentinel-followed one, sentinel.ts). */
export function backendOver(connection: RedisConnection, url: string, options: RedisOpenOptions): Backend {
  // The adapter is there for apps that want plain Keyv on the same connection; scoped views
  // use the driver below, whose commands carry typed errors and time bounds.
  const store = new KeyvRedis(connection.client as never, { throwOnErrors: true });
  const layout = options.redisLayout ?? "keys";
  const driver = redisDriver(async () => connection.commander, {
    layout,
    subscribe: connection.subscribe,
    publisher: publisherFor(url),
  });
  return {
    store,
    driver,
    url,
    ...(layout === "hash" && { redisLayout: layout }),
    ...(options.durability === "replicated" && { durability: "replicated" as const }),
    close: connection.close,
  };
}
