import { describe, expect, it } from "vitest";
import { type ExportRecord, openStorage, type WorkspaceStorage } from "../../lib/index.js";
import { BATCH } from "../../lib/lifecycle/stats.js";
import { BACKENDS, perTest } from "../support/backends.js";
import { keysUnder, rawRedis } from "../support/env.js";
import { rawKeys } from "../support/model.js";

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** One of everything a workspace can hold. */
async function fill(s: WorkspaceStorage, tag: string): Promise<void> {
  await s.artifacts.save("report", { tag, n: [1, 2] }, { description: `about ${tag}`, metadata: { k: tag } });
  await s.artifacts.save("blob", new Uint8Array([0, 1, 2, 255]), { description: "bytes" });
  await s.workflows.add({ name: "summarise", source: "print(1)", description: `summarise the ${tag} report` });
  await s.vectors.upsert("v1", [1, 0, 0], { tag });
  await s.vectors.upsert("v2", [0.5, 0.5, 0]);
  await s.collection("notes").set("n1", { text: ":colon", bytes: Buffer.from("hi") });
  await s.collection("notes").set("ttl", "soon gone", 60_000);
}

async function snapshot(s: WorkspaceStorage) {
  return {
    artifacts: await s.artifacts.list(),
    report: await s.artifacts.load("report"),
    blob: await s.artifacts.load("blob"),
    workflows: await s.workflows.list(),
    search: await s.workflows.search("summarise the report"),
    vectors: await s.vectors.search([1, 0.1, 0], { k: 5 }),
    v1: await s.vectors.get("v1"),
    n1: await s.collection("notes").get("n1"),
    ttl: await s.collection("notes").get("ttl"),
  };
}

