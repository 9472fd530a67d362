/**
 * Property-based isolation: random workspaces (look-alike ids and the unscoped layout),
 * random names (every printable character the contract allows, up to the length limit)
 * and random sequences of operations over every collection, on every built-in backend.
 * After each step every listing (and the read of the name just touched, in every
 * workspace) must equal a naive per-workspace model; at the end every workspace is read
 * in full, and the raw store (Redis client, file on disk, the Map itself) must hold
 * exactly the keys the model implies, each under its workspace's prefix.
 *
 * CI runs a fixed seed. More: KVWS_PROPERTY_RUNS=500 KVWS_PROPERTY_SEED=7 npx vitest run spec/isolation.property.spec.ts
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keyspace, openStorage, type WorkspaceStorage } from "../lib/index.js";
import { MAX_NAME_LENGTH, MAX_WORKSPACE_ID_LENGTH } from "../lib/keys.js";
import { BACKENDS, REDIS_HASH } from "./support/backends.js";
import { randomRoot } from "./support/env.js";
import { COLLECTIONS, type CollectionId, Model, rawKeys, sorted, type WorkspaceModel } from "./support/model.js";

const RUNS = Number(process.env.KVWS_PROPERTY_RUNS ?? 12);
const SEED = Number(process.env.KVWS_PROPERTY_SEED ?? 42);
const MAX_STEPS = 30;

// --- generators --------------------------------------------------------------------------

// biome-ignore lint/suspicious/noControlCharactersInRegex: the contract forbids exactly these
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const allowedName = (s: string) =>
  s.length > 0 && s.length <= MAX_NAME_LENGTH && !CONTROL.test(s) && !/[\uD800-\uDFFF]/u.test(s);

const workspaceId = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("a", "ab", "a.b", "a-b", "a_b", "A", "a.", "ab.", "b", "0") },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,10}$/) },
  {
    weight: 1,
    arbitrary: fc
      .stringMatching(/^[a-z][a-z0-9_.-]{0,8}$/)
      .map((s) => s.padEnd(MAX_WORKSPACE_ID_LENGTH, "w").slice(0, MAX_WORKSPACE_ID_LENGTH)),
  },
);

/** Names that look like key syntax, glob syntax, other workspaces' keys or bookkeeping keys. */
const TRICKY = [":", "::", "*", "?", "[a]", "\\", "%", "_", "/", "#index", "a#index", "ws:a:artifacts:x", "ab", "a"];
const name = fc
  .oneof(
    { weight: 2, arbitrary: fc.constantFrom(...TRICKY) },
    {
      weight: 3,
      arbitrary: fc.string({
        unit: fc.constantFrom(":", "*", "?", "[", "]", "\\", "%", "_", "/", "#", " ", "a", "b", "é", "🙂", "ß", "ｗ"),
        minLength: 1,
        maxLength: 12,
      }),
    },
    { weight: 2, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }) },
    { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 20 }) },
    {
      weight: 1,
      arbitrary: fc.string({ minLength: 1, maxLength: 12 }).map((s) => s.padStart(MAX_NAME_LENGTH, ":x*")),
    },
  )
  .filter(allowedName);

const workflowName = fc.oneof(
  fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,12}$/),
  fc.constantFrom("a", "ab", "A", "_", "x".repeat(MAX_NAME_LENGTH)),
);
const WORDS = ["send", "email", "resize", "image", "parse", "csv", "report", "daily", "crop", "sum", "ünï", "🙂"];
const words = fc.array(fc.constantFrom(...WORDS), { minLength: 0, maxLength: 5 }).map((w) => w.join(" "));
const vector = fc
  .array(fc.integer({ min: -5, max: 5 }), { minLength: 3, maxLength: 3 })
  .filter((v) => v.some((x) => x !== 0));
const jsonValue = fc.jsonValue({ maxDepth: 2 });
const PACKAGES = ["lodash", "zod", "@scope/pkg", "left-pad", "a.b", "lodash.merge"];

