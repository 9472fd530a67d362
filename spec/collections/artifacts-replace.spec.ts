import { afterAll, describe, expect, it } from "vitest";

import { MemoryStore } from "../../lib/backends/memory.js";
import { KNOWN_NAMES } from "../../lib/collections/artifacts.js";
import { createStorage, openStorage, type WorkspaceStorage } from "../../lib/index.js";
import { tempDir } from "../support/env.js";
import { type Cleanups, commandsSent, startPrivateRedis } from "../support/servers.js";

const sent = commandsSent;

const later = () => new Promise((resolve) => setTimeout(resolve, 5));

describe("artifacts.save on Redis: a name this handle knows is written in one SET … XX GET", () => {
  const cleanups: Cleanups = [];
  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const open = async (url: string): Promise<WorkspaceStorage> => {
    const storage = await openStorage({ url, root: "ar", workspaceId: "w" });
    cleanups.push(() => storage.close());
    return storage;
  };

  it("sends one command per save of a known name, keeps createdAt, and reads first for names it has not seen", async () => {
    const { server, admin } = await startPrivateRedis(cleanups);
    const a = await open(server.url);
    const first = await a.artifacts.save("doc", { v: 1 });
    await later();
    expect(await sent(admin, () => a.artifacts.save("doc", { v: 2 }))).toEqual({ set: 1 });
    const second = await a.artifacts.info("doc");
    expect(second?.createdAt).toBe(first.createdAt);
    expect(second?.updatedAt).not.toBe(first.updatedAt);
    expect(await a.artifacts.load("doc")).toEqual({ v: 2 });
    // Another process has not seen "doc": it reads the record first, then writes.
    const b = await open(server.url);
    await b.artifacts.save("warm", 0); // its first write checks the layout and registers the workspace
    expect(await sent(admin, () => b.artifacts.save("doc", { v: 3 }))).toEqual({ get: 1, set: 1 });
    expect((await b.artifacts.info("doc"))?.createdAt).toBe(first.createdAt);
    // A read teaches the handle the creation time as well as a save does.
    const c = await open(server.url);
    await c.artifacts.save("warm", 0);
    await c.artifacts.list();
    expect(await sent(admin, () => c.artifacts.save("doc", { v: 4 }))).toEqual({ set: 1 });
    // A TTL write is not a replace: it keeps its MULTI (index, #ttl, value with PXAT).
    expect(await sent(admin, () => c.artifacts.save("doc", { v: 5 }, { ttl: 60_000 }))).toMatchObject({ multi: 1 });
  });

  it("reads the replaced record's own createdAt, not one its metadata carries", async () => {
    const { server, admin } = await startPrivateRedis(cleanups);
    const a = await open(server.url);
    const first = await a.artifacts.save("doc", { v: 1 });
    // Another writer's record, fields in another order: metadata first, naming the time a knows.
    const other = "2020-01-01T00:00:00.000Z";
    const record = {
      value: {
        name: "doc",
        metadata: { note: 1, createdAt: first.createdAt },
        createdAt: other,
        updatedAt: other,
        description: "",
        size: 1,
        kind: "json",
        version: "v0",
        data: 2,
      },
    };
    await admin.set("ar:ws:w:artifacts:doc", JSON.stringify(record));
    const saved = await a.artifacts.save("doc", { v: 3 });
    expect(saved.createdAt).toBe(other);
    expect(await a.artifacts.info("doc")).toMatchObject({ createdAt: other, version: saved.version });
  });

  it("in the hash layout, sends one MULTI (HGET beside HSET) per save of a known name", async () => {
    const { server, admin } = await startPrivateRedis(cleanups);
    const storage = await openStorage({ url: server.url, root: "ar", workspaceId: "w", redisLayout: "hash" });
    cleanups.push(() => storage.close());
    const first = await storage.artifacts.save("doc", { v: 1 });
    await later();
    expect(await sent(admin, () => storage.artifacts.save("doc", { v: 2 }))).toEqual({
      multi: 1,
      hget: 1,
      hset: 1,
      exec: 1,
    });
    expect(await storage.artifacts.info("doc")).toMatchObject({ createdAt: first.createdAt });
    expect(await storage.artifacts.load("doc")).toEqual({ v: 2 });
  });

  it(`remembers the ${KNOWN_NAMES} names whose creation time it learned last`, async () => {
    const { server, admin } = await startPrivateRedis(cleanups);
    // Unscoped: no workspace quota, whose cached absence a write reads again once a second old
    // (QUOTA_REFRESH_MS), so a measured save could send that GET too (filling takes over a second).
    const a = await openStorage({ url: server.url, root: "ar" });
    cleanups.push(() => a.close());
    const names = Array.from({ length: KNOWN_NAMES }, (_, i) => `n${i}`);
    for (let i = 0; i < names.length; i += 8192) {
      await a.artifacts.saveMany(names.slice(i, i + 8192).map((name) => ({ name, data: 0 })));
    }
    // Reading a name it knows does not move it: n0 is still the oldest, and one more name drops it.
    await a.artifacts.load("n0");
    await a.artifacts.save(`n${KNOWN_NAMES}`, 0);
    expect(await sent(admin, () => a.artifacts.save("n1", 1))).toEqual({ set: 1 });
    expect(await sent(admin, () => a.artifacts.save("n0", 1))).toEqual({ get: 1, set: 1 });
    expect(await sent(admin, () => a.artifacts.save(`n${KNOWN_NAMES}`, 1))).toEqual({ set: 1 });
  });
});

