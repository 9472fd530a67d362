import { describe, expect, it } from "vitest";
import { type AnyStore, DRIVER, type Driver } from "../../lib/backends/driver.js";
import { mapDriver } from "../../lib/backends/map-scope.js";
import { createStorage, openStorage } from "../../lib/index.js";
import { BACKENDS, perTest } from "../support/backends.js";
import { randomVectors, referenceTopK } from "../vectors/reference.js";

describe.each(BACKENDS)("vectors.upsertMany on $name", (backend) => {
  const { newRoot, track } = perTest(backend, `vbatch${backend.name}`);
  const open = (root: string, workspaceId = "w") => track(openStorage({ url: backend.url(root), root, workspaceId }));

  it("writes every row, searchable and readable like single upserts", async () => {
    const s = await open(newRoot());
    const data = randomVectors(150, 8, 7);
    await s.vectors.upsertMany(data.map((vector, i) => ({ id: `r${i}`, vector, metadata: { i } })));
    expect(await s.vectors.count()).toBe(150);
    expect(await s.vectors.get("r42")).toEqual({ vector: data[42], metadata: { i: 42 } });
    const q = data[3]!;
    const got = await s.vectors.search(q, { k: 5 });
    const rows = data.map((v, i): [string, Float32Array] => [`r${i}`, v]);
    expect(got.map((m) => m.id)).toEqual(referenceTopK(rows, q, 5).map((m) => m.id));
    // After a search the cache is loaded: a batch goes straight into it and the next search sees it.
    await s.vectors.upsertMany([
      { id: "r3", vector: data[4]! },
      { id: "fresh", vector: q },
    ]);
    expect((await s.vectors.search(q, { k: 1 })).map((m) => m.id)).toEqual(["fresh"]);
    expect((await s.vectors.search(data[4]!, { k: 2 })).map((m) => m.id).sort()).toEqual(["r3", "r4"]);
    await s.vectors.upsertMany([]);
    expect(await s.vectors.count()).toBe(151);
  });

  it("refuses a batch with any bad row before writing any of it", async () => {
    const s = await open(newRoot());
    await s.vectors.upsert("keep", [1, 2, 3], { k: 1 });
    const good = { id: "new", vector: [3, 2, 1] };
    const cases: Array<[unknown, string]> = [
      [[good, { id: "x", vector: [1, Number.NaN, 3] }], "ERR_INVALID_VECTOR"],
      [[good, { id: "", vector: [1, 2, 3] }], "ERR_INVALID_NAME"],
      [[good, { id: "y", vector: [1, 2, 3], metadata: { bad: Number.NaN } }], "ERR_INVALID_VALUE"],
      [[good, null], "ERR_INVALID_ARGUMENT"],
      [[good, { id: "z", vector: [1, 2] }], "ERR_VECTOR_DIMENSIONS"],
      [[{ id: "z", vector: [1, 2] }], "ERR_VECTOR_DIMENSIONS"],
      ["not rows", "ERR_INVALID_ARGUMENT"],
    ];
    for (const [rows, code] of cases) {
      await expect(s.vectors.upsertMany(rows as never)).rejects.toMatchObject({ code });
    }
    expect(await s.vectors.ids()).toEqual(["keep"]);
  });

  it("takes a new dimension once the workspace has been emptied, even if this handle remembers the old one", async () => {
    const root = newRoot();
    const a = await open(root);
    const b = await open(root);
    await a.vectors.upsert("p", [1, 2, 3]);
    await expect(a.vectors.upsert("q", [1, 2])).rejects.toMatchObject({ code: "ERR_VECTOR_DIMENSIONS" });
    // Another handle empties the workspace and refills it at four dimensions.
    await b.vectors.delete("p");
    await b.vectors.upsert("r", [1, 2, 3, 4]);
    await a.vectors.upsert("s", [4, 3, 2, 1]);
    await expect(a.vectors.upsert("t", [1, 2, 3])).rejects.toMatchObject({ code: "ERR_VECTOR_DIMENSIONS" });
    expect(await a.vectors.ids()).toEqual(["r", "s"]);
  });
});

describe("vector ingest cost", () => {
  it("reads the stored dimension once per handle, not once per upsert", async () => {
    // A real Map driver that counts listings: before, every upsert listed the collection.
    const inner = mapDriver(new Map());
    let listings = 0;
    const driver: Driver = {
      scope(prefix) {
        const store = inner.scope(prefix);
        return {
          ...store,
          names() {
            listings++;
            return store.names();
          },
        };
      },
    };
    const backend = { [DRIVER]: driver } as unknown as AnyStore;
    const seed = createStorage(backend, { root: "c", workspaceId: "w" });
    await seed.vectors.upsert("seed", [1, 0, 0, 0]);
    const s = createStorage(backend, { root: "c", workspaceId: "w" });
    listings = 0;
    const data = randomVectors(300, 4, 3);
    await Promise.all(data.slice(0, 100).map((v, i) => s.vectors.upsert(`a${i}`, v)));
    for (let i = 100; i < 300; i++) await s.vectors.upsert(`a${i}`, data[i]!);
    await s.vectors.upsertMany(data.map((vector, i) => ({ id: `b${i}`, vector })));
    expect(listings).toBe(1);
    expect(await s.vectors.count()).toBe(601);
  });
});
