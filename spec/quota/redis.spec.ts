/**
 * Quotas on Redis (lib/backends/redis/quota.ts), both layouts, on the shared Redis under random
 * roots; ACL users and a cluster on private servers. Child processes: spec/fixtures/quota-redis-writer.ts.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import {
  keyspace,
  openStorage,
  PermissionDeniedError,
  provisionWorkspaceUser,
  QuotaExceededError,
  redisAcl,
  type WorkspaceStorage,
} from "../../lib/index.js";
import { REDIS_URL, rawRedis } from "../support/env.js";
import { redisRoots } from "../support/redis-roots.js";
import { startPrivateRedis } from "../support/servers.js";
import { useCluster } from "../support/use-cluster.js";

const writer = fileURLToPath(new URL("../fixtures/quota-redis-writer.ts", import.meta.url));
const newRoot = redisRoots("quota");
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Layout = "keys" | "hash";

async function open(options: { url?: string; root: string; workspaceId?: string; layout: Layout; cluster?: boolean }) {
  const storage = await openStorage({
    url: options.url ?? REDIS_URL,
    root: options.root,
    ...(options.workspaceId === undefined ? {} : { workspaceId: options.workspaceId }),
    ...(options.cluster ? { cluster: true } : {}),
    redisLayout: options.layout,
  });
  cleanups.push(() => storage.close());
  return storage;
}

async function used(storage: WorkspaceStorage): Promise<{ entries: number; bytes: number }> {
  let entries = 0;
  let bytes = 0;
  for (const stats of Object.values(await storage.stats())) {
    entries += stats.entries;
    bytes += stats.bytes;
  }
  return { entries, bytes };
}

/** quota() agrees with stats(), summed over the workspace's collections. */
async function expectAgrees(storage: WorkspaceStorage) {
  const quota = await storage.quota();
  expect({ entries: quota.entries, bytes: quota.bytes }).toEqual(await used(storage));
  return quota;
}

/** A quota-redis-writer child: `ask(line)` resolves with its answer. */
async function child(url: string, root: string, id: string, layout: Layout, cluster = false) {
  const proc: ChildProcessWithoutNullStreams = spawn(process.execPath, ["--import", "tsx", writer, url, root, id], {
    env: { ...process.env, KVWS_REDIS_LAYOUT: layout, ...(cluster ? { KVWS_CLUSTER: "1" } : {}) },
  });
  let stderr = "";
  proc.stderr.on("data", (chunk) => {
    stderr += String(chunk);
  });
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const line = await lines.next();
    if (line.done) throw new Error(`quota-redis-writer ended: ${stderr}`);
    return String(line.value);
  };
  cleanups.push(() => {
    proc.kill();
  });
  expect(await next()).toBe("ready");
  return {
    ask: async (line: string) => {
      proc.stdin.write(`${line}\n`);
      return next();
    },
  };
}

