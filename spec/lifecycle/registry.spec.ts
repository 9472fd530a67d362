import { describe, expect, it } from "vitest";
import { DRIVER, type Driver } from "../../lib/backends/driver.js";
import { mapDriver } from "../../lib/backends/map-scope.js";
import { createStorage, openStorage, provisionWorkspaceUser, revokeWorkspaceUser } from "../../lib/index.js";
import { BACKENDS, perTest } from "../support/backends.js";
import { REDIS_URL } from "../support/env.js";

/** A map driver that counts writes per prefix. */
function countingStore() {
  const inner = mapDriver(new Map());
  const writes = new Map<string, number>();
  const count = (prefix: string) => writes.set(prefix, (writes.get(prefix) ?? 0) + 1);
  const driver: Driver = {
    scope(prefix) {
      const store = inner.scope(prefix);
      return {
        ...store,
        set(name, value, ttl) {
          count(prefix);
          return store.set(name, value, ttl);
        },
        setMany(entries) {
          count(prefix);
          return store.setMany(entries);
        },
      };
    },
  };
  const store = { get() {}, set() {}, delete() {}, clear() {}, [DRIVER]: driver };
  return { store, writes };
}

describe("the workspace registry", () => {
  it("costs one registry write per workspace and collection per process, not one per data write", async () => {
    const { store, writes } = countingStore();
    const a = createStorage(store as never, { root: "app", workspaceId: "a" });
    const again = createStorage(store as never, { root: "app", workspaceId: "a" });
    await Promise.all([1, 2, 3].map((i) => a.collection("notes").set(`k${i}`, i)));
    for (let i = 0; i < 20; i++) await again.collection("notes").set(`j${i}`, i);
    await a.artifacts.save("x", 1);
    expect(writes.get("app#workspaces")).toBe(1);
    expect(writes.get("app:ws:a:#collections")).toBe(2);
    expect(writes.get("app:ws:a:notes")).toBe(23);
  });

  it("an interrupted drop or migration is finished by running it again", async () => {
    const s = createStorage(new Map(), { root: "app" });
    const rows = Array.from({ length: 1200 }, (_, i) => ({ collection: "notes", name: `n${i}`, value: i }));
    const a = s.withWorkspace("a");
    await a.importWorkspace(rows);
    const stop = () => {
      throw new Error("cut short");
    };
    await expect(a.dropWorkspace({ onProgress: stop })).rejects.toThrow("cut short");
    expect(await s.listWorkspaces()).toEqual(["a"]);
    expect((await a.stats()).notes?.entries).toBe(700);
    expect(await a.dropWorkspace()).toBe(700);
    expect(await s.listWorkspaces()).toEqual([]);

    const legacy = s.collection("notes");
    for (let i = 0; i < 1200; i++) await legacy.set(`m${i}`, i);
    await expect(s.migrateLegacy({ to: "b", onProgress: stop })).rejects.toThrow("cut short");
    expect(await s.migrateLegacy({ to: "b" })).toEqual({ entries: 700 });
    const b = s.withWorkspace("b").collection("notes");
    for (let i = 0; i < 1200; i++) expect(await b.get(`m${i}`)).toBe(i);
    expect((await s.withWorkspace("b").stats()).notes?.entries).toBe(1200);
    expect(await s.stats()).toEqual({});
  });
});

describe("the registry under a workspace's Redis ACL user", () => {
  const redis = BACKENDS.find((b) => b.name === "redis")!;
  const { newRoot, track } = perTest(redis, "lcacl");

  it("lets the tenant register and drop its own id, and not list the others", async () => {
    const root = newRoot();
    const admin = await track(openStorage({ url: REDIS_URL, root, workspaceId: null }));
    await admin.withWorkspace("other").artifacts.save("x", 1);
    const { url, username } = await provisionWorkspaceUser(REDIS_URL, admin.withWorkspace("t").keyspace, {
      password: "pw-lifecycle-1",
    });
    try {
      const tenant = await track(openStorage({ url, root, workspaceId: "t" }));
      await tenant.artifacts.save("mine", 1);
      await tenant.collection("notes").set("k", "v");
      expect(await admin.listWorkspaces()).toEqual(["other", "t"]);
      expect(Object.keys(await tenant.stats())).toEqual(["artifacts", "notes"]);
      await expect(tenant.listWorkspaces()).rejects.toMatchObject({ code: "ERR_PERMISSION_DENIED" });
      expect((await collectAll(tenant.exportWorkspace())).length).toBe(2);
      expect(await tenant.dropWorkspace()).toBe(2);
      expect(await admin.listWorkspaces()).toEqual(["other"]);
    } finally {
      await revokeWorkspaceUser(REDIS_URL, username);
    }
  });
});

async function collectAll<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe("the Redis driver's scan()", () => {
  it("hands out every live name in batches, keeping no set of names (lifecycle walks use it)", async () => {
    const { openStorage: open } = await import("../../lib/index.js");
    const redis = BACKENDS.find((b) => b.name === "redis")!;
    const root = `kvwst_scan_${Math.random().toString(36).slice(2, 10)}`;
    const s = await open({ url: REDIS_URL, root, workspaceId: "a" });
    try {
      const rows = Array.from({ length: 2500 }, (_, i) => ({ collection: "notes", name: `n${i}`, value: i }));
      await s.importWorkspace([...rows, { collection: "notes", name: "gone", value: 0, expiresAt: Date.now() + 1 }]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const { connectRedis } = await import("../../lib/backends/redis/open.js");
      const { redisDriver } = await import("../../lib/backends/redis/driver.js");
      const connection = await connectRedis(REDIS_URL);
      try {
        const store = redisDriver(async () => connection.commander).scope(`${root}:ws:a:notes`);
        const seen: string[] = [];
        for await (const page of store.scan!()) {
          expect(page.length).toBeLessThanOrEqual(1000);
          seen.push(...page);
        }
        expect(new Set(seen).size).toBe(2500);
        expect(seen).not.toContain("gone");
      } finally {
        await connection.close();
      }
    } finally {
      await s.close();
      await redis.cleanup(root);
    }
  });
});

describe("the README's lifecycle numbers", () => {
  it("states the batch size the walks use", async () => {
    const { readFileSync } = await import("node:fs");
    const { BATCH } = await import("../../lib/lifecycle/stats.js");
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const stated = [...readme.matchAll(/in batches of (\d+)/g)].map((m) => Number(m[1]));
    expect(stated.length).toBeGreaterThanOrEqual(2);
    for (const n of stated) expect(n).toBe(BATCH);
  });
});
