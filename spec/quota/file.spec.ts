import { execFile } from "node:child_process";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { parseRecords, QUOTA_KEY } from "../../lib/backends/file/log.js";
import { openFileBackend } from "../../lib/backends/file/open.js";
import { FileStore } from "../../lib/backends/file/store.js";
import { QuotaExceededError } from "../../lib/errors.js";
import { createStorage, openStorage, type WorkspaceStorage } from "../../lib/index.js";
import { tempDir } from "../support/env.js";
import { expectAgrees, localQuotaSuite } from "./local-suite.js";

const dir = tempDir();
afterAll(() => dir.remove());
let n = 0;
const fresh = () => join(dir.path, `s${n++}.json`);

localQuotaSuite("file", () => `file:${fresh()}`);

const v1Fixture = fileURLToPath(new URL("../fixtures/file-store-v1.json", import.meta.url));
const writer = fileURLToPath(new URL("../fixtures/quota-writer.ts", import.meta.url));
const run = promisify(execFile);
const child = async (...args: string[]) =>
  (await run(process.execPath, ["--import", "tsx", writer, ...args], { timeout: 60_000, env: { ...process.env } }))
    .stdout;

describe("quotas on file: several processes share the file", () => {
  it("two processes writing at once never store more than maxEntries", async () => {
    const path = fresh();
    const operator = await openStorage({ url: `file:${path}`, root: "q", workspaceId: null });
    await operator.setQuota("t1", { maxEntries: 30 });
    await operator.close();
    const startAt = String(Date.now() + 1500);
    const outputs = await Promise.all(
      ["a", "b"].map((tag) =>
        run(process.execPath, ["--import", "tsx", writer, path, "write", tag, "25"], {
          timeout: 60_000,
          env: { ...process.env, START_AT: startAt },
        }),
      ),
    );
    const results = outputs.map(({ stdout }) => JSON.parse(stdout) as { ok: number; refused: number; other: string[] });
    expect(results.flatMap((r) => r.other)).toEqual([]);
    expect(results[0]!.ok + results[1]!.ok).toBe(30);
    expect(results[0]!.refused + results[1]!.refused).toBe(20);
    const ws = await openStorage({ url: `file:${path}`, root: "q", workspaceId: "t1" });
    expect(await ws.artifacts.list()).toHaveLength(30);
    expect(await ws.quota()).toMatchObject({ limit: { maxEntries: 30 }, entries: 30 });
    await ws.close();
  }, 90_000);

  it("a quota another process sets or removes binds an open storage at its next write", async () => {
    const path = fresh();
    const ws = await openStorage({ url: `file:${path}`, root: "q", workspaceId: "t1" });
    await ws.artifacts.save("a", 1);
    await ws.artifacts.save("b", 1);
    expect(await child(path, "set", JSON.stringify({ maxEntries: 2 }))).toBe("set\n");
    await expect(ws.artifacts.save("c", 1)).rejects.toBeInstanceOf(QuotaExceededError);
    expect(await ws.quota()).toMatchObject({ limit: { maxEntries: 2 }, entries: 2 });
    await child(path, "set", "null");
    await ws.artifacts.save("c", 1);
    expect(await ws.quota()).toEqual({ limit: null, entries: 3, bytes: expect.any(Number) });
    await ws.close();
  }, 60_000);

  it("counts what another process writes while this one holds a quota", async () => {
    const path = fresh();
    const operator = await openStorage({ url: `file:${path}`, root: "q", workspaceId: null });
    const ws = operator.withWorkspace("t1");
    await ws.artifacts.save("mine", 1);
    await operator.setQuota("t1", { maxEntries: 5 });
    const out = JSON.parse(await child(path, "write", "x", "6")) as { ok: number; refused: number };
    expect(out).toMatchObject({ ok: 4, refused: 2 });
    expect(await ws.quota()).toMatchObject({ entries: 5 });
    await expect(ws.artifacts.save("more", 1)).rejects.toBeInstanceOf(QuotaExceededError);
    await ws.artifacts.delete("mine");
    await expectAgrees(ws);
    await operator.close();
  }, 60_000);
});

