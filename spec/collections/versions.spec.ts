import { describe, expect, it } from "vitest";
import { createStorage, openStorage } from "../../lib/index.js";
import { BACKENDS, perTest, REDIS_HASH } from "../support/backends.js";

describe.each([...BACKENDS, REDIS_HASH])("versions and conditional writes on $name", (backend) => {
  const { newRoot, track } = perTest(backend, `ver${backend.name}`);
  const open = (root: string, workspaceId = "w") =>
    track(openStorage({ ...backend.config, url: backend.url(root), root, workspaceId }));

  it("gives every write of an artifact a new version, the same one in every storage", async () => {
    const root = newRoot();
    const a = await open(root);
    const b = await open(root);
    const first = await a.artifacts.save("plan", { step: 1 });
    expect(typeof first.version).toBe("string");
    expect((await b.artifacts.info("plan"))?.version).toBe(first.version);
    const second = await b.artifacts.save("plan", { step: 2 });
    expect(second.version).not.toBe(first.version);
    expect(second.createdAt).toBe(first.createdAt);
    expect((await a.artifacts.list()).map((i) => i.version)).toEqual([second.version]);
  });

  it("writes with ifVersion only over that version, and with null only when absent", async () => {
    const s = await open(newRoot());
    const created = await s.artifacts.save("plan", { step: 1 }, { ifVersion: null });
    await expect(s.artifacts.save("plan", { step: 9 }, { ifVersion: null })).rejects.toMatchObject({
      code: "ERR_CONFLICT",
      current: created.version,
    });
    const updated = await s.artifacts.save("plan", { step: 2 }, { ifVersion: created.version });
    await expect(s.artifacts.save("plan", { step: 3 }, { ifVersion: created.version })).rejects.toMatchObject({
      code: "ERR_CONFLICT",
      current: updated.version,
    });
    await expect(s.artifacts.save("other", 1, { ifVersion: updated.version })).rejects.toMatchObject({
      code: "ERR_CONFLICT",
      current: null,
    });
    expect(await s.artifacts.load("plan")).toEqual({ step: 2 });
    expect(await s.artifacts.has("other")).toBe(false);
    await expect(s.artifacts.delete("plan", { ifVersion: created.version })).rejects.toMatchObject({
      code: "ERR_CONFLICT",
    });
    expect(await s.artifacts.delete("plan", { ifVersion: updated.version })).toBe(true);
    expect(await s.artifacts.has("plan")).toBe(false);
  });

  it("lets exactly one of many concurrent writers with the same ifVersion win", async () => {
    const root = newRoot();
    const writers = await Promise.all(Array.from({ length: 4 }, () => open(root)));
    const base = await writers[0]!.artifacts.save("plan", { by: "none" });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        writers[i % writers.length]!.artifacts.save("plan", { by: i }, { ifVersion: base.version }),
      ),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toMatchObject({ code: "ERR_CONFLICT" });
    const winner = (won[0] as PromiseFulfilledResult<{ version: string }>).value;
    expect((await writers[1]!.artifacts.info("plan"))?.version).toBe(winner.version);
  });

  it("versions workflows and writes them conditionally", async () => {
    const s = await open(newRoot());
    const wf = { name: "deploy", source: "run()", description: "ship it" };
    const first = await s.workflows.add(wf, { ifVersion: null });
    await expect(s.workflows.add({ ...wf, source: "x" }, { ifVersion: null })).rejects.toMatchObject({
      code: "ERR_CONFLICT",
      current: first.version,
    });
    const second = await s.workflows.add({ ...wf, source: "run(2)" }, { ifVersion: first.version });
    expect(second.version).not.toBe(first.version);
    expect((await s.workflows.get("deploy"))?.version).toBe(second.version);
    expect((await s.workflows.get("deploy"))?.source).toBe("run(2)");
    expect((await s.workflows.search("ship"))[0]?.version).toBe(second.version);
  });

  it("refuses a bad ifVersion before any I/O", async () => {
    const s = await open(newRoot());
    await expect(s.artifacts.save("a", 1, { ifVersion: 3 as unknown as string })).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
    });
    await expect(s.artifacts.delete("a", { ifVersion: null as unknown as string })).rejects.toMatchObject({
      code: "ERR_INVALID_ARGUMENT",
    });
    expect(await s.artifacts.has("a")).toBe(false);
  });

  it("saves and loads many artifacts at once, all or nothing", async () => {
    const s = await open(newRoot());
    const old = await s.artifacts.save("b", "old");
    const infos = await s.artifacts.saveMany([
      { name: "a", data: { n: 1 }, description: "first" },
      { name: "b", data: "new" },
      { name: "c", data: new Uint8Array([1, 2, 3]) },
    ]);
    expect(infos.map((i) => i.name)).toEqual(["a", "b", "c"]);
    expect(infos[1]!.createdAt).toBe(old.createdAt);
    expect(new Set(infos.map((i) => i.version)).size).toBe(3);
    expect(await s.artifacts.loadMany(["c", "missing", "a", "b"])).toEqual([
      new Uint8Array([1, 2, 3]),
      undefined,
      { n: 1 },
      "new",
    ]);
    for (const bad of [
      [
        { name: "d", data: 1 },
        { name: "", data: 1 },
      ],
      [
        { name: "d", data: 1 },
        { name: "e", data: undefined },
      ],
      [
        { name: "d", data: 1 },
        { name: "d", data: 2 },
      ],
      [{ name: "d", data: 1 }, null],
    ]) {
      await expect(s.artifacts.saveMany(bad as never)).rejects.toBeInstanceOf(Error);
    }
    expect((await s.artifacts.list()).map((i) => i.name)).toEqual(["a", "b", "c"]);
    expect(await s.artifacts.saveMany([])).toEqual([]);
    expect(await s.artifacts.loadMany([])).toEqual([]);
  });
});

describe("versions of entries written before versions existed", () => {
  it("are derived from the update time, and a conditional write over one works", async () => {
    const map = new Map<string, unknown>();
    const s = createStorage(map, { root: "legacy", workspaceId: "w" });
    const legacy = { name: "old", description: "", size: 1, kind: "json", createdAt: "2025-01-01T00:00:00.000Z" };
    const record = { ...legacy, updatedAt: "2025-01-02T00:00:00.000Z", metadata: {}, data: 1 };
    await s.collection("artifacts").set("old", record);
    const info = await s.artifacts.info("old");
    expect(info?.version).toBe("legacy.2025-01-02T00:00:00.000Z");
    const next = await s.artifacts.save("old", 2, { ifVersion: info!.version });
    expect(next.createdAt).toBe(legacy.createdAt);
    expect(next.version).not.toBe(info!.version);
  });
});
