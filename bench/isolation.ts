/**
 * What isolation costs per operation: the same Keyv operations through a workspace-scoped
 * collection and through a raw Keyv over the same kind of store, measured in interleaved
 * rounds so the scoped/raw ratio of each round compares like with like.
 */
import KeyvRedis from "@keyv/redis";
import { Keyv } from "keyv";
import { createStorage, openStorage, VIEW_LIMIT, type WorkspaceStorage } from "../lib/index.js";
import {
  type BenchRow,
  interleaved,
  REDIS_URL,
  type RoundOptions,
  ratios,
  row,
  type SuiteOptions,
  samples,
  type Task,
  toMicros,
} from "./rows.js";
import { benchRoot, withRedisRoot } from "./support.js";

const GROUP = "isolation";
const KEYS = 100;
const MANY = 10;
const VALUE = { n: 1, text: "x".repeat(100), tags: ["a", "b"] };

interface Side {
  keyv: Keyv;
  storage?: WorkspaceStorage;
}

interface Pair {
  label: string;
  scoped: Keyv;
  raw: Keyv;
  /** Operations per task call: many for in-process stores (µs-scale), one for Redis. */
  ops: number;
  target: number;
  /** The operations to compare; default all five. */
  only?: readonly string[];
}

const key = (i: number) => `k${i % KEYS}`;

async function fill(keyv: Keyv): Promise<void> {
  for (let i = 0; i < KEYS; i++) await keyv.set(key(i), VALUE);
}

/** The five Keyv operations as bench tasks for one side. */
function opTasks(side: "scoped" | "raw", keyv: Keyv, ops: number): Record<string, Task> {
  let i = 0;
  const repeat = (fn: () => Promise<unknown>) => async () => {
    for (let n = 0; n < ops; n++) await fn();
  };
  const many = Array.from({ length: MANY }, (_, j) => key(j));
  const doomed = Array.from({ length: ops }, (_, j) => `gone${j}`);
  let d = 0;
  return {
    get: { name: `${side} get`, ops, fn: repeat(() => keyv.get(key(i++))) },
    set: { name: `${side} set`, ops, fn: repeat(() => keyv.set(key(i++), VALUE)) },
    getMany: { name: `${side} getMany(${MANY})`, ops, fn: repeat(() => keyv.getMany(many)) },
    has: { name: `${side} has`, ops, fn: repeat(() => keyv.has(key(i++))) },
    delete: {
      name: `${side} delete`,
      ops,
      // The keys to delete are written before each timed call, outside the measurement.
      beforeEach: async () => {
        for (const name of doomed) await keyv.set(name, VALUE);
        d = 0;
      },
      fn: repeat(() => keyv.delete(doomed[d++] as string)),
    },
  };
}

async function comparePair(pair: Pair, rounds: RoundOptions): Promise<BenchRow[]> {
  await fill(pair.scoped);
  await fill(pair.raw);
  const scoped = opTasks("scoped", pair.scoped, pair.ops);
  const raw = opTasks("raw", pair.raw, pair.ops);
  const out: BenchRow[] = [];
  for (const op of Object.keys(scoped).filter((name) => pair.only?.includes(name) ?? true)) {
    const a = scoped[op] as Task;
    const b = raw[op] as Task;
    const results = await interleaved([a, b], rounds);
    const sa = samples(results, a.name);
    const sb = samples(results, b.name);
    out.push(row(GROUP, `${pair.label} ${a.name}`, "µs/op", toMicros(sa)));
    out.push(row(GROUP, `${pair.label} ${b.name}`, "µs/op", toMicros(sb)));
    const gated = op === "get" || op === "set" || pair.target <= 1.1;
    out.push(
      row(
        GROUP,
        `${pair.label} ${op} scoped/raw`,
        "×",
        ratios(sa, sb),
        gated ? `target ≤ ${pair.target.toFixed(2)}×` : undefined,
      ),
    );
  }
  return out;
}

