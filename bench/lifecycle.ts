/**
 * Lifecycle: export, drop and import of one workspace through `kvws`, beside other workspaces'
 * data, on a private redis-server this suite starts and stops. Each command runs in a process of
 * its own (bench/lifecycle-worker.ts), so its peak RSS is measured alone; two workspace sizes, ten
 * times apart, show whether memory grows with the workspace (it should not: every command streams
 * in batches).
 *
 * Sizes (workspace, other workspaces): quick 1k and 10k beside 100k; --full 10k and 100k beside
 * 1M; --tiny 200 and 2k beside 2k. Then import against a raw MSET script (lifecycle-import.ts).
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createClient } from "@redis/client";
import type { Driver } from "../lib/backends/driver.js";
import { redisDriver } from "../lib/backends/redis/driver.js";
import { connectRedis } from "../lib/backends/redis/open.js";
import { tempDir } from "../spec/support/env.js";
import { freePort, PrivateRedis } from "../spec/support/servers.js";
import { importVsRaw } from "./lifecycle-import.js";
import { type BenchRow, progress, row, type SuiteOptions } from "./rows.js";
import { TS_NODE } from "./support.js";

const GROUP = "lifecycle";
const ROOT = "app";
const VALUE = JSON.stringify({ value: { n: 1, text: "x".repeat(100), tags: ["a", "b"] } });
const worker = fileURLToPath(new URL("./lifecycle-worker.ts", import.meta.url));
const execute = promisify(execFile);

/** Writes `count` entries into collection `notes` of each workspace, 1000 per MULTI, registered as the library would. */
async function fill(driver: Driver, ids: readonly string[], count: number): Promise<void> {
  for (const id of ids) {
    await driver.scope(`${ROOT}#workspaces`).set(id, "1");
    await driver.scope(`${ROOT}:ws:${id}:#collections`).set("notes", "1");
    const store = driver.scope(`${ROOT}:ws:${id}:notes`);
    for (let i = 0; i < count; i += 1000) {
      const size = Math.min(1000, count - i);
      await store.setMany(Array.from({ length: size }, (_, j) => ({ name: `n${i + j}`, value: VALUE })));
    }
  }
}

async function kvws(url: string, args: string[]): Promise<{ ms: number; maxRssBytes: number }> {
  const { stdout } = await execute(process.execPath, [...TS_NODE, worker, "--url", url, "--root", ROOT, ...args], {
    timeout: 600_000,
    maxBuffer: 1024 * 1024,
  });
  return JSON.parse(stdout) as { ms: number; maxRssBytes: number };
}

export async function run(opts: SuiteOptions): Promise<BenchRow[]> {
  const sizes = opts.tiny ? [200, 2_000] : opts.full ? [10_000, 100_000] : [1_000, 10_000];
  const others = opts.tiny ? 2_000 : opts.full ? 1_000_000 : 100_000;
  const dir = tempDir();
  const server = new PrivateRedis(await freePort(), dir.path, ["--appendonly", "no"]);
  await server.start();
  const connection = await connectRedis(server.url);
  const driver = redisDriver(async () => connection.commander);
  const admin: ReturnType<typeof createClient> = createClient({ url: server.url });
  admin.on("error", () => {});
  await admin.connect();
  const rows: BenchRow[] = [];
  try {
    const tenants = 10;
    await fill(
      driver,
      Array.from({ length: tenants }, (_, i) => `other${i}`),
      others / tenants,
    );
    progress(`lifecycle: ${others} entries of other workspaces`);
    for (const size of sizes) {
      const id = `w${size}`;
      await fill(driver, [id], size);
      const file = join(dir.path, `${id}.ndjson`);
      const label = `${size} entries beside ${others}`;
      const exported = await kvws(server.url, ["export", id, "--out", file]);
      const dropped = await kvws(server.url, ["drop", id, "--yes"]);
      const imported = await kvws(server.url, ["import", id, "--in", file]);
      for (const [op, result] of [
        ["export", exported],
        ["drop", dropped],
        ["import", imported],
      ] as const) {
        rows.push(row(GROUP, `${op}, ${label}`, "entries/s", [(size * 1000) / result.ms]));
        rows.push(row(GROUP, `${op} peak RSS, ${label}`, "MB", [result.maxRssBytes / 2 ** 20]));
      }
      progress(`lifecycle: ${size} done`);
      await kvws(server.url, ["drop", id, "--yes"]);
    }
    let left = 0;
    for await (const keys of admin.scanIterator({ MATCH: `${ROOT}:ws:w*`, COUNT: 5000 })) left += keys.length;
    rows.push(row(GROUP, "keys left of the dropped workspaces", "keys", [left], "SCAN MATCH app:ws:w*"));
    rows.push(...(await importVsRaw(server.url, admin, dir.path, opts)));
    return rows;
  } finally {
    admin.destroy();
    await connection.close();
    await server.kill();
    dir.remove();
  }
}
