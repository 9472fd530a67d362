import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { type AnyStore, DRIVER, type Driver } from "../../lib/backends/driver.js";
import { mapDriver } from "../../lib/backends/map-scope.js";
import { createVectorStore, VECTOR_CACHE } from "../../lib/collections/vectors.js";
import { createStorage, openStorage, type VectorStore } from "../../lib/index.js";
import { driverFor } from "../../lib/scope.js";
import type { VectorCache } from "../../lib/vectors/cache.js";
import { jsKernel } from "../../lib/vectors/kernel.js";
import { BACKENDS, perTest } from "../support/backends.js";
import { randomVectors, referenceTopK } from "../vectors/reference.js";

const run = promisify(execFile);
const fixture = fileURLToPath(new URL("../fixtures/vector-writer.ts", import.meta.url));

/** Runs the fixture in a separate Node process; resolves with its stdout. */
async function child(config: object, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { stdout } = await run(process.execPath, ["--import", "tsx", fixture, JSON.stringify(config), ...args], {
    timeout: 30_000,
    env: { ...process.env, ...env },
  });
  return stdout;
}

const id = (i: number) => `v${String(i).padStart(4, "0")}`;
const cacheOf = (store: VectorStore) => (store as unknown as { [VECTOR_CACHE]: VectorCache })[VECTOR_CACHE];

async function fill(store: VectorStore, vectors: Float32Array[]): Promise<void> {
  // Concurrent writes let the file backend group-commit them.
  for (let i = 0; i < vectors.length; i += 200) {
    await Promise.all(vectors.slice(i, i + 200).map((v, j) => store.upsert(id(i + j), v, { i: i + j })));
  }
}

