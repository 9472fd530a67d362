import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import KeyvRedis from "@keyv/redis";
import { keyvApiTests, keyvIteratorTests, keyvValueTests } from "@keyv/test-suite";
import { createClient } from "@redis/client";
import fc from "fast-check";
import KeyvModule from "keyv";
import * as vitest from "vitest";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Driver } from "../../lib/backends/driver.js";
import { type RedisCommander, redisDriver } from "../../lib/backends/redis.js";
import { openStorage, rebuildIndex, rebuildIndexes, scopeStore } from "../../lib/index.js";
import { deleteUnder, keysUnder, type RawRedis, REDIS_URL, randomRoot, rawRedis } from "../support/env.js";

const writer = fileURLToPath(new URL("../fixtures/redis-writer.ts", import.meta.url));
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function names(driver: Driver, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const name of driver.scope(prefix).names()) out.push(name);
  return out.sort();
}

/** Every key of a root with its type and content, to prove an operation left it alone. */
async function snapshot(client: RawRedis, root: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const key of await keysUnder(client, root)) {
    const type = await client.type(key);
    out[key] = [type, type === "string" ? await client.get(key) : await client.sendCommand(["DUMP", key])];
  }
  return out;
}

// One foreign root shared by the whole file: every test must leave it exactly as it was.
const foreignRoot = randomRoot("foreign");
let raw: RawRedis;
let foreignBefore: Record<string, unknown>;
const roots: string[] = [foreignRoot];
function root(): string {
  const r = randomRoot("redis");
  roots.push(r);
  return r;
}
/** The driver the library uses, on a client of our own, with a small log to make trimming observable. */
function driver(logLimit?: number): Driver {
  return redisDriver(async () => raw as unknown as RedisCommander, logLimit === undefined ? {} : { logLimit });
}

beforeAll(async () => {
  raw = await rawRedis();
  await raw.set(`${foreignRoot}:ws:a:artifacts:x`, "foreign");
  await raw.set(`${foreignRoot}:ws:a:artifacts#version`, "7");
  await raw.hSet(`${foreignRoot}:ws:a:artifacts:h`, { f: "v" });
  await raw.zAdd(`${foreignRoot}:ws:a:artifacts#index`, [{ score: 1, value: "x" }]);
  await raw.set(`${foreignRoot}:deps:y`, "foreign", { PX: 600_000 });
  foreignBefore = await snapshot(raw, foreignRoot);
});

afterAll(async () => {
  const foreignAfter = await snapshot(raw, foreignRoot);
  for (const r of roots) await deleteUnder(raw, r);
  await raw.quit();
  // Checked here too so that no test (including the suites) can have touched it unnoticed.
  expect(foreignAfter).toEqual(foreignBefore);
});

describe("@keyv/test-suite over scopeStore(KeyvRedis)", () => {
  const adapter = new KeyvRedis(REDIS_URL);
  const suiteRoot = root();
  const store = () => scopeStore(adapter, `${suiteRoot}:ws:a:things`);
  keyvApiTests(vitest, KeyvModule, store);
  keyvValueTests(vitest, KeyvModule, store);
  keyvIteratorTests(vitest, KeyvModule, store);
  afterAll(async () => {
    await adapter.disconnect();
  });
});

describe("@keyv/test-suite over openStorage(redis://…).collection()", async () => {
  const storage = await openStorage({ url: REDIS_URL, root: root(), workspaceId: "suite" });
  // The same scoped store each time (as the storage caches it): many Keyvs over it each add a listener.
  const shared = storage.collection("things").opts.store as ReturnType<typeof scopeStore>;
  shared.setMaxListeners(0);
  const store = () => shared;
  keyvApiTests(vitest, KeyvModule, store);
  keyvValueTests(vitest, KeyvModule, store);
  keyvIteratorTests(vitest, KeyvModule, store);
  afterAll(async () => {
    await storage.close();
  });
});

