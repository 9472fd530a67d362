import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@redis/client";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** A root no other test (or person) uses, so tests can share one Redis. */
export function randomRoot(tag = "t"): string {
  return `kvwst_${tag}_${randomBytes(5).toString("hex")}`;
}

export function tempDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), "kvws-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A raw client for looking at (and cleaning up) what the library wrote. */
export async function rawRedis() {
  const client = createClient({ url: REDIS_URL });
  client.on("error", () => {});
  await client.connect();
  return client;
}

export type RawRedis = Awaited<ReturnType<typeof rawRedis>>;

/** Every key under `root` (tests own their random root; this never touches other keys). */
export async function keysUnder(client: RawRedis, root: string): Promise<string[]> {
  const pattern = `${root.replace(/[*?[\]\\]/g, "\\$&")}*`;
  const keys: string[] = [];
  for await (const batch of client.scanIterator({ MATCH: pattern, COUNT: 1000 })) keys.push(...batch);
  return keys.sort();
}

export async function deleteUnder(client: RawRedis, root: string): Promise<void> {
  const keys = await keysUnder(client, root);
  for (let i = 0; i < keys.length; i += 500) await client.del(keys.slice(i, i + 500));
}
