import KeyvRedis from "@keyv/redis";
import { createClient } from "@redis/client";
import { ConnectionError } from "../errors.js";
import type { Backend, OpenOptions } from "./driver.js";

// Minimal opener; the hardened one lands with the Redis work.
export async function openRedisBackend(url: string, options: OpenOptions = {}): Promise<Backend> {
  const timeout = options.connectTimeoutMs ?? 5000;
  const client = createClient({ url, socket: { connectTimeout: timeout, reconnectStrategy: false } });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    throw new ConnectionError(`cannot connect to Redis: ${(error as Error).message}`, { cause: error });
  }
  const store = new KeyvRedis(client as never);
  return { store, url, close: async () => void (await client.quit().catch(() => {})) };
}