describe.each(BACKENDS)("vectors on $name", (backend) => {
  const { newRoot, track } = perTest(backend, `vec${backend.name}`);
  const config = (root: string, workspaceId = "w") => ({ url: backend.url(root), root, workspaceId });
  const open = (root: string, workspaceId = "w", vectors = {}) =>
    track(openStorage(config(root, workspaceId), { vectors }));

  it("stores vectors compactly and returns them exactly, with metadata", async () => {
    const root = newRoot();
    const s = await open(root);
    const v = Float32Array.of(0.1, -2.5, 3e-8, 1e30, 7);
    await s.vectors.upsert("a:b/c", v, { tag: "x", n: [1, 2] });
    await s.vectors.upsert("b", [1, 2, 3, 4, 5]);
    const got = await s.vectors.get("a:b/c");
    expect(got?.vector).toBeInstanceOf(Float32Array);
    expect(Array.from(got!.vector)).toEqual(Array.from(v));
    expect(got?.metadata).toEqual({ tag: "x", n: [1, 2] });
    expect(await s.vectors.get("missing")).toBeUndefined();
    expect(await s.vectors.ids()).toEqual(["a:b/c", "b"]);
    expect(await s.vectors.count()).toBe(2);
    // Stored as base64 float32 bytes, not a JSON number array.
    const raw = (await s.collection("vectors").get("a:b/c")) as { v: unknown };
    expect(raw.v).toBe(Buffer.from(v.buffer).toString("base64"));
    expect(await s.vectors.delete("b")).toBe(true);
    expect(await s.vectors.delete("b")).toBe(false);
    expect(await s.vectors.ids()).toEqual(["a:b/c"]);
  });

  it("search returns the float64-reference top-k, with metadata, for k below and above n", async () => {
    const root = newRoot();
    const s = await open(root);
    const vectors = randomVectors(300, 37, 1);
    await fill(s.vectors, vectors);
    const rows = vectors.map((v, i) => [id(i), v] as [string, Float32Array]);
    for (const [seed, k] of [
      [2, 1],
      [3, 10],
      [4, 400],
    ] as const) {
      const q = randomVectors(1, 37, seed)[0]!;
      const got = await s.vectors.search(q, { k });
      const want = referenceTopK(rows, q, k);
      expect(got.map((m) => m.id)).toEqual(want.map((m) => m.id));
      got.forEach((m, i) => {
        expect(m.score).toBeCloseTo(want[i]!.score, 5);
        expect(m.metadata).toEqual({ i: Number(m.id.slice(1)) });
      });
    }
    expect(await s.vectors.search(vectors[5]!, { k: 1 })).toMatchObject([{ id: id(5) }]);
    expect((await s.vectors.search(vectors[5]!)).length).toBe(10);
  });

  it("int8 quantisation returns the same results as exact search", async () => {
    const root = newRoot();
    const exact = await open(root);
    const quant = await open(root, "w", { quantization: "int8" });
    await fill(exact.vectors, randomVectors(600, 45, 9));
    for (let t = 0; t < 5; t++) {
      const q = randomVectors(1, 45, 70 + t)[0]!;
      expect(await quant.vectors.search(q, { k: 10 })).toEqual(await exact.vectors.search(q, { k: 10 }));
    }
  });

  it("sees its own writes and deletes on the next search", async () => {
    const s = await open(newRoot());
    await s.vectors.upsert("a", [1, 0, 0]);
    expect((await s.vectors.search([1, 0, 0])).map((m) => m.id)).toEqual(["a"]);
    await s.vectors.upsert("b", [0, 1, 0], { k: 1 });
    await s.vectors.upsert("a", [0, 0, 1]);
    expect(await s.vectors.search([0, 1, 0], { k: 1 })).toEqual([{ id: "b", score: 1, metadata: { k: 1 } }]);
    expect((await s.vectors.search([0, 0, 1], { k: 1 }))[0]?.id).toBe("a");
    await s.vectors.delete("b");
    expect((await s.vectors.search([0, 1, 0])).map((m) => m.id)).toEqual(["a"]);
    await s.vectors.delete("a");
    expect(await s.vectors.search([0, 1, 0])).toEqual([]);
    // Emptied: a new dimension is allowed.
    await s.vectors.upsert("c", [1, 2]);
    expect((await s.vectors.search([1, 2])).map((m) => m.id)).toEqual(["c"]);
  });

  it("sees writes and deletes made through another storage handle", async () => {
    const root = newRoot();
    const a = await open(root);
    const b = await open(root);
    await a.vectors.upsert("x", [1, 0]);
    expect((await a.vectors.search([0, 1])).map((m) => m.id)).toEqual(["x"]);
    await b.vectors.upsert("y", [0, 1], { by: "b" });
    expect(await a.vectors.search([0, 1], { k: 1 })).toEqual([{ id: "y", score: 1, metadata: { by: "b" } }]);
    await b.vectors.upsert("y", [-1, 0]);
    expect((await a.vectors.search([1, 0])).map((m) => m.id)).toEqual(["x", "y"]);
    await b.vectors.delete("x");
    expect((await a.vectors.search([1, 0])).map((m) => m.id)).toEqual(["y"]);
  });

  it("keeps workspaces apart", async () => {
    const root = newRoot();
    const a = await open(root, "a");
    const ab = a.withWorkspace("ab");
    await a.vectors.upsert("v", [1, 0]);
    await ab.vectors.upsert("v", [0, 1, 0]);
    expect(await a.vectors.search([1, 0])).toMatchObject([{ id: "v", score: 1 }]);
    expect(await ab.vectors.search([0, 1, 0])).toMatchObject([{ id: "v", score: 1 }]);
    expect(await a.withWorkspace("other").vectors.search([1, 0])).toEqual([]);
  });

  it("rejects bad input with typed errors and changes nothing", async () => {
    const s = await open(newRoot());
    await s.vectors.upsert("a", [1, 2, 3], { keep: true });
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => s.vectors.upsert("a", [1, 2]), "ERR_VECTOR_DIMENSIONS"],
      [() => s.vectors.upsert("b", [1, 2, 3, 4]), "ERR_VECTOR_DIMENSIONS"],
      [() => s.vectors.upsert("a", []), "ERR_INVALID_VECTOR"],
      [() => s.vectors.upsert("a", [1, Number.NaN, 3]), "ERR_INVALID_VECTOR"],
      [() => s.vectors.upsert("a", [1, Number.POSITIVE_INFINITY, 3]), "ERR_INVALID_VECTOR"],
      [() => s.vectors.upsert("a", [1, 1e39, 3]), "ERR_INVALID_VECTOR"],
      [() => s.vectors.upsert("a", [1, "2" as unknown as number, 3]), "ERR_INVALID_VECTOR"],
      [() => s.vectors.upsert("a", null as unknown as number[]), "ERR_INVALID_VECTOR"],
      [() => s.vectors.upsert("", [1, 2, 3]), "ERR_INVALID_NAME"],
      [() => s.vectors.upsert("a", [1, 2, 4], { bad: Number.NaN }), "ERR_INVALID_VALUE"],
      [() => s.vectors.search([1, 2]), "ERR_VECTOR_DIMENSIONS"],
      [() => s.vectors.search([]), "ERR_INVALID_VECTOR"],
      [() => s.vectors.search([1, Number.NaN, 3]), "ERR_INVALID_VECTOR"],
      [() => s.vectors.search([1, 2, 3], { k: 0 }), "ERR_INVALID_ARGUMENT"],
      [() => s.vectors.search([1, 2, 3], { k: -1 }), "ERR_INVALID_ARGUMENT"],
      [() => s.vectors.search([1, 2, 3], { k: 1.5 }), "ERR_INVALID_ARGUMENT"],
      [() => s.vectors.search([1, 2, 3], { k: Number.NaN }), "ERR_INVALID_ARGUMENT"],
      [() => s.vectors.search([1, 2, 3], { k: "3" as unknown as number }), "ERR_INVALID_ARGUMENT"],
    ];
    for (const [call, code] of cases) await expect(call()).rejects.toMatchObject({ code });
    expect(await s.vectors.ids()).toEqual(["a"]);
    expect(await s.vectors.get("a")).toEqual({ vector: Float32Array.of(1, 2, 3), metadata: { keep: true } });
    expect((await s.vectors.search([1, 2, 3])).map((m) => m.id)).toEqual(["a"]);
  });

  it("rejects invalid vector options", async () => {
    const root = newRoot();
    for (const vectors of [{ quantization: "int4" }, { maxCachedWorkspaces: -1 }, { maxCacheBytes: 1.5 }] as const) {
      const s = await track(openStorage(config(root), { vectors: vectors as never }));
      expect(() => s.vectors).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
    }
  });
});