/** Two storages over the same data, each with its own remembered creation times. */
interface Engine {
  name: string;
  open(): Promise<WorkspaceStorage>;
}

const cleanups: Cleanups = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
const dir = tempDir();
cleanups.push(() => dir.remove());
const shared = new MemoryStore();
let redisUrl: Promise<string> | undefined;
const opened = async (storage: WorkspaceStorage | Promise<WorkspaceStorage>) => {
  const s = await storage;
  cleanups.push(() => s.close());
  return s;
};
const engines: Engine[] = [
  { name: "memory", open: () => opened(createStorage(shared, { root: "ar", workspaceId: "w" })) },
  { name: "file", open: () => opened(openStorage({ url: `file:${dir.path}/a.kv`, root: "ar", workspaceId: "w" })) },
  {
    name: "redis",
    open: async () => {
      redisUrl ??= startPrivateRedis(cleanups).then(({ server }) => server.url);
      return opened(openStorage({ url: await redisUrl, root: "ar", workspaceId: "w" }));
    },
  },
  {
    name: "redis, hash layout",
    open: async () => {
      redisUrl ??= startPrivateRedis(cleanups).then(({ server }) => server.url);
      return opened(openStorage({ url: await redisUrl, root: "arh", workspaceId: "w", redisLayout: "hash" }));
    },
  },
];

for (const engine of engines) {
  describe(`artifacts.save over another process's writes (${engine.name})`, () => {
    it("refuses a known name's save that would take the workspace over its quota, and keeps the record", async () => {
      const a = await engine.open();
      await a.artifacts.save("big", "x".repeat(10));
      const operator = a.withWorkspace(null);
      await operator.setQuota("w", { maxBytes: 1_000_000 });
      const used = (await a.quota())?.bytes as number;
      expect(used).toBeGreaterThan(10);
      await operator.setQuota("w", { maxBytes: used + 20 });
      try {
        await expect(a.artifacts.save("big", "x".repeat(100))).rejects.toMatchObject({ code: "ERR_QUOTA_EXCEEDED" });
        expect(await a.artifacts.load("big")).toBe("x".repeat(10));
        expect((await a.artifacts.save("big", "y".repeat(10))).name).toBe("big");
      } finally {
        await operator.setQuota("w", null);
        await a.artifacts.delete("big");
      }
    });

    it("takes the creation time of a record another process re-created, and a new one after a delete", async () => {
      const a = await engine.open();
      const b = await engine.open();
      const old = await a.artifacts.save("doc", 1);
      await later();
      await b.artifacts.delete("doc");
      const remade = await b.artifacts.save("doc", 2);
      expect(remade.createdAt > old.createdAt).toBe(true);
      await later();
      // a still remembers the old time: the replaced value shows it wrong, and the record is rewritten.
      const saved = await a.artifacts.save("doc", 3);
      expect(saved.createdAt).toBe(remade.createdAt);
      const stored = await (await engine.open()).artifacts.info("doc");
      expect(stored).toMatchObject({ createdAt: remade.createdAt, version: saved.version });
      expect(await b.artifacts.load("doc")).toBe(3);
      // Deleted by another process: nothing is replaced, and the save creates the record anew.
      await b.artifacts.delete("doc");
      await later();
      const anew = await a.artifacts.save("doc", 4);
      expect(anew.createdAt > remade.createdAt).toBe(true);
      expect(await b.artifacts.info("doc")).toMatchObject({ createdAt: anew.createdAt, version: anew.version });
    });
  });
}