describe("redis index and TTL", () => {
  let prefix: string;
  beforeEach(() => {
    prefix = `${root()}:ws:a:artifacts`;
  });

  it("hides expired names at once and drops them from the index on the next TTL write", async () => {
    const d = driver();
    await d.scope(prefix).set("keep", "v");
    await d.scope(prefix).set("short", "v", 60);
    await d.scope(prefix).setMany([
      { name: "short2", value: "v", ttl: 60 },
      { name: "long", value: "v", ttl: 600_000 },
    ]);
    expect(await names(d, prefix)).toEqual(["keep", "long", "short", "short2"]);
    await sleep(200);
    expect(await d.scope(prefix).get("short")).toBeUndefined();
    expect(await names(d, prefix)).toEqual(["keep", "long"]);
    // Listing never writes: the expired members are still there until a write prunes them.
    expect(await raw.zCard(`${prefix}#index`)).toBe(4);
    const before = await d.scope(prefix).version!();
    // A plain write adds no expiring member, so it skips pruning (and the clock) altogether.
    await d.scope(prefix).set("other", "v");
    expect(await raw.zCard(`${prefix}#index`)).toBe(5);
    await d.scope(prefix).set("ttl", "v", 600_000);
    expect(await raw.zCard(`${prefix}#index`)).toBe(4);
    // The pruning write reports the expired names as changed, for caches that hold them.
    expect((await d.scope(prefix).changedSince!(before))?.sort()).toEqual(["other", "short", "short2", "ttl"]);
  });

  it("re-scores a name rewritten without a TTL, and prunes only on TTL writes", async () => {
    const d = driver();
    await d.scope(prefix).set("a", "v", 60);
    await d.scope(prefix).set("b", "v", 60);
    await d.scope(prefix).set("b", "v2");
    await sleep(200);
    expect(await names(d, prefix)).toEqual(["b"]);
    await d.scope(prefix).delete("missing");
    await d.scope(prefix).set("c", "v");
    expect((await raw.zRange(`${prefix}#index`, 0, -1)).sort()).toEqual(["a", "b", "c"]);
    await d.scope(prefix).set("d", "v", 600_000);
    expect((await raw.zRange(`${prefix}#index`, 0, -1)).sort()).toEqual(["b", "c", "d"]);
  });

  it("lists every name once across many ZSCAN pages and clears them all in batches", async () => {
    const d = driver();
    const all = Array.from({ length: 2500 }, (_, i) => `n:${i}*?[x]`);
    await d.scope(prefix).setMany(all.map((name) => ({ name, value: "v" })));
    expect(await names(d, prefix)).toEqual([...all].sort());
    const before = await d.scope(prefix).version!();
    await d.scope(prefix).clear();
    expect(await names(d, prefix)).toEqual([]);
    expect(await keysUnder(raw, `${prefix}:`)).toEqual([]);
    expect(await raw.exists(`${prefix}#index`)).toBe(0);
    expect(await d.scope(prefix).changedSince!(before)).toBeUndefined();
  });
});

describe("redis driver against a model", () => {
  it("lists exactly the model's names and reports exactly the names changed since any earlier version", async () => {
    const r = root();
    let run = 0;
    // Mostly a few names, so deletes and rewrites hit existing entries.
    const name = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom("a", "b", "c:d", "*?[", "é", "") },
      { weight: 1, arbitrary: fc.string({ maxLength: 4 }) },
    );
    const op = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constant("set" as const), p: fc.nat(2), name }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("delete" as const), p: fc.nat(2), name }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("clear" as const), p: fc.nat(2) }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("check" as const), p: fc.nat(2), back: fc.nat(6) }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 10, maxLength: 40 }), async (ops) => {
        run++;
        // Neighbours that a sloppy prefix match would mix up.
        const prefixes = [`${r}:ws:a${run}:x`, `${r}:ws:a${run}b:x`, `${r}:x${run}`];
        const d = driver();
        // Seeded, so the first version is a real one (a "0" always answers undefined).
        for (const p of prefixes) await d.scope(p).set("seed", "v");
        const live = prefixes.map(() => new Set<string>(["seed"]));
        // Per prefix: every version seen, with the names changed by the write that produced it (null = clear).
        const history = await Promise.all(
          prefixes.map(async (p) => [{ version: await d.scope(p).version!(), changed: [] as string[] | null }]),
        );
        for (const o of ops) {
          const p = prefixes[o.p]!;
          let changed: string[] | null = [];
          if (o.kind === "set") {
            await d.scope(p).set(o.name, "v");
            live[o.p]!.add(o.name);
            changed = [o.name];
          } else if (o.kind === "delete") {
            const existed = live[o.p]!.delete(o.name);
            expect(await d.scope(p).delete(o.name)).toBe(existed);
            changed = existed ? [o.name] : [];
          } else if (o.kind === "clear") {
            await d.scope(p).clear();
            live[o.p]!.clear();
            changed = null;
          } else {
            expect(await names(d, p)).toEqual([...live[o.p]!].sort());
            const h = history[o.p]!;
            const from = Math.max(0, h.length - 1 - o.back);
            const since = h.slice(from + 1);
            const got = await d.scope(p).changedSince!(h[from]!.version);
            if (since.some((x) => x.changed === null)) {
              expect(got).toBeUndefined();
            } else {
              expect(got?.sort()).toEqual([...new Set(since.flatMap((x) => x.changed ?? []))].sort());
            }
            continue;
          }
          // Every write that changes something bumps the version; one that changes nothing does not.
          const version = await d.scope(p).version!();
          expect(version !== history[o.p]!.at(-1)!.version).toBe(changed === null || changed.length > 0);
          if (version !== history[o.p]!.at(-1)!.version) history[o.p]!.push({ version, changed });
        }
        for (const [i, p] of prefixes.entries()) expect(await names(d, p)).toEqual([...live[i]!].sort());
      }),
      { numRuns: 60, seed: 7 },
    );
  });
});