describe("quotas on file: two store objects of one file (each its own lock holder and replay)", () => {
  it("writing at once, they never store more than maxEntries, and each counts the other's writes", async () => {
    const path = fresh();
    const stores = [new FileStore(path), new FileStore(path)];
    for (const store of stores) await store.open();
    const [a, b] = stores.map((store) => createStorage(store, { root: "q", workspaceId: null })) as [
      WorkspaceStorage,
      WorkspaceStorage,
    ];
    await a.setQuota("t1", { maxEntries: 40, maxBytes: 1_000_000 });
    const writes = Array.from({ length: 100 }, (_, i) =>
      (i % 2 === 0 ? a : b).withWorkspace("t1").artifacts.save(`n${i}`, { i }),
    );
    const results = await Promise.allSettled(writes);
    const refused = results.filter((r) => r.status === "rejected");
    expect(refused.every((r) => r.reason instanceof QuotaExceededError)).toBe(true);
    expect(results.length - refused.length).toBe(40);
    for (const s of [a, b]) {
      expect(await s.withWorkspace("t1").quota()).toMatchObject({ entries: 40 });
      await expectAgrees(s.withWorkspace("t1"));
    }
    await b.setQuota("t1", null);
    await a.withWorkspace("t1").artifacts.save("after", 1);
    expect(await a.withWorkspace("t1").quota()).toMatchObject({ limit: null, entries: 41 });
    for (const store of stores) await store.close();
  });
});

describe("quotas on file: the limit lives in the file", () => {
  it("survives reopening and compaction, kept beside the entries, never among them", async () => {
    const path = fresh();
    const operator = await openStorage({ url: `file:${path}`, root: "q", workspaceId: null });
    await operator.withWorkspace("t1").collection("notes").set("a", 1);
    await operator.setQuota("t1", { maxEntries: 7, maxBytes: 900 });
    // In the log: an op readers from before quotas take for the delete of a key that never exists.
    const log = readFileSync(`${path}.log`);
    const ops = parseRecords(path, log, 0)
      .payloads.slice(1)
      .flatMap((payload) => JSON.parse(payload.toString()) as unknown[][]);
    const quotaOps = ops.filter((op) => op[0] === QUOTA_KEY);
    expect(quotaOps).toEqual([[QUOTA_KEY, { base: "q:ws:t1", quota: { maxEntries: 7, maxBytes: 900 } }, 0]]);
    expect(QUOTA_KEY).not.toContain(":");
    const backend = await openFileBackend(path);
    await (backend.store as FileStore).compact();
    await backend.close();
    await operator.close();
    const doc = JSON.parse(readFileSync(path, "utf8")) as { quotas: unknown; entries: unknown[][] };
    expect(doc.quotas).toEqual({ "q:ws:t1": { maxEntries: 7, maxBytes: 900 } });
    // Bookkeeping (registries) aside, the only entry is the one written: the quota is not one.
    expect(doc.entries.map((entry) => entry[0]).filter((key) => !String(key).includes("#"))).toEqual([
      "q:ws:t1:notes:a",
    ]);
    const again = await openStorage({ url: `file:${path}`, root: "q", workspaceId: "t1" });
    expect(await again.quota()).toMatchObject({ limit: { maxEntries: 7, maxBytes: 900 }, entries: 1 });
    await again.close();
  });

  it("opens a file written before quotas, and takes a quota on it", async () => {
    const path = fresh();
    // A version-2 snapshot as 0.x wrote it (no quotas field), no log yet.
    const entries = [
      ["q:ws:t1:#collections:notes", "1", null, 20],
      ["q:ws:t1:notes:a", '{"value":1}', null, 13],
    ];
    writeFileSync(path, JSON.stringify({ format: "keyv-workspaces/file", version: 2, generation: 1, entries }));
    const operator = await openStorage({ url: `file:${path}`, root: "q", workspaceId: null });
    const ws = operator.withWorkspace("t1");
    expect(await ws.collection("notes").get("a")).toBe(1);
    expect(await ws.quota()).toMatchObject({ limit: null, entries: 1 });
    await operator.setQuota("t1", { maxEntries: 1 });
    await expect(ws.collection("notes").set("b", 2)).rejects.toBeInstanceOf(QuotaExceededError);
    await operator.close();
  });

  it("counts a version-1 file's workspace as stats() does", async () => {
    const path = fresh();
    copyFileSync(v1Fixture, path);
    const operator = await openStorage({ url: `file:${path}`, root: "app", workspaceId: null });
    await operator.setQuota("alpha", { maxEntries: 100 });
    await expectAgrees(operator.withWorkspace("alpha"));
    await operator.close();
  });

  it("refuses a file whose quotas are malformed, as it refuses any damage", async () => {
    const path = fresh();
    writeFileSync(
      path,
      JSON.stringify({
        format: "keyv-workspaces/file",
        version: 2,
        generation: 1,
        quotas: { x: { maxEntries: 0 } },
        entries: [],
      }),
    );
    await expect(openStorage({ url: `file:${path}`, root: "q", workspaceId: null })).rejects.toMatchObject({
      code: "ERR_STORE_CORRUPT",
    });
  });
});