/** artifacts.save/load against what a raw Keyv user would do to keep the same record. */
async function compareArtifacts(
  label: string,
  storage: WorkspaceStorage,
  raw: Keyv,
  ops: number,
  rounds: RoundOptions,
) {
  const data = { text: "y".repeat(200), n: 42 };
  const record = (name: string) => {
    const now = new Date().toISOString();
    return { name, description: "", size: 211, kind: "json", createdAt: now, updatedAt: now, metadata: {}, data };
  };
  for (let i = 0; i < KEYS; i++) {
    await storage.artifacts.save(key(i), data);
    await raw.set(key(i), record(key(i)));
  }
  let i = 0;
  const repeat = (fn: () => Promise<unknown>) => async () => {
    for (let n = 0; n < ops; n++) await fn();
  };
  const tasks: Task[] = [
    { name: "artifacts.save", ops, fn: repeat(() => storage.artifacts.save(key(i++), data)) },
    { name: "raw set(record)", ops, fn: repeat(() => raw.set(key(i++), record(key(i)))) },
    { name: "artifacts.load", ops, fn: repeat(() => storage.artifacts.load(key(i++))) },
    { name: "raw get(record).data", ops, fn: repeat(async () => (await raw.get<{ data: unknown }>(key(i++)))?.data) },
  ];
  const save = await interleaved([tasks[0] as Task, tasks[1] as Task], rounds);
  const load = await interleaved([tasks[2] as Task, tasks[3] as Task], rounds);
  const s = (r: Map<string, number[]>, t: number) => samples(r, (tasks[t] as Task).name);
  return [
    row(GROUP, `${label} artifacts.save`, "µs/op", toMicros(s(save, 0))),
    row(GROUP, `${label} raw set(record)`, "µs/op", toMicros(s(save, 1))),
    row(
      GROUP,
      `${label} artifacts.save / raw set`,
      "×",
      ratios(s(save, 0), s(save, 1)),
      "save validates; a name this handle knows is one replace, no read (keeps createdAt)",
    ),
    row(GROUP, `${label} artifacts.load`, "µs/op", toMicros(s(load, 2))),
    row(GROUP, `${label} raw get(record).data`, "µs/op", toMicros(s(load, 3))),
    row(GROUP, `${label} artifacts.load / raw get`, "×", ratios(s(load, 2), s(load, 3))),
  ];
}

/**
 * withWorkspace(id) per request: a new view plus its first collection access, then one get. For a
 * workspace among the VIEW_LIMIT most recent the view's stores are kept (lib/views.ts); ids that
 * cycle through more than that are never found there, so each view builds its stores.
 */
async function compareWithWorkspace(label: string, storage: WorkspaceStorage, ops: number, rounds: RoundOptions) {
  const held = storage.collection("x");
  await held.set("k", VALUE);
  let i = 0;
  let j = 0;
  const repeat = (fn: () => Promise<unknown>) => async () => {
    for (let n = 0; n < ops; n++) await fn();
  };
  const view = () => storage.withWorkspace(`w${i++ % 1000}`);
  // A server that has seen its tenants before: each of the 1,000 has had a view once.
  for (let w = 0; w < 1000; w++) view().collection("x");
  // Its own storage (own connection, own kept views), so these ids never push out the 1,000 above.
  const other = await openStorage(storage.toBootstrapConfig());
  const fresh = () => other.withWorkspace(`f${j++ % (4 * VIEW_LIMIT)}`);
  const tasks: Task[] = [
    { name: "withWorkspace+collection", ops, fn: repeat(async () => view().collection("x")) },
    { name: "withWorkspace+collection+get", ops, fn: repeat(() => view().collection("x").get("k")) },
    { name: "held view get", ops, fn: repeat(() => held.get("k")) },
    { name: "new workspace withWorkspace+collection", ops, fn: repeat(async () => fresh().collection("x")) },
    { name: "new workspace withWorkspace+collection+get", ops, fn: repeat(() => fresh().collection("x").get("k")) },
  ];
  const results = await interleaved(tasks, rounds).finally(() => other.close());
  const s = (t: number) => samples(results, (tasks[t] as Task).name);
  const note = `one of 1,000 workspaces, the ${VIEW_LIMIT} most recent keep their views' stores`;
  const fresher = `one of ${4 * VIEW_LIMIT} workspaces in turn: none kept, each view builds its stores`;
  return [
    row(GROUP, `${label} withWorkspace(id).collection()`, "µs/op", toMicros(s(0)), note),
    row(GROUP, `${label} withWorkspace(id).collection().get`, "µs/op", toMicros(s(1)), note),
    row(GROUP, `${label} per-request view / held view (get)`, "×", ratios(s(1), s(2))),
    row(GROUP, `${label} withWorkspace(new id).collection()`, "µs/op", toMicros(s(3)), fresher),
    row(GROUP, `${label} withWorkspace(new id).collection().get`, "µs/op", toMicros(s(4)), fresher),
    row(GROUP, `${label} per-request view of a new workspace / held view (get)`, "×", ratios(s(4), s(2))),
  ];
}

