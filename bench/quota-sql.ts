/**
 * What quotas cost on the SQL engines (lib/backends/sql/quota.ts): writes through the driver's
 * scopes exactly as storages open them, each next to a plain write of the same store and round.
 * Three stores per engine per round:
 *
 *   none   no workspace has a quota (no triggers)
 *   one    the workspace "limited" has one (triggers present; on PostgreSQL they name its base)
 *   many   70 workspaces have one (past LISTED_BASES: PostgreSQL's triggers call their function
 *          for every workspace row and filter there)
 *
 * and in each: raw (an unscoped prefix `<root>:notes`, no workspace, outside the quota feature),
 * free (a workspace without a quota) and limited (a workspace under a quota it is far from).
 * Every write adds a new key (the trigger's costliest path: insert, count, check); tasks run in
 * 20 interleaved blocks, order reversed each block, so drift hits all alike. Also: setQuota on a
 * workspace that holds N entries (it counts them under the write lock).
 */
import type { Backend, PrefixStore } from "../lib/backends/driver.js";
import { openBackend, openStorage, type WorkspaceStorage } from "../lib/index.js";
import { type BenchRow, progress, ratios, row, type SuiteOptions } from "./rows.js";
import { ENGINES, type Engine } from "./sql-engines.js";
import { benchRoot } from "./support.js";

const GROUP = "quota-sql";
const BATCH = 100;

/** Stores of a round: none has a quota; one workspace has one; MANY workspaces have one. */
const STORES = ["none", "one", "many"] as const;
type Store = (typeof STORES)[number];
/** Past LISTED_BASES (64) PostgreSQL's triggers no longer name the bases in their WHEN clause. */
const MANY = 70;
type Kind = "raw" | "free" | "limited";
type Task = `${Store}:${Kind}`;
const TASKS: Task[] = [
  "none:raw",
  "none:free",
  "one:raw",
  "one:free",
  "one:limited",
  "many:raw",
  "many:free",
  "many:limited",
];

interface Round {
  setUs: Record<Task, number>;
  batchUs: Record<Task, number>;
  setQuotaMs: number;
}

const scopeOf = (backend: Backend, root: string, kind: Kind): PrefixStore =>
  kind === "raw"
    ? backend.driver.scope(`${root}:notes`)
    : backend.driver.scope(`${root}:ws:${kind}:notes`, { quota: `${root}:ws:${kind}` });

async function withOperator(engine: Engine, root: string, work: (s: WorkspaceStorage) => Promise<void>) {
  const operator = await openStorage({ url: engine.url(root), root, workspaceId: null });
  try {
    await work(operator);
  } finally {
    await operator.close();
  }
}

