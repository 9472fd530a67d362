import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type AnyStore, DRIVER, type Driver, type PrefixStore } from "../../lib/backends/driver.js";
import { createStorage, type MetadataFilter, openStorage, type VectorStore } from "../../lib/index.js";
import { BACKENDS, perTest } from "../support/backends.js";
import { randomVectors, referenceMatches, referenceTopK } from "../vectors/reference.js";

const id = (i: number) => `v${String(i).padStart(4, "0")}`;

/** Metadata of row i: `g` picks selectivity (g < 50: 50%, < 10: 10%, < 1: 1%), the rest vary shape. */
const meta = (i: number): Record<string, unknown> => ({
  g: i % 100,
  kind: i % 3 === 0 ? "a" : "b",
  ...(i % 4 === 0 ? {} : { tags: i % 2 === 0 ? ["x"] : ["x", "y"] }),
  ...(i % 5 === 0 ? { opt: null } : {}),
});

const FILTERS: MetadataFilter[] = [
  {},
  { g: { $lt: 50 } },
  { g: { $lt: 10 } },
  { g: { $lt: 1 } },
  { g: { $in: [3, 77] }, kind: "a" },
  { tags: ["x", "y"], g: { $gte: 20, $lte: 60 } },
  { tags: { $ne: ["x"] }, kind: { $nin: ["b"] } },
  { opt: null },
  { opt: { $ne: null }, kind: { $gt: "a" } },
  { g: { $gt: 1000 } },
];