describe("redis version and changedSince", () => {
  let prefix: string;
  beforeEach(() => {
    prefix = `${root()}:ws:a:vectors`;
  });

  it("bumps the version on every set, setMany, delete and clear, and on nothing else", async () => {
    const d = driver();
    const seen = [await d.scope(prefix).version!()];
    const expectBump = async () => {
      const v = await d.scope(prefix).version!();
      expect(seen).not.toContain(v);
      expect(BigInt(v)).toBeGreaterThan(BigInt(seen.at(-1)!));
      seen.push(v);
    };
    await d.scope(prefix).set("a", "1");
    await expectBump();
    await d.scope(prefix).set("a", "1");
    await expectBump();
    await d.scope(prefix).setMany([
      { name: "b", value: "2" },
      { name: "c", value: "3" },
    ]);
    await expectBump();
    await d.scope(prefix).delete("a");
    await expectBump();
    await d.scope(prefix).deleteMany(["b", "c"]);
    await expectBump();
    await d.scope(prefix).clear();
    await expectBump();
    // Reads, and writes to another prefix, leave it alone.
    await d.scope(prefix).get("a");
    await names(d, prefix);
    await d.scope(`${prefix}x`).set("a", "1");
    await d.scope(`${prefix}:sub`).set("a", "1");
    expect(await d.scope(prefix).version!()).toBe(seen.at(-1));
  });

  it("returns exactly the names changed since a version", async () => {
    const d = driver();
    await d.scope(prefix).set("a", "1");
    const v1 = await d.scope(prefix).version!();
    expect(await d.scope(prefix).changedSince!(v1)).toEqual([]);
    await d.scope(prefix).set("b", "2");
    await d.scope(prefix).setMany([
      { name: "c", value: "3" },
      { name: "b", value: "4" },
    ]);
    const v2 = await d.scope(prefix).version!();
    await d.scope(prefix).delete("a");
    expect((await d.scope(prefix).changedSince!(v1))?.sort()).toEqual(["a", "b", "c"]);
    expect(await d.scope(prefix).changedSince!(v2)).toEqual(["a"]);
    expect(await d.scope(prefix).changedSince!(await d.scope(prefix).version!())).toEqual([]);
  });

  it("says undefined after a clear, when the log no longer reaches back, or for a version it never gave", async () => {
    // Redis trims the log by whole stream nodes (100 entries), so "5" keeps 5 to ~105 entries.
    const d = driver(5);
    await d.scope(prefix).set("a", "1");
    const v1 = await d.scope(prefix).version!();
    for (const name of ["b", "c", "d", "e"]) await d.scope(prefix).set(name, "x");
    expect((await d.scope(prefix).changedSince!(v1))?.sort()).toEqual(["b", "c", "d", "e"]);
    for (let i = 0; i < 300; i++) await d.scope(prefix).set(`f${i}`, "x");
    const recent = await d.scope(prefix).version!();
    await d.scope(prefix).set("g", "x");
    expect(await d.scope(prefix).changedSince!(v1)).toBeUndefined();
    expect(await d.scope(prefix).changedSince!(recent)).toEqual(["g"]);
    expect(await raw.xLen(`${prefix}#log`)).toBeLessThanOrEqual(5 + 100);
    // One write of more names than the log holds cannot be reported exactly either.
    const before = await d.scope(prefix).version!();
    await d.scope(prefix).setMany(Array.from({ length: 300 }, (_, i) => ({ name: `h${i}`, value: "x" })));
    expect(await d.scope(prefix).changedSince!(before)).toBeUndefined();
    const beforeClear = await d.scope(prefix).version!();
    await d.scope(prefix).clear();
    expect(await d.scope(prefix).changedSince!(beforeClear)).toBeUndefined();
    await d.scope(prefix).set("z", "x");
    expect(await d.scope(prefix).changedSince!(beforeClear)).toBeUndefined();
    for (const bad of ["", "abc", "-1", "1.5", "99999999999999999999"]) {
      expect(await d.scope(prefix).changedSince!(bad)).toBeUndefined();
    }
    const future = (BigInt(await d.scope(prefix).version!()) + 10n).toString();
    expect(await d.scope(prefix).changedSince!(future)).toBeUndefined();
  });

  it("never reuses a version after its counter is lost, and then reports no stale changes", async () => {
    const d = driver();
    await d.scope(prefix).set("a", "1");
    await d.scope(prefix).set("b", "1");
    const old = await d.scope(prefix).version!();
    await raw.del(`${prefix}#version`);
    expect(await d.scope(prefix).version!()).toBe("0");
    await d.scope(prefix).set("c", "1");
    const fresh = await d.scope(prefix).version!();
    expect(BigInt(fresh)).toBeGreaterThan(BigInt(old));
    expect(await d.scope(prefix).changedSince!(old)).toBeUndefined();
    expect(await d.scope(prefix).changedSince!("0")).toBeUndefined();
    // A log lost on its own (say, deleted by hand) is not taken for "nothing changed".
    const v = await d.scope(prefix).version!();
    await d.scope(prefix).set("d", "1");
    await raw.del(`${prefix}#log`);
    expect(await d.scope(prefix).changedSince!(v)).toBeUndefined();
  });

  it("is served by a storage opened on redis:// (what vector caches call)", async () => {
    const r = root();
    const storage = await openStorage({ url: REDIS_URL, root: r, workspaceId: "w" });
    try {
      const store = storage.collection("vectors").opts.store as ReturnType<typeof scopeStore>;
      const v0 = await store.store.version!();
      await storage.vectors.upsert("one", [1, 0]);
      const v1 = await store.store.version!();
      expect(v1).not.toBe(v0);
      expect(await store.store.changedSince!(v0)).toBeUndefined(); // "0": never seen, reload
      await storage.vectors.upsert("two", [0, 1]);
      expect(await store.store.changedSince!(v1)).toContain("two");
    } finally {
      await storage.close();
    }
  });
});

