import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { redisDriver } from "../../lib/backends/redis/driver.js";
import { connectRedis, type RedisConnection } from "../../lib/backends/redis/open.js";
import { rebuildIndex, rebuildIndexes } from "../../lib/backends/redis/rebuild.js";
import { deleteUnder, keysUnder, type RawRedis, REDIS_URL, randomRoot, rawRedis } from "../support/env.js";
import { listNames } from "../support/prefix-store.js";
import { startPrivateRedis } from "../support/servers.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let raw: RawRedis;
let connection: RedisConnection;
const roots: string[] = [];
const root = () => {
  const r = randomRoot("rebuild");
  roots.push(r);
  return r;
};
const scope = (prefix: string) => redisDriver(async () => connection.commander).scope(prefix);
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  raw = await rawRedis();
  connection = await connectRedis(REDIS_URL);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  for (const r of roots) await deleteUnder(raw, r);
  await connection.close();
  await raw.quit();
});

describe("rebuildIndex", () => {
  it("indexes keys written behind the index's back, drops stale members, and leaves other keys alone", async () => {
    const r = root();
    const prefix = `${r}:ws:a:artifacts`;
    await raw.set(`${prefix}:old`, "v");
    await raw.set(`${prefix}:with:colon*`, "v");
    await raw.set(`${prefix}:ttl`, "v", { PX: 600_000 });
    await raw.set(`${prefix}:short`, "v", { PX: 60 });
    await raw.hSet(`${prefix}:hash`, { f: "v" });
    await raw.set(`${r}:ws:a:artifactsx:other`, "v");
    const s = scope(prefix);
    await s.set("live", "v");
    await s.set("gone", "v");
    await raw.del(`${prefix}:gone`); // as if evicted or deleted by hand
    await sleep(150);
    expect(await listNames(s)).toEqual(["gone", "live"]);

    expect(await rebuildIndex(REDIS_URL, prefix)).toEqual({ prefix, scanned: 4, added: 3, removed: 1 });
    expect(await listNames(s)).toEqual(["live", "old", "ttl", "with:colon*"]);
    expect(await raw.zScore(`${prefix}#ttl`, "ttl")).toBeGreaterThan(Date.now() + 500_000);
    expect(await raw.zScore(`${prefix}#index`, "ttl")).toBe(0);
    expect(await raw.zScore(`${prefix}#index`, "old")).toBe(0);
    expect(await raw.zScore(`${prefix}#ttl`, "old")).toBeNull();
    expect(await raw.hGetAll(`${prefix}:hash`)).toEqual({ f: "v" });
    expect(await raw.exists(`${r}:ws:a:artifactsx#index`)).toBe(0);
    // An untracked prefix gets no log from a rebuild either; a second run finds nothing to do.
    expect(await raw.exists(`${prefix}#log`)).toBe(0);
    expect(await rebuildIndex(connection.commander, prefix)).toEqual({ prefix, scanned: 4, added: 0, removed: 0 });
  });

  it("logs what it changes on a tracked prefix, so caches pick it up", async () => {
    const prefix = `${root()}:ws:a:vectors`;
    const s = scope(prefix);
    await s.set("kept", "v");
    const v0 = await s.version!();
    await raw.set(`${prefix}:planted`, "v");
    await rebuildIndex(REDIS_URL, prefix);
    expect(await s.changedSince!(v0)).toEqual(["planted"]);
  });

  it("finds the prefixes of one workspace, of a root's unscoped collections, or of all workspaces", async () => {
    const r = root();
    await raw.set(`${r}:ws:a:artifacts:x`, "v");
    await raw.set(`${r}:ws:a:workflows#vectors:wf`, "v");
    await raw.set(`${r}:ws:b:workflows:y`, "v");
    await raw.set(`${r}:deps:lodash`, "v");
    await raw.set(`${r}:v2:artifacts:z`, "v"); // a sibling root, not a collection of r
    await raw.set(`${r}:custom:k`, "v");
    const prefixesOf = (reports: Array<{ prefix: string }>) => reports.map((x) => x.prefix);
    expect(prefixesOf(await rebuildIndexes(REDIS_URL, { root: r, workspaceId: "a" }))).toEqual([
      `${r}:ws:a:artifacts`,
      `${r}:ws:a:workflows#vectors`,
    ]);
    expect(prefixesOf(await rebuildIndexes(REDIS_URL, { root: r }))).toEqual([`${r}:deps`]);
    expect(
      prefixesOf(await rebuildIndexes(REDIS_URL, { root: r, allWorkspaces: true, collections: ["deps", "custom"] })),
    ).toEqual([`${r}:custom`, `${r}:deps`, `${r}:ws:a:artifacts`, `${r}:ws:a:workflows#vectors`]);
    expect(await rebuildIndexes(REDIS_URL, { root: r, workspaceId: "b", collections: [] })).toEqual([]);
    await raw.zAdd(`${r}:ws:b:workflows#index`, [{ score: 1, value: "stale" }]);
    const reports = await rebuildIndexes(REDIS_URL, { root: r, workspaceId: "b", collections: [] });
    expect(reports).toEqual([{ prefix: `${r}:ws:b:workflows`, scanned: 0, added: 0, removed: 1 }]);
    expect(await raw.exists(`${r}:v2:artifacts#index`)).toBe(0);
  });

  it("walks the database once, however many prefixes it rebuilds", async () => {
    const { server, admin } = await startPrivateRedis(cleanups);
    for (const ws of ["a", "b", "c", "d"]) {
      for (const collection of ["artifacts", "workflows", "vectors"]) {
        for (let i = 0; i < 300; i++) await admin.set(`app:ws:${ws}:${collection}:n${i}`, "v");
      }
    }
    const scans = async () =>
      Number(/cmdstat_scan:calls=(\d+)/.exec(String(await admin.info("commandstats")))?.[1] ?? 0);
    let walk = 0;
    const before = await scans();
    for await (const _ of admin.scanIterator({ MATCH: "app:*", COUNT: 500 })) walk++;
    const one = (await scans()) - before;
    expect(one).toBe(walk);
    const start = await scans();
    const reports = await rebuildIndexes(server.url, { root: "app", allWorkspaces: true });
    expect(reports).toHaveLength(12);
    expect(reports.every((x) => x.added === 300)).toBe(true);
    expect((await scans()) - start).toBe(one);
  });

  it("migrates 0.1.0's bookkeeping: the counter and its numbered log go, the prefix then works as new", async () => {
    const r = root();
    for (const collection of ["artifacts", "vectors"]) {
      const prefix = `${r}:ws:a:${collection}`;
      await raw.set(`${prefix}:old`, "v1");
      await raw.zAdd(`${prefix}#index`, [{ score: Number.POSITIVE_INFINITY, value: "old" }]);
      await raw.set(`${prefix}#version`, "1764000000000001");
      await raw.sendCommand(["XADD", `${prefix}#log`, "1764000000000001-0", "n", "old"]);
    }
    await rebuildIndexes(REDIS_URL, { root: r, workspaceId: "a" });
    expect(await keysUnder(raw, r)).toEqual([
      `${r}:ws:a:artifacts#index`,
      `${r}:ws:a:artifacts:old`,
      `${r}:ws:a:vectors#index`,
      `${r}:ws:a:vectors:old`,
    ]);
    const vectors = scope(`${r}:ws:a:vectors`);
    const legacy = await vectors.version!();
    expect(legacy).not.toBe("0"); // entries, no log: nothing vouches for them, readers reload
    await vectors.set("new", "v2");
    const v = await vectors.version!();
    expect(v).toMatch(/^\d+-\d+\.[0-9a-z]+$/);
    expect(Number(v.split("-")[0])).toBeLessThan(Date.now() + 60_000); // time-based again
    await vectors.set("newer", "v3");
    expect(await vectors.changedSince!(v)).toEqual(["newer"]);
  });

  it("refuses bad input with typed errors, and reports an unreachable server without its password", async () => {
    await expect(rebuildIndex(REDIS_URL, "bad*prefix")).rejects.toMatchObject({ code: "ERR_INVALID_ROOT" });
    await expect(rebuildIndexes(REDIS_URL, { root: "r", workspaceId: "../x" })).rejects.toMatchObject({
      code: "ERR_INVALID_WORKSPACE_ID",
    });
    await expect(rebuildIndexes(REDIS_URL, { root: "r", workspaceId: "a", allWorkspaces: true })).rejects.toMatchObject(
      { code: "ERR_INVALID_ARGUMENT" },
    );
    const error = await rebuildIndex("redis://u:hunter2pw@127.0.0.1:1", "p", { connectTimeoutMs: 1000 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toMatchObject({ code: "ERR_CONNECTION" });
    expect(String(error?.message)).not.toContain("hunter2pw");
    expect(String(error?.message)).toContain("***");
  });
});