/** Indices into the per-run pools; resolved when the op runs, so shrinking keeps them valid. */
const pick = fc.nat({ max: 63 });
const op = fc.oneof(
  { weight: 2, arbitrary: fc.record({ op: fc.constant("switch" as const), ws: pick }) },
  // Close the actor's storage and open a fresh one on the current workspace: nothing may depend on its caches.
  { weight: 1, arbitrary: fc.record({ op: fc.constant("reopen" as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("artifact.save" as const),
      name: pick,
      value: fc.oneof(
        { weight: 4, arbitrary: jsonValue.map((value) => ({ kind: "json" as const, value })) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 16 }).map((value) => ({ kind: "bytes" as const, value })) },
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("artifact.delete" as const), name: pick }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("coll.set" as const), coll: pick, name: pick, value: jsonValue }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("coll.delete" as const), coll: pick, name: pick }) },
  // The same name in every collection at once: collections whose names prefix each other
  // ("notes", "notes2", "notes-x") then hold neighbours a sloppy clear or listing would touch.
  { weight: 1, arbitrary: fc.record({ op: fc.constant("coll.setAll" as const), name: pick, value: jsonValue }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("coll.clear" as const),
      coll: fc.constantFrom<CollectionId | "artifacts">(...COLLECTIONS, "artifacts"),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("vector.upsert" as const), name: pick, v: vector }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("vector.delete" as const), name: pick }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("vector.search" as const), q: vector, k: fc.integer({ min: 1, max: 6 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("workflow.add" as const), name: pick, description: words, source: words }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("workflow.delete" as const), name: pick }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("workflow.search" as const),
      query: words,
      limit: fc.integer({ min: 1, max: 5 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("deps.add" as const),
      pkg: fc.constantFrom(...PACKAGES),
      version: fc.constantFrom("^1.0.0", "2", "latest", "~3.1"),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("deps.remove" as const),
      pkg: fc.constantFrom(...PACKAGES),
      bySpec: fc.boolean(),
    }),
  },
);
type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

