/**
 * What quotas cost on the SQL engines (lib/backends/sql/quota.ts): writes through the driver's
 * scopes exactly as storages open them, each next to a plain write in the same round.
 *
 *   raw            an unscoped prefix (`<root>:notes`): no workspace, no quota feature at all
 *   free           a workspace without a quota, in a store where no workspace has one (no triggers)
 *   free, others   a workspace without a quota while another workspace of the store has one (triggers present)
 *   limited        a workspace under a quota it is far from
 *
 * Every write adds a new key (the trigger's most expensive path: insert, count, check). Two
 * stores per engine per round (one never given a quota, one with a quota on another
 * workspace); tasks run in interleaved blocks so drift hits all alike. Also: setQuota on a
 * workspace that holds N entries (it counts them under the write lock).
 */
import type { Backend, PrefixStore } from "../lib/backends/driver.js";
import { openBackend, openStorage } from "../lib/index.js";
import { dropPgTables, pgTable, pgUrl, removeSqlite, sqliteFile } from "../spec/support/sql.js";
import { type BenchRow, progress, ratios, row, type SuiteOptions } from "./rows.js";
import { benchRoot } from "./support.js";

const GROUP = "quota-sql";
const BATCH = 100;

interface Engine {
  name: "sqlite" | "postgres";
  url(root: string): string;
  cleanup(root: string): Promise<void>;
}

const ENGINES: Engine[] = [
  {
    name: "sqlite",
    url: (root) => `sqlite:${sqliteFile(root)}`,
    cleanup: async (root) => removeSqlite(sqliteFile(root)),
  },
  { name: "postgres", url: pgUrl, cleanup: (root) => dropPgTables(pgTable(root)) },
];

type Task = "raw" | "free" | "freeOthers" | "rawOthers" | "limited";
const TASKS: Task[] = ["raw", "free", "rawOthers", "freeOthers", "limited"];

interface Round {
  setUs: Record<Task, number>;
  batchUs: Record<Task, number>;
  setQuotaMs: number;
}

const scopeOf = (backend: Backend, root: string, ws: string | undefined) =>
  ws === undefined
    ? backend.driver.scope(`${root}:notes`)
    : backend.driver.scope(`${root}:ws:${ws}:notes`, { quota: `${root}:ws:${ws}` });

async function round(engine: Engine, n: number, counted: number): Promise<Round> {
  // Two stores: the first never has a quota; the second has one on "limited".
  const roots = [benchRoot("quotasql"), benchRoot("quotasql")] as const;
  const backends = [await openBackend(engine.url(roots[0])), await openBackend(engine.url(roots[1]))] as const;
  try {
    const operator = await openStorage({ url: engine.url(roots[1]), root: roots[1], workspaceId: null });
    try {
      await operator.setQuota("limited", { maxEntries: 1_000_000_000, maxBytes: 1_000_000_000_000 });
    } finally {
      await operator.close();
    }
    const stores: Record<Task, PrefixStore> = {
      raw: scopeOf(backends[0], roots[0], undefined),
      free: scopeOf(backends[0], roots[0], "free"),
      rawOthers: scopeOf(backends[1], roots[1], undefined),
      freeOthers: scopeOf(backends[1], roots[1], "free"),
      limited: scopeOf(backends[1], roots[1], "limited"),
    };
    const value = "v".repeat(100);
    const setUs = { raw: 0, free: 0, rawOthers: 0, freeOthers: 0, limited: 0 };
    const batchUs = { ...setUs };
    for (const task of TASKS) await stores[task].set("warm", value);
    const block = Math.max(1, Math.floor(n / 10));
    const batches = Math.max(1, Math.floor(n / 20));
    let order = [...TASKS];
    for (let done = 0; done < n; done += block) {
      for (const task of order) {
        const t0 = performance.now();
        for (let i = 0; i < block; i++) await stores[task].set(`k${done + i}`, value);
        setUs[task] += performance.now() - t0;
      }
      for (const task of order) {
        const t0 = performance.now();
        for (let b = 0; b < Math.max(1, Math.floor(batches / 10)); b++) {
          const at = `${done}-${b}`;
          await stores[task].setMany(Array.from({ length: BATCH }, (_, i) => ({ name: `b${at}-${i}`, value })));
        }
        batchUs[task] += performance.now() - t0;
      }
      order = order.reverse();
    }
    const blocks = Math.ceil(n / block);
    const perBatch = blocks * Math.max(1, Math.floor(batches / 10));
    for (const task of TASKS) {
      setUs[task] = (setUs[task] * 1000) / (blocks * block);
      batchUs[task] = (batchUs[task] * 1000) / perBatch;
    }
    // setQuota counts what a workspace holds, under the write lock.
    const big = scopeOf(backends[0], roots[0], "big");
    for (let i = 0; i < counted; i += 1000) {
      await big.setMany(Array.from({ length: Math.min(1000, counted - i) }, (_, j) => ({ name: `c${i + j}`, value })));
    }
    const operator0 = await openStorage({ url: engine.url(roots[0]), root: roots[0], workspaceId: null });
    let setQuotaMs: number;
    try {
      const t0 = performance.now();
      await operator0.setQuota("big", { maxEntries: 10 * counted });
      setQuotaMs = performance.now() - t0;
      await operator0.setQuota("big", null);
    } finally {
      await operator0.close();
    }
    return { setUs, batchUs, setQuotaMs };
  } finally {
    for (const backend of backends) await backend.close();
    for (const root of roots) await engine.cleanup(root);
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
        row(GROUP, `${e} ${what}, raw prefix, no quota in the store`, "µs", of("raw")),
        row(
          GROUP,
          `${e} ${what}, workspace without quota, none in the store / raw`,
          "×",
          ratios(of("free"), of("raw")),
        ),
        row(
          GROUP,
          `${e} ${what}, workspace without quota, another has one / raw`,
          "×",
          ratios(of("freeOthers"), of("rawOthers")),
        ),
        row(GROUP, `${e} ${what}, under a quota / raw`, "×", ratios(of("limited"), of("rawOthers"))),
        row(GROUP, `${e} ${what}, under a quota`, "µs", of("limited")),
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