// Another process can only share a backend that lives outside this one.
describe.each(BACKENDS.filter((b) => b.name !== "memory"))("vectors on $name, across processes", (backend) => {
  const { newRoot, track } = perTest(backend, `vecx${backend.name}`);
  const config = (root: string, workspaceId = "w") => ({ url: backend.url(root), root, workspaceId });
  const open = (root: string) => track(openStorage(config(root)));

  it("sees an upsert and a delete made by another process", async () => {
    const root = newRoot();
    const s = await open(root);
    await s.vectors.upsert("local", [1, 0, 0]);
    expect((await s.vectors.search([0, 0, 1])).map((m) => m.id)).toEqual(["local"]);
    await child(config(root), ["upsert", "remote", "[0,0,1]"]);
    expect(await s.vectors.search([0, 0, 1], { k: 1 })).toEqual([
      { id: "remote", score: 1, metadata: { from: "child" } },
    ]);
    expect(await child(config(root), ["delete", "local"])).toBe("true\n");
    expect((await s.vectors.search([1, 0, 0])).map((m) => m.id)).toEqual(["remote"]);
    await child(config(root), ["upsert", "remote", "[0,1,0]"]);
    expect(await s.vectors.search([0, 1, 0])).toMatchObject([{ id: "remote", score: 1 }]);
  });

  it("KEYV_WORKSPACES_SIMD=0 takes the fallback, with identical results", async () => {
    const root = newRoot();
    const s = await open(root);
    await fill(s.vectors, randomVectors(150, 21, 5));
    const q = Array.from(randomVectors(1, 21, 6)[0]!);
    const here = await s.vectors.search(q, { k: 12 });
    const simd = JSON.parse(await child(config(root), ["search", JSON.stringify(q), "12"]));
    const js = JSON.parse(
      await child(config(root), ["search", JSON.stringify(q), "12"], { KEYV_WORKSPACES_SIMD: "0" }),
    );
    expect(simd.kernel).toBe("wasm-simd128");
    expect(js.kernel).toBe("js");
    expect(simd.results).toEqual(here);
    expect(js.results).toEqual(here);
  });
});