const scenario = fc.record({
  workspaces: fc.uniqueArray(workspaceId, { minLength: 2, maxLength: 4 }),
  names: fc.uniqueArray(name, { minLength: 2, maxLength: 6 }),
  workflows: fc.uniqueArray(workflowName, { minLength: 1, maxLength: 4 }),
  ops: fc.array(op, { minLength: 5, maxLength: MAX_STEPS, size: "max" }),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

// --- checks ------------------------------------------------------------------------------

const at = <T>(pool: readonly T[], i: number): T => pool[i % pool.length] as T;
const json = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

async function entriesOf(storage: WorkspaceStorage, collection: string): Promise<Array<[string, unknown]>> {
  const out: Array<[string, unknown]> = [];
  for await (const [key, value] of storage.collection(collection).iterator!(undefined))
    out.push([key as string, value]);
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

async function expectArtifact(s: WorkspaceStorage, m: WorkspaceModel, name: string): Promise<void> {
  const want = m.artifacts.get(name);
  expect(await s.artifacts.has(name)).toBe(want !== undefined);
  if (want === undefined) {
    expect(await s.artifacts.info(name)).toBeUndefined();
    return;
  }
  const loaded = await s.artifacts.load(name);
  if (want.kind === "bytes") {
    expect(loaded).toBeInstanceOf(Uint8Array);
    expect([...(loaded as Uint8Array)]).toEqual([...want.value]);
  } else expect(loaded).toEqual(want.value);
}

async function expectVector(s: WorkspaceStorage, m: WorkspaceModel, id: string): Promise<void> {
  const got = await s.vectors.get(id);
  const want = m.vectors.get(id);
  expect(got && [...got.vector]).toEqual(want);
}

/**
 * Every listing of every workspace, plus deps. Cheap enough to run after every step: the
 * reads are issued together (Redis pipelines them), then compared one by one.
 */
async function expectListings(views: Map<string | null, WorkspaceStorage>, model: Model): Promise<void> {
  const seen = await Promise.all(
    [...views].map(async ([id, s]) => {
      const m = model.of(id);
      const [artifacts, collections, count, hits, workflows, deps] = await Promise.all([
        s.artifacts.list(),
        Promise.all(COLLECTIONS.map((c) => entriesOf(s, c))),
        s.vectors.count(),
        // A search as wide as the workspace returns every vector of it, and only those.
        m.vectors.size > 0 ? s.vectors.search([1, 1, 1], { k: m.vectors.size + 3 }) : Promise.resolve([]),
        s.workflows.list(),
        s.deps.list(),
      ]);
      return { id, m, artifacts, collections, count, hits, workflows, deps };
    }),
  );
  for (const { id, m, artifacts, collections, count, hits, workflows, deps } of seen) {
    const where = `workspace ${JSON.stringify(id)}`;
    expect(
      artifacts.map((i) => i.name),
      where,
    ).toEqual(sorted(m.artifacts.keys()));
    COLLECTIONS.forEach((c, i) => {
      const want = m.collections.get(c)!;
      expect(collections[i], `${where} collection ${c}`).toEqual(sorted(want.keys()).map((k) => [k, want.get(k)]));
    });
    expect(count, where).toBe(m.vectors.size);
    expect(sorted(hits.map((h) => h.id)), where).toEqual(sorted(m.vectors.keys()));
    expect(
      workflows.map((w) => w.name),
      where,
    ).toEqual(sorted(m.workflows.keys()));
    expect(deps, where).toEqual(sorted(model.deps.values()));
  }
}

/** The full read of the end state: every name of every pool, in every workspace. */
async function expectEverything(
  views: Map<string | null, WorkspaceStorage>,
  model: Model,
  sc: Scenario,
): Promise<void> {
  await expectListings(views, model);
  await everyView(views, async (s, id) => {
    const m = model.of(id);
    for (const n of sc.names) {
      await expectArtifact(s, m, n);
      await expectVector(s, m, n);
      for (const c of COLLECTIONS) expect(await s.collection(c).get(n)).toEqual(m.collections.get(c)!.get(n));
    }
    for (const w of sc.workflows) {
      const got = await s.workflows.get(w);
      const want = m.workflows.get(w);
      expect(got && { source: got.source, description: got.description }).toEqual(want);
    }
  });
}

/** The read of the name just touched, in every workspace at once. */
async function everyView(
  views: Map<string | null, WorkspaceStorage>,
  check: (view: WorkspaceStorage, id: string | null) => Promise<void>,
): Promise<void> {
  await Promise.all([...views].map(([id, view]) => check(view, id)));
}

// --- the run -----------------------------------------------------------------------------

async function step(
  o: Op,
  s: WorkspaceStorage,
  current: string | null,
  model: Model,
  sc: Scenario,
  views: Map<string | null, WorkspaceStorage>,
): Promise<void> {
  const m = model.of(current);
  switch (o.op) {
    case "switch":
    case "reopen":
      return;
    case "artifact.save": {
      const n = at(sc.names, o.name);
      const info = await s.artifacts.save(n, o.value.value);
      expect(info.name).toBe(n);
      m.artifacts.set(n, o.value.kind === "json" ? { kind: "json", value: json(o.value.value) } : o.value);
      await everyView(views, (view, id) => expectArtifact(view, model.of(id), n));
      return;
    }
    case "artifact.delete": {
      const n = at(sc.names, o.name);
      expect(await s.artifacts.delete(n)).toBe(m.artifacts.delete(n));
      await everyView(views, (view, id) => expectArtifact(view, model.of(id), n));
      return;
    }
    case "coll.set": {
      const c = at(COLLECTIONS, o.coll);
      const n = at(sc.names, o.name);
      await s.collection(c).set(n, o.value);
      m.collections.get(c)!.set(n, json(o.value));
      await everyView(views, async (view, id) => {
        expect(await view.collection(c).get(n)).toEqual(model.of(id).collections.get(c)!.get(n));
      });
      return;
    }
    case "coll.setAll": {
      const n = at(sc.names, o.name);
      for (const c of COLLECTIONS) {
        await s.collection(c).set(n, o.value);
        m.collections.get(c)!.set(n, json(o.value));
      }
      return;
    }
    case "coll.delete": {
      const c = at(COLLECTIONS, o.coll);
      const n = at(sc.names, o.name);
      expect(await s.collection(c).delete(n)).toBe(m.collections.get(c)!.delete(n));
      return;
    }
    case "coll.clear":
      // collection("artifacts") is the very prefix storage.artifacts uses: clearing it clears them.
      await s.collection(o.coll).clear();
      if (o.coll === "artifacts") m.artifacts.clear();
      else m.collections.get(o.coll)!.clear();
      return;
    case "vector.upsert": {
      const n = at(sc.names, o.name);
      await s.vectors.upsert(n, o.v, { n });
      m.vectors.set(n, o.v);
      await everyView(views, (view, id) => expectVector(view, model.of(id), n));
      return;
    }
    case "vector.delete": {
      const n = at(sc.names, o.name);
      expect(await s.vectors.delete(n)).toBe(m.vectors.delete(n));
      await everyView(views, (view, id) => expectVector(view, model.of(id), n));
      return;
    }
    case "vector.search": {
      const hits = await s.vectors.search(o.q, { k: o.k });
      expect(hits).toHaveLength(Math.min(o.k, m.vectors.size));
      for (const hit of hits) expect(m.vectors.has(hit.id), `search hit ${JSON.stringify(hit.id)}`).toBe(true);
      expect(new Set(hits.map((h) => h.id)).size).toBe(hits.length);
      return;
    }
    case "workflow.add": {
      const n = at(sc.workflows, o.name);
      await s.workflows.add({ name: n, source: o.source, description: o.description });
      m.workflows.set(n, { source: o.source, description: o.description });
      return;
    }
    case "workflow.delete": {
      const n = at(sc.workflows, o.name);
      expect(await s.workflows.delete(n)).toBe(m.workflows.delete(n));
      return;
    }
    case "workflow.search": {
      const hits = await s.workflows.search(o.query, { limit: o.limit });
      expect(hits).toHaveLength(Math.min(o.limit, m.workflows.size));
      for (const hit of hits) {
        expect(m.workflows.get(hit.name), `search hit ${hit.name}`).toEqual({
          source: hit.source,
          description: hit.description,
        });
      }
      return;
    }
    case "deps.add":
      await s.deps.add(`${o.pkg}@${o.version}`);
      model.deps.set(o.pkg, `${o.pkg}@${o.version}`);
      return;
    case "deps.remove":
      expect(await s.deps.remove(o.bySpec ? `${o.pkg}@9.9.9` : o.pkg)).toBe(model.deps.delete(o.pkg));
      return;
  }
}

describe.each([...BACKENDS, REDIS_HASH])("isolation property on $name", (backend) => {
  it(
    `random workspaces, names and operations agree with the model (${RUNS} runs, seed ${SEED})`,
    async () => {
      await fc.assert(
        fc.asyncProperty(scenario, async (sc) => {
          const root = randomRoot(`p${backend.name}`);
          const url = backend.url(root);
          const ids: Array<string | null> = [null, ...sc.workspaces];
          const model = new Model(ids);
          // The actor switches workspaces with withWorkspace; an observer opened separately
          // reads every workspace, so each read also crosses storages (and processes' caches).
          let actor = await openStorage({ ...backend.config, url, root, workspaceId: sc.workspaces[0] });
          const observer = await openStorage({ ...backend.config, url, root, workspaceId: null });
          try {
            const views = new Map(ids.map((id) => [id, observer.withWorkspace(id)] as const));
            let current: string | null = sc.workspaces[0]!;
            let s = actor;
            for (const o of sc.ops) {
              if (o.op === "switch") {
                current = at(ids, o.ws);
                s = s.withWorkspace(current);
                expect(s.workspaceId).toBe(current ?? undefined);
              } else if (o.op === "reopen") {
                await actor.close();
                await expect(s.artifacts.list()).rejects.toMatchObject({ code: "ERR_STORAGE_CLOSED" });
                actor = await openStorage({ ...backend.config, url, root, workspaceId: current });
                s = actor;
              }
              await step(o, s, current, model, sc, views);
              await expectListings(views, model);
            }
            await expectEverything(views, model, sc);
            const problems = model.rawKeyProblems(root, await rawKeys(backend.name, url, root));
            expect(problems).toEqual([]);
          } finally {
            await actor.close();
            await observer.close();
            await backend.cleanup(root);
          }
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true },
      );
    },
    Math.max(60_000, RUNS * 4_000),
  );
});

// --- pure properties of the key layout ---------------------------------------------------

const root = fc.oneof(
  fc.constantFrom("app", "a", "a:b", "kv.1", "x-y"),
  fc
    .stringMatching(/^[a-z][a-z0-9_.-]{0,6}(:[a-z0-9][a-z0-9_.-]{0,4}){0,2}$/)
    .filter((r) => !r.split(":").includes("ws")),
);
const collection = fc
  .oneof(
    fc.constantFrom("artifacts", "workflows", "vectors", "deps", "notes", "notes2", "n"),
    fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/),
  )
  .filter((c) => c !== "ws");
const triple = fc.record({ ws: fc.option(workspaceId, { nil: null }), collection, name });

describe("key layout properties", () => {
  it("keyspace.key is injective over (workspace, collection, name) within a root, except where sharing is intended", () => {
    fc.assert(
      fc.property(root, triple, triple, (r, x, y) => {
        const kx = keyspace({ root: r, workspaceId: x.ws });
        const ky = keyspace({ root: r, workspaceId: y.ws });
        const sameScope = x.ws === y.ws || (!kx.isScoped(x.collection) && !ky.isScoped(y.collection));
        const same = sameScope && x.collection === y.collection && x.name === y.name;
        expect(kx.key(x.collection, x.name) === ky.key(y.collection, y.name)).toBe(same);
      }),
      { numRuns: Math.max(1000, RUNS * 100), seed: SEED },
    );
  });

  it("no workspace's prefix is a prefix of another scope's key, and every key lies under its own prefix", () => {
    fc.assert(
      fc.property(root, triple, fc.option(workspaceId, { nil: null }), collection, (r, x, otherWs, otherCollection) => {
        const own = keyspace({ root: r, workspaceId: x.ws });
        const other = keyspace({ root: r, workspaceId: otherWs });
        const key = own.key(x.collection, x.name);
        expect(key.startsWith(`${own.prefix(x.collection)}:`)).toBe(true);
        const sameScope =
          x.collection === otherCollection &&
          (x.ws === otherWs || (!own.isScoped(x.collection) && !other.isScoped(otherCollection)));
        if (!sameScope) expect(key.startsWith(`${other.prefix(otherCollection)}:`)).toBe(false);
        // The whole workspace base, as an ACL pattern or a SCAN would use it.
        if (otherWs !== null && x.ws !== otherWs) {
          expect(key.startsWith(`${r}:ws:${otherWs}:`)).toBe(false);
        }
      }),
      { numRuns: Math.max(1000, RUNS * 100), seed: SEED },
    );
  });
});