describe("redis driver under a per-workspace ACL user", () => {
  it("keeps every key it touches, scripts included, inside ~<root>:ws:<id>:*", async () => {
    const r = root();
    const user = `${r}_user`;
    const password = randomRoot("pw");
    await raw.sendCommand([
      "ACL",
      "SETUSER",
      user,
      "on",
      `>${password}`,
      "resetkeys",
      `~${r}:ws:a:*`,
      "+@all",
      "-@dangerous",
    ]);
    const url = new URL(REDIS_URL);
    url.username = user;
    url.password = password;
    const limited = createClient({ url: url.href });
    limited.on("error", () => {});
    try {
      await limited.connect();
      const d = redisDriver(async () => limited as unknown as RedisCommander);
      const prefix = `${r}:ws:a:artifacts`;
      await d.scope(prefix).set("x", "1", 60);
      await d.scope(prefix).setMany([
        { name: "y", value: "2" },
        { name: "z:*", value: "3" },
      ]);
      const v = await d.scope(prefix).version!();
      await d.scope(prefix).delete("y");
      expect(await d.scope(prefix).changedSince!(v)).toEqual(["y"]);
      expect(await names(d, prefix)).toEqual(["x", "z:*"]);
      await d.scope(prefix).clear();
      expect(await names(d, prefix)).toEqual([]);
      expect(await keysUnder(raw, `${prefix}:`)).toEqual([]);
      // The pattern is enforced, scripts included: another workspace is out of reach.
      await expect(d.scope(`${r}:ws:b:artifacts`).set("x", "1")).rejects.toThrow(/NOPERM|permission/i);
      expect(await raw.exists(`${r}:ws:b:artifacts:x`)).toBe(0);
    } finally {
      await limited.quit().catch(() => {});
      await raw.sendCommand(["ACL", "DELUSER", user]);
    }
  });
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
    await raw.set(`${r}:ws:ab:artifacts:other`, "v");
    const d = driver();
    await d.scope(prefix).set("live", "v");
    await d.scope(prefix).set("gone", "v");
    await raw.del(`${prefix}:gone`); // as if evicted or deleted by hand
    await sleep(150);
    expect(await names(d, prefix)).toEqual(["gone", "live"]);
    const untouched = await snapshot(raw, `${r}:ws:a:artifactsx`);
    const hash = await raw.hGetAll(`${prefix}:hash`);
    const v0 = await d.scope(prefix).version!();

    const report = await rebuildIndex(REDIS_URL, prefix);
    expect(report).toEqual({ prefix, scanned: 4, added: 3, removed: 1 });
    expect(await names(d, prefix)).toEqual(["live", "old", "ttl", "with:colon*"]);
    const ttlScore = await raw.zScore(`${prefix}#index`, "ttl");
    expect(ttlScore).toBeGreaterThan(Date.now() + 500_000);
    expect(await raw.zScore(`${prefix}#index`, "old")).toBe(Number.POSITIVE_INFINITY);
    expect((await d.scope(prefix).changedSince!(v0))?.sort()).toEqual(["gone", "old", "ttl", "with:colon*"]);
    expect(await raw.hGetAll(`${prefix}:hash`)).toEqual(hash);
    expect(await snapshot(raw, `${r}:ws:a:artifactsx`)).toEqual(untouched);
    expect(await raw.get(`${r}:ws:ab:artifacts:other`)).toBe("v");
    expect(await raw.exists(`${r}:ws:ab:artifacts#index`)).toBe(0);

    // A second run finds nothing to do and changes no version.
    const v1 = await d.scope(prefix).version!();
    expect(await rebuildIndex(raw as unknown as RedisCommander, prefix)).toEqual({
      prefix,
      scanned: 4,
      added: 0,
      removed: 0,
    });
    expect(await d.scope(prefix).version!()).toBe(v1);
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
    // With no collection wanted, only a prefix that already has an index is found (and fixed).
    expect(await rebuildIndexes(REDIS_URL, { root: r, workspaceId: "b", collections: [] })).toEqual([]);
    await raw.zAdd(`${r}:ws:b:workflows#index`, [{ score: 1, value: "stale" }]);
    const reports = await rebuildIndexes(REDIS_URL, { root: r, workspaceId: "b", collections: [] });
    expect(reports).toEqual([{ prefix: `${r}:ws:b:workflows`, scanned: 1, added: 1, removed: 1 }]);
    expect(await raw.exists(`${r}:v2:artifacts#index`)).toBe(0);
    expect(await raw.get(`${r}:v2:artifacts:z`)).toBe("v");
  });

  it("makes data saved before the index existed visible to list()", async () => {
    const r = root();
    const storage = await openStorage({ url: REDIS_URL, root: r, workspaceId: "c" });
    try {
      await storage.artifacts.save("report", { ok: true });
      await storage.workflows.add({ name: "wf", source: "x", description: "adds numbers" });
      // Forget every index, as if the data came from a version without one.
      for (const key of await keysUnder(raw, r)) if (key.endsWith("#index")) await raw.del(key);
      expect(await storage.artifacts.list()).toEqual([]);
      expect(await storage.workflows.list()).toEqual([]);
      await rebuildIndexes(REDIS_URL, { root: r, workspaceId: "c" });
      expect((await storage.artifacts.list()).map((a) => a.name)).toEqual(["report"]);
      expect((await storage.workflows.list()).map((w) => w.name)).toEqual(["wf"]);
      expect((await storage.workflows.search("numbers")).map((w) => w.name)).toEqual(["wf"]);
    } finally {
      await storage.close();
    }
  });

  it("refuses bad input with typed errors and fails fast on an unreachable server", async () => {
    await expect(rebuildIndex(REDIS_URL, "bad*prefix")).rejects.toMatchObject({ code: "ERR_INVALID_ROOT" });
    await expect(rebuildIndexes(REDIS_URL, { root: "r", workspaceId: "../x" })).rejects.toMatchObject({
      code: "ERR_INVALID_WORKSPACE_ID",
    });
    await expect(rebuildIndexes(REDIS_URL, { root: "r", workspaceId: "a", allWorkspaces: true })).rejects.toMatchObject(
      { code: "ERR_INVALID_ARGUMENT" },
    );
    await expect(rebuildIndex("redis://127.0.0.1:1", "p", { connectTimeoutMs: 1000 })).rejects.toMatchObject({
      code: "ERR_CONNECTION",
    });
  });

  it("runs as a CLI", async () => {
    const r = root();
    await raw.set(`${r}:ws:w:artifacts:a`, "v");
    const cli = fileURLToPath(new URL("../../scripts/rebuild-index.ts", import.meta.url));
    const { stdout } = await run(process.execPath, ["--import", "tsx", cli, REDIS_URL, r, "w"], { timeout: 30_000 });
    expect(stdout).toContain(`${r}:ws:w:artifacts: 1 keys scanned, 1 index entries added or fixed, 0 removed`);
    expect(await raw.zRange(`${r}:ws:w:artifacts#index`, 0, -1)).toEqual(["a"]);
    const bad = run(process.execPath, ["--import", "tsx", cli, REDIS_URL, "bad root"], { timeout: 30_000 });
    await expect(bad).rejects.toMatchObject({ code: 2 });
  });
});

