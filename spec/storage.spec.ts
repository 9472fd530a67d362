import type { Keyv } from "keyv";
import { describe, expect, expectTypeOf, it } from "vitest";
import { createStorage, openStorage } from "../lib/index.js";
import { BACKENDS, perTest } from "./support/backends.js";

const TRICKY_NAMES = [
  "a:b",
  "x/y",
  "star*",
  "q?",
  "br[ack]et",
  "pct%",
  "under_score",
  "ünï·cødé",
  "emoji🙂",
  "back\\slash",
  "sp ace",
  ":lead",
  "trail:",
];

describe.each(BACKENDS)("storage on $name", (backend) => {
  const { newRoot, track } = perTest(backend);
  const open = (root: string, workspaceId?: string | null, extra: Record<string, unknown> = {}) =>
    track(openStorage({ url: backend.url(root), root, workspaceId, ...extra }));

  it("keeps workspaces, sibling ids and unscoped data apart, both ways", async () => {
    const root = newRoot();
    const a = await open(root, "a");
    const ab = await open(root, "ab");
    const legacy = await open(root, null);
    await a.artifacts.save("report", { from: "a" });
    await ab.artifacts.save("report", { from: "ab" });
    await legacy.artifacts.save("report", { from: "legacy" });
    await a.collection("notes").set("n", "a-note");
    await a.vectors.upsert("v", [1, 0]);
    await a.workflows.add({ name: "summarise", source: "print(1)", description: "summarise a report" });

    expect(await a.artifacts.load("report")).toEqual({ from: "a" });
    expect(await ab.artifacts.load("report")).toEqual({ from: "ab" });
    expect(await legacy.artifacts.load("report")).toEqual({ from: "legacy" });
    for (const other of [ab, legacy]) {
      expect((await other.artifacts.list()).map((i) => i.name)).toEqual(["report"]);
      expect(await other.collection("notes").get("n")).toBeUndefined();
      expect(await other.vectors.count()).toBe(0);
      expect(await other.workflows.list()).toEqual([]);
      expect(await other.workflows.search("summarise a report")).toEqual([]);
    }
    expect((await a.workflows.search("summarise a report")).map((w) => w.name)).toEqual(["summarise"]);
  });

  it("shares deps between every workspace and the unscoped layout", async () => {
    const root = newRoot();
    const a = await open(root, "a");
    const b = await open(root, "b");
    const legacy = await open(root, null);
    await a.deps.add("lodash@^4.17.0");
    await b.deps.add("zod@4");
    expect(await legacy.deps.list()).toEqual(["lodash@^4.17.0", "zod@4"]);
    expect(a.keyspace.prefix("deps")).toBe(`${root}:deps`);
    await legacy.deps.add("lodash@^3");
    expect(await b.deps.list()).toEqual(["lodash@^3", "zod@4"]);
    expect(await a.deps.has("lodash")).toBe(true);
    expect(await a.deps.remove("lodash@^9")).toBe(true);
    expect(await b.deps.list()).toEqual(["zod@4"]);
  });

  it("lets two separately opened storages of one workspace see each other's writes at once", async () => {
    const root = newRoot();
    const first = await open(root, "team");
    const second = await open(root, "team");
    await first.artifacts.save("shared", [1, 2, 3]);
    expect(await second.artifacts.load("shared")).toEqual([1, 2, 3]);
    await second.artifacts.delete("shared");
    expect(await first.artifacts.has("shared")).toBe(false);
    await second.workflows.add({ name: "fetch_data", source: "x", description: "download the data set" });
    expect((await first.workflows.search("download data"))[0]?.name).toBe("fetch_data");
  });

  it("round-trips names with punctuation and non-ASCII, and lists them exactly", async () => {
    const root = newRoot();
    const s = await open(root, "w");
    for (const name of TRICKY_NAMES) await s.artifacts.save(name, { name });
    for (const name of TRICKY_NAMES) expect(await s.artifacts.load(name)).toEqual({ name });
    expect((await s.artifacts.list()).map((i) => i.name)).toEqual([...TRICKY_NAMES].sort());
    const iterated: string[] = [];
    for await (const [key] of s.collection("artifacts").iterator!(undefined)) iterated.push(key as string);
    expect(iterated.sort()).toEqual([...TRICKY_NAMES].sort());
  });

  it("clear() of one scope leaves every other scope intact", async () => {
    const root = newRoot();
    const a = await open(root, "a");
    const ab = a.withWorkspace("ab");
    const legacy = a.withWorkspace(null);
    for (const s of [a, ab, legacy]) {
      await s.artifacts.save("x", 1);
      await s.collection("workflows").set("raw", 1);
    }
    await a.deps.add("left-pad@1");
    await a.collection("artifacts").clear();
    expect(await a.artifacts.list()).toEqual([]);
    expect(await a.collection("workflows").get("raw")).toBe(1);
    expect(await ab.artifacts.load("x")).toBe(1);
    expect(await legacy.artifacts.load("x")).toBe(1);
    expect(await a.deps.list()).toEqual(["left-pad@1"]);
  });

  it("rebuilds the same scope from its bootstrap config", async () => {
    const root = newRoot();
    const s = await open(root, "boot", { unscoped: ["deps", "vectors"] });
    await s.artifacts.save("a", "b");
    const config = s.toBootstrapConfig();
    expect(JSON.parse(JSON.stringify(config))).toEqual(config);
    expect(config).toMatchObject({ root, workspaceId: "boot", unscoped: ["deps", "vectors"] });
    const again = await track(openStorage(config));
    expect(await again.artifacts.load("a")).toBe("b");
    expect(again.keyspace.prefix("vectors")).toBe(`${root}:vectors`);
    expect(s.withWorkspace(null).toBootstrapConfig().workspaceId).toBeNull();
  });

  it("rejects on views after the owning storage closes", async () => {
    const root = newRoot();
    const owner = await openStorage({ url: backend.url(root), root, workspaceId: "a" });
    const view = owner.withWorkspace("b");
    await view.artifacts.save("x", 1);
    await owner.close();
    await expect(view.artifacts.load("x")).rejects.toMatchObject({ code: "ERR_STORAGE_CLOSED" });
    await expect(owner.collection("c").set("k", 1)).rejects.toMatchObject({ code: "ERR_STORAGE_CLOSED" });
    expect(() => owner.withWorkspace("c")).toThrow(expect.objectContaining({ code: "ERR_STORAGE_CLOSED" }));
    await owner.close();
    // The data outlives the storage object.
    const again = await open(root, "b");
    expect(await again.artifacts.load("x")).toBe(1);
  });

  it("refuses bad input with typed errors and keeps what was stored", async () => {
    const root = newRoot();
    const s = await open(root, "w");
    await s.artifacts.save("keep", { ok: true });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const bad: Array<[() => Promise<unknown>, string]> = [
      [() => s.artifacts.save("", 1), "ERR_INVALID_NAME"],
      [() => s.artifacts.save("x".repeat(513), 1), "ERR_INVALID_NAME"],
      [() => s.artifacts.save("ctl\u0001", 1), "ERR_INVALID_NAME"],
      [() => s.artifacts.save("keep", cyclic), "ERR_INVALID_VALUE"],
      [() => s.artifacts.save("keep", { f: () => 1 }), "ERR_INVALID_VALUE"],
      [() => s.artifacts.save("keep", 10n), "ERR_INVALID_VALUE"],
      [() => s.artifacts.save("keep", { n: Number.NaN }), "ERR_INVALID_VALUE"],
      [() => s.artifacts.save("keep", new Date()), "ERR_INVALID_VALUE"],
      [() => s.artifacts.load("missing"), "ERR_ARTIFACT_NOT_FOUND"],
      [() => s.workflows.add({ name: "not-an-identifier", source: "", description: "" }), "ERR_INVALID_NAME"],
      [() => s.vectors.upsert("v", []), "ERR_INVALID_VECTOR"],
      [() => s.vectors.upsert("v", [1, Number.NaN]), "ERR_INVALID_VECTOR"],
      [() => s.deps.add("has space"), "ERR_INVALID_VALUE"],
    ];
    for (const [call, code] of bad) await expect(call()).rejects.toMatchObject({ code });
    expect(() => s.collection("Bad")).toThrow(expect.objectContaining({ code: "ERR_INVALID_COLLECTION" }));
    expect(() => s.withWorkspace("../escape")).toThrow(expect.objectContaining({ code: "ERR_INVALID_WORKSPACE_ID" }));
    expect(await s.artifacts.load("keep")).toEqual({ ok: true });
    expect((await s.artifacts.list()).map((i) => i.name)).toEqual(["keep"]);
  });
});

describe("collection types", () => {
  it("collection<T>() is a Keyv<T>", () => {
    const s = createStorage(new Map<string, string>(), { root: "types" });
    expectTypeOf(s.collection<{ n: number }>("c")).toEqualTypeOf<Keyv<{ n: number }>>();
    expectTypeOf(s.collection("c")).toEqualTypeOf<Keyv<unknown>>();
  });
});
