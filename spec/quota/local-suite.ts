/**
 * What every engine's quotas must do, run on memory, file and SQLite (spec/quota/memory.spec.ts,
 * file.spec.ts, sqlite-shared.spec.ts): real stores, opened on a URL the caller gives fresh per test.
 */
import { afterEach, describe, expect, it } from "vitest";
import { QuotaExceededError } from "../../lib/errors.js";
import { openStorage, type WorkspaceStorage } from "../../lib/index.js";

const ROOT = "q";

async function sums(ws: WorkspaceStorage) {
  let entries = 0;
  let bytes = 0;
  for (const stats of Object.values(await ws.stats())) {
    entries += stats.entries;
    bytes += stats.bytes;
  }
  return { entries, bytes };
}

/** quota() agrees with stats() (entries and bytes, every collection). */
export async function expectAgrees(ws: WorkspaceStorage): Promise<void> {
  const { entries, bytes } = await ws.quota();
  expect({ entries, bytes }).toEqual(await sums(ws));
}

export function localQuotaSuite(engine: string, freshUrl: () => string): void {
  describe(`quotas on ${engine}`, () => {
    const opened: WorkspaceStorage[] = [];
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });
    const open = async (url: string, workspaceId: string | null = null) => {
      const storage = await openStorage({ url, root: ROOT, workspaceId });
      opened.push(storage);
      return storage;
    };
    const setup = async (quota: { maxEntries?: number; maxBytes?: number } | null) => {
      const url = freshUrl();
      const operator = await open(url);
      const ws = await open(url, "t1");
      if (quota) await operator.setQuota("t1", quota);
      return { url, operator, ws, notes: ws.collection("notes") };
    };

    it("refuses a write past maxEntries, stores nothing of it, and counts every collection", async () => {
      const { ws, notes } = await setup({ maxEntries: 3 });
      await notes.set("a", 1);
      await ws.artifacts.save("r", { x: 1 });
      await ws.collection("other").set("b", 2);
      const refused = await notes.set("c", 3).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(QuotaExceededError);
      expect((refused as QuotaExceededError).code).toBe("ERR_QUOTA_EXCEEDED");
      expect((refused as QuotaExceededError).workspaceId).toBe("t1");
      expect(await notes.get("c")).toBeUndefined();
      await expect(ws.artifacts.save("r2", "x")).rejects.toBeInstanceOf(QuotaExceededError);
      expect(await ws.artifacts.list()).toHaveLength(1);
      expect(await ws.quota()).toMatchObject({ limit: { maxEntries: 3 }, entries: 3 });
      await expectAgrees(ws);
    });

    it("refuses growth past maxBytes, lets deletes and non-growing overwrites through while over", async () => {
      const { operator, ws, notes } = await setup(null);
      for (const name of ["a", "b", "c"]) await notes.set(name, "x".repeat(100));
      const { bytes } = await ws.quota();
      // Below what the workspace holds already: it is over from the start.
      await operator.setQuota("t1", { maxEntries: 2, maxBytes: bytes - 1 });
      await notes.set("a", "y".repeat(100));
      await notes.set("b", "short");
      await expect(notes.set("c", "z".repeat(200))).rejects.toBeInstanceOf(QuotaExceededError);
      expect(await notes.get("c")).toBe("x".repeat(100));
      await expect(notes.set("d", 1)).rejects.toBeInstanceOf(QuotaExceededError);
      expect(await notes.delete("c")).toBe(true);
      await expectAgrees(ws);
      // Two entries left, at the entry limit: a new one is still refused, an overwrite is not.
      await expect(notes.set("d", 1)).rejects.toBeInstanceOf(QuotaExceededError);
      await notes.set("b", "s");
      await notes.clear();
      await notes.set("d", 1);
      expect(await ws.quota()).toMatchObject({ entries: 1 });
      await expectAgrees(ws);
    });

    it("saveMany is all or nothing", async () => {
      const { ws } = await setup({ maxEntries: 3 });
      await ws.artifacts.save("a", 1);
      const items = ["b", "c", "d"].map((name) => ({ name, data: name }));
      await expect(ws.artifacts.saveMany(items)).rejects.toBeInstanceOf(QuotaExceededError);
      expect((await ws.artifacts.list()).map((a) => a.name)).toEqual(["a"]);
      // Overwriting "a" in the batch adds no entry: two new ones fit.
      await ws.artifacts.saveMany([{ name: "a", data: 2 }, ...items.slice(0, 2)]);
      expect(await ws.quota()).toMatchObject({ entries: 3 });
      await expectAgrees(ws);
    });

    it("counts conditional writes and refuses one that would grow past the limit", async () => {
      const { ws } = await setup({ maxEntries: 2 });
      const first = await ws.artifacts.save("a", 1, { ifVersion: null });
      await ws.artifacts.save("b", 1, { ifVersion: null });
      await expect(ws.artifacts.save("c", 1, { ifVersion: null })).rejects.toBeInstanceOf(QuotaExceededError);
      await ws.artifacts.save("a", 2, { ifVersion: first.version });
      expect(await ws.artifacts.load("a")).toBe(2);
      expect(await ws.artifacts.list()).toHaveLength(2);
      await expectAgrees(ws);
    });

    it("never stores more than maxEntries under concurrent writers of two storages", async () => {
      const { url, ws } = await setup({ maxEntries: 25 });
      const other = await open(url, "t1");
      const writes = Array.from({ length: 60 }, (_, i) =>
        (i % 2 === 0 ? ws : other).collection("notes").set(`n${i}`, i),
      );
      const results = await Promise.allSettled(writes);
      const refused = results.filter((r) => r.status === "rejected");
      expect(refused.every((r) => r.reason instanceof QuotaExceededError)).toBe(true);
      expect(results.length - refused.length).toBe(25);
      expect(await ws.quota()).toMatchObject({ entries: 25 });
      await expectAgrees(other);
    });

    it("a quota set or removed while storages are open binds them at their next write", async () => {
      const { operator, ws, notes } = await setup(null);
      await notes.set("a", 1);
      await operator.setQuota("t1", { maxEntries: 1 });
      await expect(notes.set("b", 1)).rejects.toBeInstanceOf(QuotaExceededError);
      await operator.setQuota("t1", { maxEntries: 2 });
      await notes.set("b", 1);
      await operator.setQuota("t1", null);
      for (let i = 0; i < 5; i++) await notes.set(`n${i}`, i);
      expect(await ws.quota()).toEqual({ limit: null, entries: 7, bytes: expect.any(Number) });
      await expectAgrees(ws);
    });

    it("leaves other workspaces alone", async () => {
      const { url, ws } = await setup({ maxEntries: 1 });
      const t2 = await open(url, "t2");
      const t1b = await open(url, "t1-b");
      await ws.collection("notes").set("a", 1);
      for (let i = 0; i < 5; i++) await t2.collection("notes").set(`n${i}`, i);
      // Workspace "t1-b" starts with t1's id, yet is a workspace of its own.
      for (let i = 0; i < 5; i++) await t1b.collection("notes").set(`n${i}`, i);
      expect(await ws.quota()).toMatchObject({ entries: 1 });
      expect(await t2.quota()).toMatchObject({ limit: null, entries: 5 });
    });

    it("frees what expired: an entry past its TTL no longer counts or blocks", async () => {
      const { ws, notes } = await setup({ maxEntries: 2 });
      await notes.set("brief", "x", 5);
      await notes.set("kept", "y");
      await new Promise((resolve) => setTimeout(resolve, 30));
      await expectAgrees(ws);
      expect(await ws.quota()).toMatchObject({ entries: 1 });
      await notes.set("new", "z");
      expect(await notes.get("new")).toBe("z");
      await expectAgrees(ws);
    });

    it("quota() agrees with stats() after a mixed sequence of writes", async () => {
      const { ws, notes } = await setup({ maxEntries: 1000, maxBytes: 1_000_000 });
      let seed = 7;
      const next = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed;
      };
      for (let step = 0; step < 300; step++) {
        const name = `k${next() % 40}`;
        const op = next() % 6;
        if (op === 0) await notes.delete(name);
        else if (op === 1) await ws.artifacts.save(name, "v".repeat(next() % 50));
        else if (op === 2)
          await notes.setMany([
            { key: name, value: next() },
            { key: `${name}x`, value: "y" },
          ]);
        else if (op === 3 && step % 50 === 0) await notes.clear();
        else if (op === 4) await ws.collection("misc").set(name, { n: next() % 1000 });
        else await notes.set(name, "w".repeat(next() % 30));
      }
      await expectAgrees(ws);
      expect((await ws.quota()).entries).toBeGreaterThan(0);
    });
  });
}