describe("two processes writing one workspace", () => {
  it("ends with exactly their 200 names listed and indexed", async () => {
    const r = root();
    const storage = await openStorage({ url: REDIS_URL, root: r, workspaceId: "shared" });
    try {
      const store = storage.collection("artifacts").opts.store as ReturnType<typeof scopeStore>;
      const v0 = await store.store.version!();
      await storage.artifacts.save("seed", { i: -1 }); // so v1 below is a version the log covers
      const v1 = await store.store.version!();
      expect(v1).not.toBe(v0);
      const env = { ...process.env, START_AT: String(Date.now() + 2000) };
      const args = (tag: string) => ["--import", "tsx", writer, REDIS_URL, r, "shared", tag, "100"];
      await Promise.all([
        run(process.execPath, args("a"), { timeout: 60_000, env }),
        run(process.execPath, args("b"), { timeout: 60_000, env }),
      ]);
      await storage.artifacts.delete("seed");
      const expected = ["a", "b"].flatMap((tag) => Array.from({ length: 100 }, (_, i) => `${tag}-${i}`)).sort();
      expect((await storage.artifacts.list()).map((a) => a.name)).toEqual(expected);
      expect(await raw.zCard(`${store.prefix}#index`)).toBe(200);
      expect((await store.store.changedSince!(v1))?.sort()).toEqual([...expected, "seed"].sort());
    } finally {
      await storage.close();
    }
  });
});

describe("collection() keys on redis", () => {
  it("refuses keys with an unpaired surrogate, which UTF-8 would fold into one key, and stores nothing", async () => {
    const root = randomRoot("utf8");
    roots.push(root);
    const storage = await openStorage({ url: REDIS_URL, root, workspaceId: "w" });
    try {
      const notes = storage.collection("notes");
      for (const key of ["\uD800", "\uDC00", "a\uDFFFb"]) {
        await expect(notes.set(key, 1)).rejects.toMatchObject({ code: "ERR_INVALID_NAME" });
        await expect(notes.get(key)).rejects.toMatchObject({ code: "ERR_INVALID_NAME" });
        await expect(notes.delete(key)).rejects.toMatchObject({ code: "ERR_INVALID_NAME" });
      }
      await notes.set("\uD83D\uDE00", 2); // a surrogate pair is one well-formed character
      expect(await notes.get("\uD83D\uDE00")).toBe(2);
      expect(await keysUnder(raw, `${root}:ws:w:notes:`)).toEqual([`${root}:ws:w:notes:\u{1F600}`]);
    } finally {
      await storage.close();
    }
  });
});
