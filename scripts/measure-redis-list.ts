// Measures listing one workspace's 100 artifacts with the per-prefix index vs SCAN-and-filter,
// with 10k and 100k other keys in the same Redis. Not a test: numbers for docs/redis-index.md.
//   npx tsx scripts/measure-redis-list.ts [redis-url]
// Writes only under a random root of its own and deletes it afterwards.
import { randomBytes } from "node:crypto";
import { createClient } from "@redis/client";
import { openStorage, type ScopedStore } from "../lib/index.js";

const url = process.argv[2] ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const root = `kvws_measure_${randomBytes(4).toString("hex")}`;
const raw = createClient({ url });
await raw.connect();
const storage = await openStorage({ url, root, workspaceId: "target" });
const prefix = storage.keyspace.prefix("artifacts");

async function median(fn: () => Promise<unknown>, runs = 30): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)] as number;
}

async function scanAndFilter(): Promise<string[]> {
  const names: string[] = [];
  for await (const keys of raw.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
    for (const key of keys) names.push(key.slice(prefix.length + 1));
  }
  const values = names.length ? await raw.mGet(names.map((n) => `${prefix}:${n}`)) : [];
  return names.filter((_, i) => values[i] !== null);
}

async function fill(total: number): Promise<void> {
  let have = Number(await raw.get(`${root}:filled`)) || 0;
  while (have < total) {
    const batch: Array<[string, string]> = [];
    for (let i = 0; i < 1000 && have < total; i++, have++)
      batch.push([`${root}:ws:other${have % 500}:artifacts:k${have}`, "x"]);
    await raw.mSet(batch);
  }
  await raw.set(`${root}:filled`, String(have));
}

try {
  for (let i = 0; i < 100; i++) await storage.artifacts.save(`a${i}`, { i });
  console.log(`Redis dbsize before: ${await raw.dbSize()}`);
  for (const others of [10_000, 100_000]) {
    await fill(others);
    const dbsize = await raw.dbSize();
    const list = await median(() => storage.artifacts.list());
    const names = await median(async () => {
      for await (const _ of (storage.collection("artifacts").opts.store as ScopedStore).names()) {
      }
    });
    const scan = await median(scanAndFilter);
    if ((await scanAndFilter()).length !== 100 || (await storage.artifacts.list()).length !== 100)
      throw new Error("miscount");
    console.log(
      `${others} other keys (dbsize ${dbsize}): index names() ${names.toFixed(2)} ms, artifacts.list() ${list.toFixed(2)} ms, SCAN+filter ${scan.toFixed(2)} ms`,
    );
  }
} finally {
  await storage.close();
  for await (const keys of raw.scanIterator({ MATCH: `${root}*`, COUNT: 1000 }))
    if (keys.length) await raw.unlink(keys);
  await raw.quit();
}