describe.each(BACKENDS)("filtered vector search on $name", (backend) => {
  const { newRoot, track } = perTest(backend, `vfil${backend.name}`);
  const open = (root: string, workspaceId = "w") => track(openStorage({ url: backend.url(root), root, workspaceId }));

  it("equals the float64 reference over the matching rows, for several n, d, k, selectivities and ties", async () => {
    const root = newRoot();
    for (const [n, d, seed] of [
      [200, 7, 11],
      [500, 33, 12],
    ] as const) {
      const s = await open(root, `w${n}`);
      const base = randomVectors(n, d, seed);
      // The last fifth repeats earlier vectors exactly: equal scores, ordered by id.
      const vectors = base.map((v, i) => (i >= n * 0.8 ? base[i % 40]! : v));
      for (let i = 0; i < n; i += 100) {
        await Promise.all(vectors.slice(i, i + 100).map((v, j) => s.vectors.upsert(id(i + j), v, meta(i + j))));
      }
      for (const [f, filter] of FILTERS.entries()) {
        const rows = vectors.flatMap((v, i) =>
          referenceMatches(filter, meta(i)) ? [[id(i), v] as [string, Float32Array]] : [],
        );
        for (const k of [1, 5, 50, n + 1]) {
          const q = randomVectors(1, d, seed * 100 + f)[0]!;
          const got = await s.vectors.search(q, { k, filter });
          const want = referenceTopK(rows, q, k);
          expect(
            got.map((m) => m.id),
            `n=${n} filter=${JSON.stringify(filter)} k=${k}`,
          ).toEqual(want.map((m) => m.id));
          got.forEach((m, i) => {
            expect(m.score).toBeCloseTo(want[i]!.score, 5);
            expect(m.metadata).toEqual(meta(Number(m.id.slice(1))));
          });
        }
      }
      expect(await s.vectors.search(vectors[0]!, { filter: { g: { $gt: 1000 } } })).toEqual([]);
    }
  });

  it("a filtered row scores exactly what the unfiltered search gives it", async () => {
    const s = await open(newRoot());
    const vectors = randomVectors(120, 19, 5);
    await Promise.all(vectors.map((v, i) => s.vectors.upsert(id(i), v, meta(i))));
    const q = randomVectors(1, 19, 6)[0]!;
    const all = new Map((await s.vectors.search(q, { k: 120 })).map((m) => [m.id, m.score]));
    const some = await s.vectors.search(q, { k: 120, filter: { g: { $lt: 30 } } });
    expect(some).toHaveLength(50); // g < 30: rows 0–29 and 100–119
    for (const m of some) expect(m.score).toBe(all.get(m.id));
  });

  it("a row whose metadata changes, or that is deleted, leaves or joins the selection, also when another handle writes", async () => {
    const root = newRoot();
    const a = await open(root);
    const b = await open(root);
    const vectors = randomVectors(20, 8, 3);
    await Promise.all(vectors.map((v, i) => a.vectors.upsert(id(i), v, { g: i % 2 })));
    const even = { g: 0 };
    const ids = async () => (await a.vectors.search(vectors[0]!, { k: 100, filter: even })).map((m) => m.id).sort();
    expect(await ids()).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18].map(id));
    await b.vectors.upsert(id(1), vectors[1]!, { g: 0 });
    expect(await ids()).toContain(id(1));
    await b.vectors.delete(id(0));
    expect(await ids()).not.toContain(id(0));
    await a.vectors.upsert(id(2), vectors[2]!, { g: 1 });
    expect(await ids()).toEqual([1, 4, 6, 8, 10, 12, 14, 16, 18].map(id));
    await a.vectors.upsert(id(3), vectors[3]!, { g: 0 });
    expect(await ids()).toEqual([1, 3, 4, 6, 8, 10, 12, 14, 16, 18].map(id));
  });

  it("workflows.search with a filter returns only matching workflows of this workspace", async () => {
    const root = newRoot();
    const mine = await open(root, "mine");
    const other = await open(root, "other");
    const flows = [
      ["send_email", "send an email message", { team: "ops", level: 2 }],
      ["email_digest", "email a daily digest", { team: "sales", level: 1 }],
      ["resize_image", "resize an image", { team: "ops", level: 5 }],
      ["archive_mail", "archive old email", {}],
    ] as const;
    for (const [name, description, metadata] of flows) {
      await mine.workflows.add({ name, source: "", description, metadata });
      await other.workflows.add({ name: `${name}_x`, source: "", description, metadata });
    }
    const names = async (filter: MetadataFilter) =>
      (await mine.workflows.search("email", { limit: 10, filter })).map((w) => w.name).sort();
    expect(await names({ team: "ops" })).toEqual(["resize_image", "send_email"]);
    expect(await names({ level: { $gte: 2 } })).toEqual(["resize_image", "send_email"]);
    expect(await names({ team: { $ne: "ops" } })).toEqual(["archive_mail", "email_digest"]);
    expect(await names({ team: "nobody" })).toEqual([]);
    const hits = await mine.workflows.search("email", { limit: 1, filter: { team: "sales" } });
    expect(hits.map((w) => [w.name, w.metadata])).toEqual([["email_digest", { team: "sales", level: 1 }]]);
  });

  it("workflows.search checks the stored workflow's metadata, not only the index's copy", async () => {
    const s = await open(newRoot());
    const added = await s.workflows.add({
      name: "send_email",
      source: "",
      description: "email",
      metadata: { team: "ops" },
    });
    // As after a crash between the index write and the workflow write: the index says ops, the workflow says sales.
    await s.collection("workflows").set("send_email", { ...added, metadata: { team: "sales" } });
    expect(await s.workflows.search("email", { filter: { team: "ops" } })).toEqual([]);
    expect((await s.workflows.search("email")).map((w) => w.metadata)).toEqual([{ team: "sales" }]);
  });
});

/** A store whose every method throws, and records that it was called. */
function hostileStorage() {
  const calls: string[] = [];
  const driver: Driver = {
    scope(prefix) {
      return new Proxy({ prefix } as PrefixStore, {
        get(target, prop) {
          if (prop === "prefix") return target.prefix;
          if (typeof prop === "symbol" || prop === "then") return undefined;
          return () => {
            calls.push(String(prop));
            throw new Error(`store.${String(prop)} was called`);
          };
        },
      });
    },
  };
  const storage = createStorage({ [DRIVER]: driver } as unknown as AnyStore, { root: "app", workspaceId: "w" });
  return { storage, calls };
}