function rounds(opts: SuiteOptions, inProcess: boolean): RoundOptions {
  if (opts.tiny) return { rounds: 2, time: 10, iterations: 4 };
  return inProcess ? { rounds: 6, time: 80, iterations: 50 } : { rounds: 5, time: 100, iterations: 100 };
}

async function memorySuite(opts: SuiteOptions): Promise<BenchRow[]> {
  const ops = opts.tiny ? 10 : 100;
  const r = rounds(opts, true);
  const storage = await openStorage({ url: "memory:", root: benchRoot("iso"), workspaceId: "w1" });
  const raw: Side = { keyv: new Keyv(new Map()) };
  try {
    return [
      ...(await comparePair({ label: "memory", scoped: storage.collection("x"), raw: raw.keyv, ops, target: 1.1 }, r)),
      ...(await compareArtifacts("memory", storage, new Keyv(new Map()), ops, r)),
      ...(await compareWithWorkspace("memory", storage, ops, r)),
    ];
  } finally {
    await storage.close();
  }
}

async function redisSuite(opts: SuiteOptions): Promise<BenchRow[]> {
  const root = benchRoot("iso");
  const r = rounds(opts, false);
  return withRedisRoot(root, async () => {
    const out: BenchRow[] = [];
    // Our opener against the usual way to get a raw Keyv on Redis.
    const storage = await openStorage({ url: REDIS_URL, root, workspaceId: "w1" });
    const rawAdapter = new KeyvRedis(REDIS_URL);
    const raw = new Keyv({ store: rawAdapter, namespace: `${root}:raw` });
    // createStorage over an adapter the app already has, against raw Keyv on that same adapter.
    const shared = new KeyvRedis(REDIS_URL);
    const wrapped = createStorage(shared, { root, workspaceId: "w2" });
    const rawShared = new Keyv({ store: shared, namespace: `${root}:raw2` });
    try {
      // Single-op get and set (and artifacts) on Redis belong to the load suite's "@1 in flight"
      // rows, on its private server: one way to measure them, so two suites never disagree.
      out.push(
        ...(await comparePair(
          {
            label: "redis openStorage",
            scoped: storage.collection("x"),
            raw,
            ops: 1,
            target: 1.03,
            only: ["getMany", "has", "delete"],
          },
          r,
        )),
      );
      out.push(
        ...(await comparePair(
          {
            label: "redis createStorage(KeyvRedis)",
            scoped: wrapped.collection("x"),
            raw: rawShared,
            ops: 1,
            target: 1.03,
          },
          r,
        )),
      );
      out.push(...(await compareWithWorkspace("redis", storage, 1, r)));
    } finally {
      await storage.close();
      await wrapped.close();
      await rawAdapter.disconnect().catch(() => {});
      await shared.disconnect().catch(() => {});
    }
    return out;
  });
}

export async function run(opts: { full: boolean; tiny: boolean }): Promise<BenchRow[]> {
  return [...(await memorySuite(opts)), ...(await redisSuite(opts))];
}