describe.each(["keys", "hash"] as const)("quotas on Redis, %s layout", (layout) => {
  it("refuses growth past the limit and writes nothing; deletes and non-growing overwrites pass", async () => {
    const root = newRoot();
    const operator = await open({ root, layout });
    const ws = await open({ root, workspaceId: "a", layout });
    const c = ws.collection("c");
    await c.set("before", "x");
    await operator.setQuota("a", { maxEntries: 3 });
    expect(await expectAgrees(ws)).toMatchObject({ limit: { maxEntries: 3 }, entries: 1 });
    await c.set("b", "y");
    await ws.collection("d").set("c", "z");
    await expect(c.set("over", "1")).rejects.toBeInstanceOf(QuotaExceededError);
    expect(await c.get("over")).toBeUndefined();
    await c.set("b", "Y"); // same size: no growth
    expect(await c.delete("b")).toBe(true);
    await c.set("now", "fits");
    await expect(c.set("over", "1")).rejects.toMatchObject({ code: "ERR_QUOTA_EXCEEDED", workspaceId: "a" });
    await expectAgrees(ws);

    // A byte limit below current use: only growth is refused.
    await operator.setQuota("a", { maxBytes: 10 });
    await expect(c.set("before", "a much longer value than before")).rejects.toBeInstanceOf(QuotaExceededError);
    await c.set("before", "");
    await c.delete("now");
    await c.clear();
    expect(await expectAgrees(ws)).toMatchObject({ limit: { maxBytes: 10 } });
    await ws.collection("d").clear();
    expect(await ws.quota()).toEqual({ limit: { maxBytes: 10 }, entries: 0, bytes: 0 });
  });

  it("keeps setMany all-or-nothing, counts conditional writes, and follows expiry as stats() does", async () => {
    const root = newRoot();
    const operator = await open({ root, layout });
    const ws = await open({ root, workspaceId: "a", layout });
    const c = ws.collection("c");
    await operator.setQuota("a", { maxEntries: 4 });
    await c.setMany([
      { key: "a", value: 1 },
      { key: "b", value: 2 },
    ]);
    await expect(
      c.setMany([
        { key: "c", value: 3 },
        { key: "d", value: 4 },
        { key: "e", value: 5 },
      ]),
    ).rejects.toBeInstanceOf(QuotaExceededError);
    expect(await c.get(["c", "d", "e"])).toEqual([undefined, undefined, undefined]);
    await ws.artifacts.save("doc", { v: 1 }, { ifVersion: null });
    const usedAfterSave = await expectAgrees(ws);
    expect(usedAfterSave.entries).toBeGreaterThan(2);
    await expect(async () => {
      for (let i = 0; i < 4; i++) await ws.artifacts.save(`more-${i}`, { i }, { ifVersion: null });
    }).rejects.toBeInstanceOf(QuotaExceededError);
    await expectAgrees(ws);
    await ws.artifacts.delete("doc");
    await c.delete(["a", "b"]);
    for (const name of (await ws.artifacts.list()).map((a) => a.name)) await ws.artifacts.delete(name);
    expect(await expectAgrees(ws)).toMatchObject({ entries: 0, bytes: 0 });

    // Entries with a TTL: counted while live, not after they expire (before any sweep ran).
    await c.set("short", "s", 150);
    await c.set("long", "l", 60_000);
    await c.set("plain", "p");
    expect((await expectAgrees(ws)).entries).toBe(3);
    await sleep(300);
    expect((await expectAgrees(ws)).entries).toBe(2);
    await c.set("x", 1);
    await c.set("y", 2);
    await expect(c.set("z", 3)).rejects.toBeInstanceOf(QuotaExceededError);
    await c.set("long", "L", 60_000); // an overwrite of a timed entry does not grow
    expect((await expectAgrees(ws)).entries).toBe(4);
  });

  it("agrees with stats() after a few hundred mixed writes, some of them refused", async () => {
    const root = newRoot();
    const operator = await open({ root, layout });
    const ws = await open({ root, workspaceId: "a", layout });
    await operator.setQuota("a", { maxEntries: 45, maxBytes: 4000 });
    const notes = ws.collection("notes");
    let seed = 11;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    let refused = 0;
    for (let step = 0; step < 300; step++) {
      const name = `k${next() % 40}`;
      const op = next() % 9;
      try {
        if (op === 0) await notes.delete(name);
        else if (op === 1) await ws.artifacts.save(name, "v".repeat(next() % 50));
        else if (op === 2)
          await notes.setMany([
            { key: name, value: next() },
            { key: `${name}x`, value: "y" },
          ]);
        else if (op === 3 && step % 60 === 0) await notes.clear();
        else if (op === 4) await ws.collection("misc").set(name, { n: next() % 1000 });
        else if (op === 5) await notes.set(name, "t".repeat(next() % 20), 1 + (next() % 80));
        else if (op === 6) await ws.artifacts.save(`c${next() % 10}`, { step }, { ifVersion: null });
        else if (op === 7) await notes.delete([name, `${name}x`]);
        else await notes.set(name, "w".repeat(next() % 30));
      } catch (error) {
        // A conditional write may also lose on its version: both leave nothing written.
        if (!(error instanceof QuotaExceededError) && (error as { code?: string }).code !== "ERR_CONFLICT") throw error;
        refused++;
      }
      if (step % 100 === 99) {
        // Past every short TTL first: one expiring between quota()'s read and stats()'s would count in one only.
        await sleep(100);
        await expectAgrees(ws);
      }
    }
    await sleep(100); // the short TTLs have passed: expired entries stop counting, as in stats()
    await expectAgrees(ws);
    expect(refused).toBeGreaterThan(0);
  });

  it("never stores more than maxEntries under concurrent writers of two storages", async () => {
    const root = newRoot();
    const operator = await open({ root, layout });
    await operator.setQuota("a", { maxEntries: 25 });
    const one = (await open({ root, workspaceId: "a", layout })).collection("c");
    const two = (await open({ root, workspaceId: "a", layout })).collection("c");
    const writes = Array.from({ length: 60 }, (_, i) => (i % 2 ? one : two).set(`k${i}`, i));
    const outcomes = await Promise.allSettled(writes);
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(25);
    for (const o of outcomes) if (o.status === "rejected") expect(o.reason).toBeInstanceOf(QuotaExceededError);
    const ws = await open({ root, workspaceId: "a", layout });
    expect(await expectAgrees(ws)).toMatchObject({ entries: 25 });
  });

  it("never stores more than maxEntries under two processes racing", async () => {
    const root = newRoot();
    const operator = await open({ root, layout });
    await operator.setQuota("a", { maxEntries: 40 });
    const [a, b] = await Promise.all([child(REDIS_URL, root, "a", layout), child(REDIS_URL, root, "a", layout)]);
    const at = Date.now() + 300;
    const [ra, rb] = await Promise.all([a.ask(`burst a 40 ${at}`), b.ask(`burst b 40 ${at}`)]);
    const stored = [ra, rb].map((r) => Number(r.split(" ")[0]));
    expect((stored[0] as number) + (stored[1] as number)).toBe(40);
    const ws = await open({ root, workspaceId: "a", layout });
    expect(await expectAgrees(ws)).toMatchObject({ entries: 40 });
  });

  it("reaches a storage already open in another process once setQuota returns, and lets go when removed", async () => {
    const root = newRoot();
    const operator = await open({ root, layout });
    const other = await child(REDIS_URL, root, "a", layout);
    expect(await other.ask("set first")).toBe("ok"); // its process now caches "no quota"
    await operator.setQuota("a", { maxEntries: 1 });
    // setQuota waits out every process's cache (QUOTA_REFRESH_MS) before it counts and returns.
    expect(await other.ask("set second")).toBe("refused");
    await operator.setQuota("a", null);
    expect(await other.ask("set second")).toBe("ok");
    const ws = await open({ root, workspaceId: "a", layout });
    expect(await ws.quota()).toEqual({ limit: null, entries: 2, bytes: expect.any(Number) });
    const raw = await rawRedis();
    cleanups.push(() => raw.quit().then(() => {}));
    expect(await raw.keys(`${root}*quota*`)).toEqual([]);
  });
});