describe("malformed filters", () => {
  it("are refused with InvalidArgumentError before any store call", async () => {
    const { storage, calls } = hostileStorage();
    const bad: unknown[] = [null, 3, [], { a: { $regex: "x" } }, { a: { $in: 1 } }, { a: { b: { $gt: 1 } } }];
    for (const filter of bad) {
      const options = { filter: filter as MetadataFilter };
      await expect(storage.vectors.search([1, 0], options)).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
      await expect(storage.workflows.search("x", options)).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    }
    expect(calls).toEqual([]);
    // The same store does get called by a well-formed filter: the check above could fail.
    await expect(storage.vectors.search([1, 0], { filter: { a: 1 } })).rejects.toThrow();
    expect(calls.length).toBeGreaterThan(0);
  });
});

describe("filtered search property", () => {
  const value = fc.oneof(
    fc.integer({ min: -2, max: 3 }),
    fc.constantFrom("x", "y", "z", ""),
    fc.constant(null),
    fc.boolean(),
    fc.constantFrom([1], ["x"], { k: 1 }, {}),
  );
  const field = fc.constantFrom("a", "b", "c");
  const metadata = fc.dictionary(field, value, { maxKeys: 3 });
  const bound = fc.oneof(
    fc.array(fc.integer({ min: -2, max: 3 }), { minLength: 1, maxLength: 2 }),
    fc.array(fc.constantFrom("", "x", "y", "z"), { minLength: 1, maxLength: 2 }),
  );
  const operators = fc
    .tuple(
      fc.record(
        { $eq: value, $ne: value, $in: fc.array(value, { maxLength: 3 }), $nin: fc.array(value, { maxLength: 3 }) },
        { requiredKeys: [] },
      ),
      bound,
      fc.subarray(["$gt", "$gte", "$lt", "$lte"] as const),
    )
    .map(([ops, bounds, names]) => {
      const out: Record<string, unknown> = { ...ops };
      names.forEach((name, i) => {
        out[name] = bounds[i % bounds.length];
      });
      return out;
    })
    .filter((ops) => Object.keys(ops).length > 0);
  const filter = fc.dictionary(field, fc.oneof(value, operators), { maxKeys: 3 });
  const vector = fc.array(fc.integer({ min: -2, max: 2 }), { minLength: 3, maxLength: 3 });
  const command = fc.oneof(
    fc.record({ op: fc.constant("upsert" as const), i: fc.nat(15), vector, metadata }),
    fc.record({ op: fc.constant("delete" as const), i: fc.nat(15) }),
    fc.record({ op: fc.constant("search" as const), vector, filter, k: fc.integer({ min: 1, max: 20 }) }),
  );

  it("equals the unfiltered search restricted to rows the reference filter accepts", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 30 }), async (commands) => {
        const s = createStorage(new Map(), { root: "app", workspaceId: `p${run++}` });
        const stored = new Map<string, Record<string, unknown>>();
        const search = async (vectors: VectorStore, q: number[], k: number, f: MetadataFilter) => {
          const all = await vectors.search(q, { k: 100 });
          const want = all.filter((m) => referenceMatches(f, stored.get(m.id)!)).slice(0, k);
          expect(await vectors.search(q, { k, filter: f })).toEqual(want);
        };
        for (const c of commands) {
          if (c.op === "upsert") {
            await s.vectors.upsert(id(c.i), c.vector, c.metadata);
            stored.set(id(c.i), c.metadata);
          } else if (c.op === "delete") {
            await s.vectors.delete(id(c.i));
            stored.delete(id(c.i));
          } else {
            await search(s.vectors, c.vector, c.k, c.filter);
            // Twice: the second search reuses the cached selection.
            await search(s.vectors, c.vector, c.k, c.filter);
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});