describe.each(BACKENDS)("workspace lifecycle on $name", (backend) => {
  const { newRoot, track } = perTest(backend, `lc${backend.name}`);
  const open = (root: string, workspaceId?: string | null) =>
    track(openStorage({ url: backend.url(root), root, workspaceId }));

  it("lists the workspaces written to, sorted, and forgets a dropped one", async () => {
    const root = newRoot();
    const legacy = await open(root, null);
    expect(await legacy.listWorkspaces()).toEqual([]);
    await (await open(root, "zeta")).collection("c").set("k", 1);
    await (await open(root, "alpha")).artifacts.save("a", 1);
    await (await open(root, "mid")).vectors.upsert("v", [1, 2]);
    await legacy.artifacts.save("legacy", 1);
    // Reads and shared collections register nothing.
    await (await open(root, "reader")).artifacts.list();
    await (await open(root, "depsonly")).collection("deps").set("x", 1);
    expect(await legacy.listWorkspaces()).toEqual(["alpha", "mid", "zeta"]);
    await legacy.withWorkspace("mid").dropWorkspace();
    expect(await legacy.listWorkspaces()).toEqual(["alpha", "zeta"]);
    // A write after the drop registers again (this process forgot its registration).
    await legacy.withWorkspace("mid").artifacts.save("again", 1);
    expect(await legacy.listWorkspaces()).toEqual(["alpha", "mid", "zeta"]);
  });

  it("counts entries and bytes per collection of the scope", async () => {
    const root = newRoot();
    const a = await open(root, "a");
    expect(await a.stats()).toEqual({});
    await a.collection("notes").set("x", "12345");
    await a.collection("notes").set("y", "é");
    await a.artifacts.save("r", { a: 1 });
    await a.deps.add("lodash@4");
    const stats = await a.stats();
    expect(Object.keys(stats)).toEqual(["artifacts", "notes"]);
    // Stored values are Keyv envelopes: {"value":"12345"} is 17 bytes, {"value":"é"} 14 (é is 2 in UTF-8).
    expect(stats.notes).toEqual({ entries: 2, bytes: 17 + 14 });
    expect(stats.artifacts?.entries).toBe(1);
    const legacy = await open(root, null);
    expect(Object.keys(await legacy.stats())).toEqual(["deps"]);
  });

  it("drops every key of one workspace and nothing of the others", async () => {
    const root = newRoot();
    const a = await open(root, "a");
    const ab = await open(root, "ab");
    const legacy = await open(root, null);
    await fill(a, "a");
    await fill(ab, "ab");
    await legacy.artifacts.save("old", 1);
    await a.deps.add("zod@4");
    const before = await snapshot(ab);
    expect(await a.dropWorkspace()).toBe(2 + 1 + 1 + 2 + 2);
    expect(await a.stats()).toEqual({});
    expect(await a.artifacts.list()).toEqual([]);
    expect(await a.vectors.search([1, 0, 0])).toEqual([]);
    expect(await a.workflows.search("summarise the a report")).toEqual([]);
    expect(await snapshot(ab)).toEqual(before);
    expect(await legacy.artifacts.load("old")).toBe(1);
    expect(await legacy.deps.list()).toEqual(["zod@4"]);
    expect(await legacy.listWorkspaces()).toEqual(["ab"]);
    expect(await a.dropWorkspace()).toBe(0);
    await a.close();
    const raw = await rawKeys(backend.name, backend.url(root), root);
    expect(raw.filter((key) => key.startsWith(`${root}:ws:a:`))).toEqual([]);
    expect(raw).not.toContain(`${root}#workspaces:a`);
    expect(raw.filter((key) => key.startsWith(`${root}:ws:ab:`)).length).toBeGreaterThan(0);
    if (backend.name === "redis") {
      const client = await rawRedis();
      try {
        expect(await keysUnder(client, `${root}:ws:a:`)).toEqual([]);
        expect((await keysUnder(client, `${root}:ws:ab:`)).length).toBeGreaterThan(0);
      } finally {
        await client.quit();
      }
    }
    await expect(legacy.dropWorkspace()).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
  });

  it("export → drop → import gives every artifact, workflow, vector and entry back", async () => {
    const root = newRoot();
    const a = await open(root, "a");
    await fill(a, "a");
    const before = await snapshot(a);
    const records = await collect(a.exportWorkspace());
    expect(records.length).toBe(2 + 1 + 1 + 2 + 2);
    const json = records.map((r) => JSON.parse(JSON.stringify(r)) as ExportRecord);
    expect(json.find((r) => r.name === "ttl")?.expiresAt).toBeGreaterThan(Date.now());
    expect(JSON.stringify(json.find((r) => r.name === "blob")?.value)).toContain("AAEC/w==");
    await a.dropWorkspace();
    // A fresh storage: nothing cached from before the drop.
    const fresh = await open(root, "a");
    expect(await fresh.importWorkspace(json)).toBe(records.length);
    expect(await snapshot(fresh)).toEqual(before);
    expect(await snapshot(a)).toEqual(before);
    expect(await a.listWorkspaces()).toEqual(["a"]);
  });

  it("merges by default and replaces with replace: true", async () => {
    const root = newRoot();
    const a = await open(root, "a");
    await a.collection("notes").set("keep", 1);
    const records: ExportRecord[] = [{ collection: "notes", name: "new", value: 2 }];
    expect(await a.importWorkspace(records)).toBe(1);
    expect(await a.collection("notes").get("keep")).toBe(1);
    expect(await a.collection("notes").get("new")).toBe(2);
    expect(await a.importWorkspace(records, { replace: true })).toBe(1);
    expect(await a.collection("notes").get("keep")).toBeUndefined();
    expect(await a.collection("notes").get("new")).toBe(2);
  });

  it("imports in order across batches written while the next is read: the last record of a name wins", async () => {
    const root = newRoot();
    const a = await open(root, "a");
    // Three batches of BATCH records and a bad one at the end, with one name in the first and the third.
    const records: ExportRecord[] = [];
    for (let i = 0; i < 3 * BATCH; i++) records.push({ collection: "notes", name: `n${i}`, value: i });
    records[7] = { collection: "notes", name: "twice", value: "first" };
    records[2 * BATCH + 7] = { collection: "notes", name: "twice", value: "last" };
    // Names in two batches next to each other (two batches may be in flight at once).
    const ADJACENT = 50;
    for (let i = 0; i < ADJACENT; i++) {
      records[BATCH - ADJACENT - 10 + i] = { collection: "notes", name: `adjacent${i}`, value: "first" };
      records[BATCH + 10 + i] = { collection: "notes", name: `adjacent${i}`, value: "last" };
    }
    const progress: number[] = [];
    expect(await a.importWorkspace(records, { onProgress: (n) => progress.push(n) })).toBe(3 * BATCH);
    expect(await a.collection("notes").get("twice")).toBe("last");
    const adjacent = Array.from({ length: ADJACENT }, (_, i) => `adjacent${i}`);
    expect(await a.collection("notes").getMany(adjacent)).toEqual(adjacent.map(() => "last"));
    expect(progress.at(-1)).toBe(3 * BATCH);
    expect(progress).toEqual([...progress].sort((x, y) => x - y));
    // A bad record after full batches: every batch before it is stored before the error surfaces.
    const more = records.map((r) => ({ ...r, collection: "more" }));
    more.push({ collection: "more", name: "", value: 0 });
    await expect(a.importWorkspace(more)).rejects.toMatchObject({ code: "ERR_INVALID_VALUE" });
    expect((await a.stats()).more?.entries).toBe(3 * BATCH - 1 - ADJACENT);
  });

  it("refuses a malformed record by its number and writes nothing of it", async () => {
    const root = newRoot();
    const a = await open(root, "a");
    const records = [
      { collection: "notes", name: "ok", value: 1 },
      { collection: "notes", name: "", value: 2 },
      { collection: "notes", name: "after", value: 3 },
    ] as ExportRecord[];
    await expect(a.importWorkspace(records)).rejects.toMatchObject({
      code: "ERR_INVALID_VALUE",
      message: expect.stringMatching(/^record 2: /),
    });
    expect(await a.collection("notes").get("ok")).toBe(1);
    expect(await a.collection("notes").get("after")).toBeUndefined();
    for (const bad of [
      { collection: "deps", name: "x", value: 1 },
      { collection: "Bad", name: "x", value: 1 },
      { collection: "notes", name: "x" },
      { collection: "notes", name: "x", value: 1, extra: true },
      { collection: "notes", name: "x", value: 1, expiresAt: "soon" },
    ]) {
      await expect(a.importWorkspace([bad as ExportRecord])).rejects.toMatchObject({ code: "ERR_INVALID_VALUE" });
    }
    expect(Object.keys(await a.stats())).toEqual(["notes"]);
  });

  it("migrates legacy data into a workspace, leaves deps, and is idempotent", async () => {
    const root = newRoot();
    const legacy = await open(root, null);
    await fill(legacy, "legacy");
    await legacy.deps.add("zod@4");
    const before = await snapshot(legacy);
    expect(await legacy.migrateLegacy({ to: "moved", dryRun: true })).toEqual({ entries: 8 });
    expect(await snapshot(legacy)).toEqual(before);
    expect(await legacy.listWorkspaces()).toEqual([]);
    expect(await legacy.migrateLegacy({ to: "moved" })).toEqual({ entries: 8 });
    const moved = await open(root, "moved");
    expect(await snapshot(moved)).toEqual(before);
    expect(await legacy.artifacts.list()).toEqual([]);
    expect(await legacy.deps.list()).toEqual(["zod@4"]);
    expect(await legacy.listWorkspaces()).toEqual(["moved"]);
    expect(await legacy.migrateLegacy({ to: "moved" })).toEqual({ entries: 0 });
    await expect(moved.migrateLegacy({ to: "x" })).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(legacy.migrateLegacy({ to: "bad/id" })).rejects.toMatchObject({ code: "ERR_INVALID_WORKSPACE_ID" });
  });
});

describe("lifecycle calls on a closed storage", () => {
  it("reject with ERR_STORAGE_CLOSED and register nothing", async () => {
    const map = new Map<string, unknown>();
    const { createStorage } = await import("../../lib/index.js");
    const owner = createStorage(map, { root: "app" });
    const view = owner.withWorkspace("a");
    await owner.close();
    const closed = { code: "ERR_STORAGE_CLOSED" };
    await expect(owner.listWorkspaces()).rejects.toMatchObject(closed);
    await expect(view.stats()).rejects.toMatchObject(closed);
    await expect(view.dropWorkspace()).rejects.toMatchObject(closed);
    await expect(collect(view.exportWorkspace())).rejects.toMatchObject(closed);
    await expect(view.importWorkspace([{ collection: "notes", name: "n", value: 1 }])).rejects.toMatchObject(closed);
    await expect(owner.migrateLegacy({ to: "a" })).rejects.toMatchObject(closed);
    await expect(view.collection("notes").set("k", 1)).rejects.toMatchObject(closed);
    expect(map.size).toBe(0);
  });
});
