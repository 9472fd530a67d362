/** Bench roots and Redis housekeeping: every bench writes under its own random root and removes it after. */
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { type RawRedis, rawRedis } from "../spec/support/env.js";

export function benchRoot(tag: string): string {
  return `kvwsbench_${tag}_${randomBytes(5).toString("hex")}`;
}

export { type RawRedis, rawRedis };

/**
 * Node arguments that run a bench file from TypeScript as the package is built (bench/ts.mjs):
 * what every child process of the bench is started with, as `npm run bench` is.
 */
export const TS_NODE: readonly string[] = ["--import", fileURLToPath(new URL("./ts.mjs", import.meta.url))];

/** Deletes every key of `root` (SCAN + UNLINK in batches); never flushes the shared database. */
export async function deleteUnder(client: RawRedis, root: string): Promise<number> {
  let deleted = 0;
  const pending: string[] = [];
  const drain = async () => {
    if (pending.length === 0) return;
    deleted += Number(await client.unlink(pending.splice(0)));
  };
  // Data under `<root>:`, and the root's own bookkeeping (`<root>#workspaces…`, `<root>#quota:…`).
  for (const pattern of [`${root}:*`, `${root}#*`]) {
    for await (const batch of client.scanIterator({ MATCH: pattern, COUNT: 5000 })) {
      pending.push(...batch);
      if (pending.length >= 5000) await drain();
    }
  }
  await drain();
  return deleted;
}

/** Runs `fn` and then removes everything under `root`, whatever happened. */
export async function withRedisRoot<T>(root: string, fn: (client: RawRedis) => Promise<T>): Promise<T> {
  const client = await rawRedis();
  try {
    return await fn(client);
  } finally {
    await deleteUnder(client, root).catch((error) => console.error(`cleanup of ${root} failed:`, error));
    await client.quit().catch(() => {});
  }
}