async function round(engine: Engine, n: number, counted: number): Promise<Round> {
  const roots = Object.fromEntries(STORES.map((store) => [store, benchRoot("quotasql")])) as Record<Store, string>;
  const backends = {} as Record<Store, Backend>;
  try {
    for (const store of STORES) backends[store] = await openBackend(engine.url(roots[store]));
    const huge = { maxEntries: 1_000_000_000, maxBytes: 1_000_000_000_000 };
    await withOperator(engine, roots.one, (s) => s.setQuota("limited", huge));
    await withOperator(engine, roots.many, async (s) => {
      await s.setQuota("limited", huge);
      for (let i = 1; i < MANY; i++) await s.setQuota(`other${i}`, huge);
    });
    const stores = Object.fromEntries(
      TASKS.map((task) => {
        const [store, kind] = task.split(":") as [Store, Kind];
        return [task, scopeOf(backends[store], roots[store], kind)];
      }),
    ) as Record<Task, PrefixStore>;
    const value = "v".repeat(100);
    const setUs = Object.fromEntries(TASKS.map((task) => [task, 0])) as Record<Task, number>;
    const batchUs = { ...setUs };
    for (const task of TASKS) await stores[task].set("warm", value);
    const blocks = 20;
    const block = Math.max(1, Math.floor(n / blocks));
    const batchesPerBlock = Math.max(1, Math.floor(n / 200));
    let order = [...TASKS];
    for (let b = 0; b < blocks; b++) {
      for (const task of order) {
        const t0 = performance.now();
        for (let i = 0; i < block; i++) await stores[task].set(`k${b}-${i}`, value);
        setUs[task] += performance.now() - t0;
      }
      for (const task of order) {
        const t0 = performance.now();
        for (let k = 0; k < batchesPerBlock; k++) {
          await stores[task].setMany(Array.from({ length: BATCH }, (_, i) => ({ name: `b${b}-${k}-${i}`, value })));
        }
        batchUs[task] += performance.now() - t0;
      }
      order = order.reverse();
    }
    for (const task of TASKS) {
      setUs[task] = (setUs[task] * 1000) / (blocks * block);
      batchUs[task] = (batchUs[task] * 1000) / (blocks * batchesPerBlock);
    }
    // setQuota counts what a workspace holds, under the write lock.
    const big = backends.none.driver.scope(`${roots.none}:ws:big:notes`, { quota: `${roots.none}:ws:big` });
    for (let i = 0; i < counted; i += 1000) {
      await big.setMany(Array.from({ length: Math.min(1000, counted - i) }, (_, j) => ({ name: `c${i + j}`, value })));
    }
    let setQuotaMs = 0;
    await withOperator(engine, roots.none, async (s) => {
      const t0 = performance.now();
      await s.setQuota("big", { maxEntries: 10 * counted });
      setQuotaMs = performance.now() - t0;
      await s.setQuota("big", null);
    });
    return { setUs, batchUs, setQuotaMs };
  } finally {
    for (const backend of Object.values(backends)) await backend.close();
    for (const root of Object.values(roots)) await engine.cleanup(root);
  }
}

export async function run(opts: SuiteOptions): Promise<BenchRow[]> {
  const rounds = opts.full ? 9 : 5;
  const n = opts.tiny ? 40 : opts.full ? 2000 : 400;
  const counted = opts.tiny ? 1000 : opts.full ? 100_000 : 20_000;
  const results = new Map<string, Round[]>(ENGINES.map((e) => [e.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const engine of r % 2 === 0 ? ENGINES : [...ENGINES].reverse()) {
      progress(`quota-sql: ${engine.name} round ${r + 1}/${rounds}`);
      results.get(engine.name)?.push(await round(engine, n, counted));
    }
  }
  const out: BenchRow[] = [];
  for (const engine of ENGINES) {
    const rs = results.get(engine.name) ?? [];
    const e = engine.name;
    for (const [what, pick] of [
      ["set (new key, awaited one by one)", (x: Round) => x.setUs],
      [`setMany of ${BATCH} new keys`, (x: Round) => x.batchUs],
    ] as const) {
      const of = (task: Task) => rs.map((x) => pick(x)[task]);
      out.push(
        row(GROUP, `${e} ${what}, raw prefix, no quota in the store`, "µs", of("none:raw")),
        row(
          GROUP,
          `${e} ${what}, workspace without quota, none in the store / raw`,
          "×",
          ratios(of("none:free"), of("none:raw")),
        ),
        row(
          GROUP,
          `${e} ${what}, workspace without quota, 1 other has one / raw`,
          "×",
          ratios(of("one:free"), of("one:raw")),
        ),
        row(
          GROUP,
          `${e} ${what}, workspace without quota, ${MANY} others have one / raw`,
          "×",
          ratios(of("many:free"), of("many:raw")),
        ),
        row(GROUP, `${e} ${what}, under a quota / raw`, "×", ratios(of("one:limited"), of("one:raw"))),
        row(
          GROUP,
          `${e} ${what}, under a quota, ${MANY} quotas in the store / raw`,
          "×",
          ratios(of("many:limited"), of("many:raw")),
        ),
        row(GROUP, `${e} ${what}, under a quota`, "µs", of("one:limited")),
      );
    }
    out.push(
      row(
        GROUP,
        `${e} setQuota on a workspace of ${counted} entries (writers wait this long)`,
        "ms",
        rs.map((x) => x.setQuotaMs),
      ),
    );
  }
  return out;
}