describe("a workspace ACL user under a quota", () => {
  it("obeys its quota, cannot lift it, and setQuota through it is denied", async () => {
    const { server } = await startPrivateRedis(cleanups);
    const ks = keyspace({ root: "app", workspaceId: "a" });
    const { url } = await provisionWorkspaceUser(server.url, ks, { password: "tenant-secret" });
    const operator = await open({ url: server.url, root: "app", layout: "keys" });
    await operator.setQuota("a", { maxEntries: 2 });
    const tenant = await open({ url, root: "app", workspaceId: "a", layout: "keys" });
    await tenant.collection("c").set("x", 1, 60_000);
    await tenant.collection("c").set("y", 2);
    await expect(tenant.collection("c").set("z", 3)).rejects.toBeInstanceOf(QuotaExceededError);
    expect(await tenant.quota()).toMatchObject({ limit: { maxEntries: 2 }, entries: 2 });
    await tenant.collection("c").delete("y");

    const asTenant = await open({ url, root: "app", layout: "keys" });
    await expect(asTenant.setQuota("a", null)).rejects.toBeInstanceOf(PermissionDeniedError);
    const { createClient } = await import("@redis/client");
    const raw = createClient({ url });
    raw.on("error", () => {});
    await raw.connect();
    cleanups.push(() => raw.destroy());
    expect(await raw.get("app#quota:a")).toBe(JSON.stringify({ maxEntries: 2 }));
    await expect(raw.set("app#quota:a", JSON.stringify({ maxEntries: 1000 }))).rejects.toThrow(/NOPERM/);
    await expect(raw.del("app#quota:a")).rejects.toThrow(/NOPERM/);
    expect(await tenant.quota()).toMatchObject({ limit: { maxEntries: 2 }, entries: 1 });

    // What it can do: falsify its own usage counter (its writes must update it) …
    await raw.sendCommand(["HINCRBY", "app:ws:a:#quota", "entries", "-10"]);
    expect(await tenant.quota()).toMatchObject({ entries: -9 });
    // … which the operator's next setQuota recounts from the data.
    await operator.setQuota("a", { maxEntries: 2 });
    expect(await tenant.quota()).toMatchObject({ limit: { maxEntries: 2 }, entries: 1 });
  });
});

