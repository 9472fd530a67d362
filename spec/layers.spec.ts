import { describe, expect, it } from "vitest";
import type { MapCore } from "../lib/backends/map.js";
import { createStorage, openStorage } from "../lib/index.js";
import { driverFor } from "../lib/scope.js";
import { BACKENDS, perTest } from "./support/backends.js";
import { captureWarnings } from "./support/warnings.js";

async function entries(iterable: AsyncIterable<[string, unknown]> | undefined): Promise<Array<[string, unknown]>> {
  const out: Array<[string, unknown]> = [];
  for await (const entry of iterable ?? []) out.push(entry);
  return out.sort(([a], [b]) => (a < b ? -1 : 1));
}

describe.each(BACKENDS)("a nested root on $name", (backend) => {
  const { newRoot, track } = perTest(backend, `nest${backend.name}`);

  it("is never listed, read or cleared through the outer root's collection of the same name", async () => {
    const root = newRoot();
    const url = backend.url(root);
    const open = async () => ({
      acme: await track(openStorage({ url, root: `${root}:crm`, workspaceId: "acme" })),
      outer: await track(openStorage({ url, root, workspaceId: null })),
    });
    let { acme, outer } = await open();
    await acme.artifacts.save("report", { secret: 1 });
    await acme.collection("notes").set("k", "v");
    await outer.collection("crm").set("own", "mine");
    const crm = () => outer.collection<string>("crm");
    expect(await entries(crm().iterator?.(undefined))).toEqual([["own", "mine"]]);
    await crm().clear();
    expect(await entries(crm().iterator?.(undefined))).toEqual([]);
    expect(await acme.artifacts.load("report")).toEqual({ secret: 1 });
    // Once more from what is stored (the file store reloads from disk): the attribution is kept.
    await acme.close();
    await outer.close();
    ({ acme, outer } = await open());
    expect(await entries(crm().iterator?.(undefined))).toEqual([]);
    expect((await acme.artifacts.list()).map((a) => a.name)).toEqual(["report"]);
    expect(await acme.collection("notes").get("k")).toBe("v");
  });
});

describe("state per prefix on a Map", () => {
  const core = (map: Map<string, unknown>) => (driverFor(map) as unknown as { core: MapCore }).core;

  it("is created by writes only and goes away when the prefix is empty", async () => {
    const map = new Map<string, unknown>();
    const storage = createStorage(map, { root: "st" });
    for (let i = 0; i < 2000; i++) {
      const ws = storage.withWorkspace(`w${i}`);
      await ws.artifacts.delete("nothing");
      await ws.artifacts.list();
      await ws.collection("c").delete("k");
      await ws.vectors.search([1, 0]);
      await ws.collection("c").clear();
    }
    expect(core(map).prefixCount).toBe(0);
    const a = storage.withWorkspace("a");
    await a.artifacts.save("x", 1);
    await a.vectors.upsert("v", [1, 0]);
    // The two data prefixes, and the two registries a workspace's first write adds (lib/lifecycle/registry.ts).
    expect(core(map).prefixCount).toBe(4);
    await a.artifacts.delete("x");
    await a.vectors.delete("v");
    // Emptied data keeps its registry entries (listWorkspaces may name an emptied workspace) until a drop.
    expect(core(map).prefixCount).toBe(2);
    await a.dropWorkspace();
    expect(core(map).prefixCount).toBe(0);
    expect(map.size).toBe(0);
  });

  it("lists a prefix without walking the other keys of the Map", async () => {
    let walks = 0;
    class CountingMap extends Map<string, unknown> {
      override keys() {
        walks++;
        return super.keys();
      }
      override entries() {
        walks++;
        return super.entries();
      }
      override [Symbol.iterator]() {
        walks++;
        return super[Symbol.iterator]();
      }
    }
    const map = new CountingMap();
    const storage = createStorage(map, { root: "walk" });
    const big = storage.withWorkspace("big");
    for (let i = 0; i < 2000; i++) await big.collection("c").set(`k${i}`, i);
    walks = 0;
    for (let i = 0; i < 300; i++) expect(await storage.withWorkspace(`w${i}`).artifacts.list()).toEqual([]);
    expect((await big.collection("c").get("k5")) as number).toBe(5);
    expect(walks).toBe(0);
  });
});

describe("an entry that cannot be decoded", () => {
  // Written behind the library's back (or by a version without the depth limit).
  const deep = (levels: number) => `{"value":${"[".repeat(levels)}${"]".repeat(levels)}}`;

  it("is skipped, with one warning, by listing, iteration and search; reading it fails typed", async () => {
    const map = new Map<string, unknown>();
    const s = createStorage(map, { root: "bad", workspaceId: "w" });
    await s.artifacts.save("good", { ok: true });
    await s.collection("notes").set("good", "yes");
    await s.workflows.add({ name: "good", source: "", description: "fine workflow" });
    for (const c of ["artifacts", "notes", "workflows"]) {
      const store = driverFor(map).scope(`bad:ws:w:${c}`);
      await store.set("deep", deep(5000));
      await store.set("text", "not json at all");
    }
    const warnings = captureWarnings("KVWS_UNREADABLE_ENTRY");
    try {
      expect((await s.artifacts.list()).map((a) => a.name)).toEqual(["good"]);
      expect(await entries(s.collection("notes").iterator?.(undefined))).toEqual([["good", "yes"]]);
      expect((await s.workflows.list()).map((w) => w.name)).toEqual(["good"]);
      expect((await s.workflows.search("fine")).map((w) => w.name)).toEqual(["good"]);
      await expect(s.artifacts.load("deep")).rejects.toMatchObject({ code: "ERR_INVALID_VALUE" });
      await expect(s.collection("notes").get("deep")).rejects.toMatchObject({ code: "ERR_INVALID_VALUE" });
      await expect(s.collection("notes").get("text")).rejects.toMatchObject({ code: "ERR_INVALID_VALUE" });
      await s.artifacts.list();
      const told = await warnings.all();
      expect(told.some((w) => w.message.includes('"deep" under "bad:ws:w:artifacts"'))).toBe(true);
      expect(told.some((w) => w.message.includes('"text" under "bad:ws:w:notes"'))).toBe(true);
      // Once per entry, however often it is met.
      expect(told.filter((w) => w.message.includes('"deep" under "bad:ws:w:artifacts"'))).toHaveLength(1);
    } finally {
      warnings.stop();
    }
  });
});

describe("a value too large for one string", () => {
  it("is refused with ValueTooLargeError through collection() and artifacts, and nothing is stored", async () => {
    const map = new Map<string, unknown>();
    const s = createStorage(map, { root: "big", workspaceId: "w" });
    const part = "x".repeat(200_000_000);
    const huge = [part, part, part];
    await expect(s.collection("c").set("huge", huge)).rejects.toMatchObject({ code: "ERR_VALUE_TOO_LARGE" });
    await expect(s.artifacts.save("huge", huge)).rejects.toMatchObject({ code: "ERR_VALUE_TOO_LARGE" });
    expect(map.size).toBe(0);
  });
});