describe("vector cache", () => {
  it("bounds how many workspaces stay decoded, and stays correct when evicting", async () => {
    const s = createStorage(new Map(), { root: "c", workspaceId: "w0", vectors: { maxCachedWorkspaces: 2 } });
    const stores = [0, 1, 2, 3].map((i) => s.withWorkspace(`w${i}`).vectors);
    for (const [i, store] of stores.entries()) await store.upsert("v", [i + 1, 1]);
    for (let round = 0; round < 3; round++) {
      for (const [i, store] of stores.entries()) {
        const [match] = await store.search([i + 1, 1], { k: 1 });
        expect(match?.id).toBe("v");
        expect(match?.score).toBeCloseTo(1, 6);
        expect(cacheOf(store).size).toBeLessThanOrEqual(2);
      }
    }
    // Views share their storage's cache.
    expect(cacheOf(stores[0]!)).toBe(cacheOf(stores[3]!));
  });

  it("bounds bytes: a workspace over the budget is not kept, yet searches stay right", async () => {
    const s = createStorage(new Map(), { root: "c", workspaceId: "w", vectors: { maxCacheBytes: 1000 } });
    await fill(s.vectors, randomVectors(50, 8, 3));
    expect((await s.vectors.search(randomVectors(1, 8, 3)[0]!, { k: 1 }))[0]?.id).toBe(id(0));
    expect(cacheOf(s.vectors).size).toBe(0);
    expect(cacheOf(s.vectors).bytes).toBe(0);
  });

  it("keeps 100k-scale memory under 2x the raw float32 size (here 20k x 96)", async () => {
    const s = createStorage(new Map(), { root: "c", workspaceId: "w" });
    const vectors = randomVectors(20_000, 96, 1);
    await fill(s.vectors, vectors);
    await s.vectors.search(vectors[0]!);
    const raw = 20_000 * 96 * 4;
    expect(cacheOf(s.vectors).bytes).toBeLessThan(2 * raw);
  });

  it("refetches only changed rows when the driver reports them (changedSince)", async () => {
    // A real Map driver plus a per-prefix change log, the contract the Redis driver implements.
    const inner = mapDriver(new Map());
    const log: Array<[string, string]> = [];
    const fetched: string[] = [];
    const note = (prefix: string, names: readonly string[]) => {
      for (const name of names) log.push([prefix, name]);
    };
    const driver: Driver = {
      scope(prefix) {
        const store = inner.scope(prefix);
        return {
          ...store,
          getMany(names) {
            fetched.push(...names.map((name) => `${prefix}:${name}`));
            return store.getMany(names);
          },
          async set(name, value, ttl) {
            await store.set(name, value, ttl);
            note(prefix, [name]);
          },
          async setMany(entries) {
            await store.setMany(entries);
            note(
              prefix,
              entries.map((e) => e.name),
            );
          },
          async delete(name) {
            const deleted = await store.delete(name);
            note(prefix, [name]);
            return deleted;
          },
          version: async () => String(log.filter(([p]) => p === prefix).length),
          async changedSince(version) {
            return log
              .filter(([p]) => p === prefix)
              .slice(Number(version))
              .map(([, name]) => name);
          },
        };
      },
    };
    const backend = { [DRIVER]: driver } as unknown as AnyStore;
    const a = createStorage(backend, { root: "c", workspaceId: "w" });
    const b = createStorage(backend, { root: "c", workspaceId: "w" });
    await fill(a.vectors, randomVectors(300, 5, 2));
    await b.vectors.search([1, 0, 0, 0, 0]);
    await a.vectors.upsert("new", [0, 0, 0, 0, 1]);
    await a.vectors.delete(id(0));
    fetched.length = 0;
    expect((await b.vectors.search([0, 0, 0, 0, 1], { k: 1 }))[0]?.id).toBe("new");
    expect(fetched.sort()).toEqual(["c:ws:w:vectors:new", `c:ws:w:vectors:${id(0)}`]);
    expect((await b.vectors.ids()).includes(id(0))).toBe(false);
    expect((await b.vectors.search([1, 1, 1, 1, 1], { k: 400 })).map((m) => m.id)).not.toContain(id(0));
  });

  it("reads rows written by earlier versions as JSON number arrays", async () => {
    const s = createStorage(new Map(), { root: "c", workspaceId: "w" });
    await s.collection("vectors").set("old", { v: [0, 3, 4], m: { legacy: true } });
    await s.vectors.upsert("new", [1, 0, 0]);
    expect(await s.vectors.get("old")).toEqual({ vector: Float32Array.of(0, 3, 4), metadata: { legacy: true } });
    expect(await s.vectors.search([0, 3, 4], { k: 1 })).toEqual([{ id: "old", score: 1, metadata: { legacy: true } }]);
  });

  it("the fallback kernel gives the same answers as SIMD through the whole store", async () => {
    const map = new Map();
    const make = (kernel?: ReturnType<typeof jsKernel>) =>
      createVectorStore({ store: driverFor(map).scope("k:vectors") }, {}, kernel ? { kernel } : {});
    const simd = make();
    const js = make(jsKernel());
    await fill(simd, randomVectors(400, 50, 12));
    for (let t = 0; t < 4; t++) {
      const q = randomVectors(1, 50, 40 + t)[0]!;
      expect(await js.search(q, { k: 15 })).toEqual(await simd.search(q, { k: 15 }));
    }
  });

  it("returned metadata cannot alter the cache", async () => {
    const s = createStorage(new Map(), { root: "c", workspaceId: "w" });
    const meta = { tags: ["a"] };
    await s.vectors.upsert("v", [1, 0], meta);
    meta.tags.push("mutated-after-upsert");
    const [first] = await s.vectors.search([1, 0]);
    (first!.metadata.tags as string[]).push("mutated-result");
    expect((await s.vectors.search([1, 0]))[0]?.metadata).toEqual({ tags: ["a"] });
  });
});