describe("a workspace ACL user provisioned before quotas", () => {
  it("goes on writing, unchecked, and the process is told to provision it again", async () => {
    const { server, admin } = await startPrivateRedis(cleanups);
    const ks = keyspace({ root: "app", workspaceId: "a" });
    const rules = redisAcl(ks, { password: "old-secret" }).filter(
      (rule) => !rule.includes("#quota") && !rule.startsWith("+client|set"), // the latter: Redis before 7.2
    );
    await admin.sendCommand(["ACL", "SETUSER", "old", ...rules]);
    const warnings: Error[] = [];
    const listen = (warning: Error) => warnings.push(warning);
    process.on("warning", listen);
    cleanups.push(() => {
      process.off("warning", listen);
    });
    const url = server.url.replace("redis://", "redis://old:old-secret@");
    const tenant = await open({ url, root: "app", workspaceId: "a", layout: "keys" });
    await tenant.collection("c").set("x", 1);
    await sleep(10); // process warnings are emitted on the next tick
    expect(warnings.map((w) => (w as { code?: string }).code)).toContain("KVWS_QUOTA_UNREADABLE");
  });
});

describe("quotas on a Redis Cluster", () => {
  const cluster = useCluster();
  it.each(["keys", "hash"] as const)("enforces a quota across processes in the %s layout", async (layout) => {
    const { url } = cluster();
    const root = `q${layout}`;
    const operator = await open({ url, root, layout, cluster: true });
    await operator.setQuota("a", { maxEntries: 20 });
    const other = await child(url, root, "a", layout, true);
    const ws = await open({ url, root, workspaceId: "a", layout, cluster: true });
    const at = Date.now() + 200;
    const [mine, theirs] = await Promise.all([
      Promise.allSettled(Array.from({ length: 15 }, (_, i) => ws.collection("c").set(`m${i}`, i))),
      other.ask(`burst o 15 ${at}`),
    ]);
    const stored = mine.filter((o) => o.status === "fulfilled").length + Number(theirs.split(" ")[0]);
    expect(stored).toBe(20);
    expect(await expectAgrees(ws)).toMatchObject({ limit: { maxEntries: 20 }, entries: 20 });
  });
});
