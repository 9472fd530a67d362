/**
 * Writes on the library's SQL engines (sqlite: file, postgres://): a conditional save (ifVersion,
 * one transaction with its lock) next to a plain save of the same artifact, awaited one by one;
 * and batch ingest (artifacts.saveMany, vectors.upsertMany) in rows per second. A fresh file or
 * table per round, rounds interleaved across engines so drift hits both alike.
 */
import { openStorage, type WorkspaceStorage } from "../lib/index.js";
import { dropPgTables, pgTable, pgUrl, removeSqlite, sqliteFile } from "../spec/support/sql.js";
import { type BenchRow, progress, ratios, row, type SuiteOptions } from "./rows.js";
import { benchRoot } from "./support.js";

const GROUP = "sql";
const D = 64;

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

interface Sizes {
  saves: number;
  batches: number;
  saveBatch: number;
  vectorBatch: number;
}

interface Round {
  plainUs: number;
  conditionalUs: number | undefined;
  saveManyRate: number;
  upsertManyRate: number;
}

async function timeUs(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  return ((performance.now() - t0) * 1000) / n;
}

async function conditional(s: WorkspaceStorage, n: number): Promise<number | undefined> {
  let version: string | null = null;
  try {
    return await timeUs(n, async (i) => {
      version = (await s.artifacts.save("cond", { step: i }, { ifVersion: version })).version;
    });
  } catch (error) {
    // A build without transact on SQL refuses conditional writes: reported as missing, not as a number.
    if ((error as { code?: unknown }).code === "ERR_UNSUPPORTED_STORE") return undefined;
    throw error;
  }
}

async function round(engine: Engine, sizes: Sizes): Promise<Round> {
  const root = benchRoot(`sql${engine.name}`);
  const s = await openStorage({ url: engine.url(root), root, workspaceId: "w" });
  try {
    await s.artifacts.save("plain", { step: 0 });
    const plainUs = await timeUs(sizes.saves, (i) => s.artifacts.save("plain", { step: i }));
    const conditionalUs = await conditional(s, sizes.saves);
    const payload = { text: "z".repeat(200) };
    let t0 = performance.now();
    for (let b = 0; b < sizes.batches; b++) {
      await s.artifacts.saveMany(
        Array.from({ length: sizes.saveBatch }, (_, i) => ({ name: `m${b}-${i}`, data: { ...payload, i } })),
      );
    }
    const saveManyRate = (sizes.batches * sizes.saveBatch * 1000) / (performance.now() - t0);
    const vector = Float32Array.from({ length: D }, (_, i) => Math.sin(i));
    t0 = performance.now();
    for (let b = 0; b < sizes.batches; b++) {
      await s.vectors.upsertMany(
        Array.from({ length: sizes.vectorBatch }, (_, i) => ({ id: `v${b}-${i}`, vector, metadata: { b } })),
      );
    }
    const upsertManyRate = (sizes.batches * sizes.vectorBatch * 1000) / (performance.now() - t0);
    return { plainUs, conditionalUs, saveManyRate, upsertManyRate };
  } finally {
    await s.close();
    await engine.cleanup(root);
  }
}

export async function run(opts: SuiteOptions): Promise<BenchRow[]> {
  const rounds = opts.tiny ? 1 : 5;
  const sizes: Sizes = opts.tiny
    ? { saves: 10, batches: 2, saveBatch: 20, vectorBatch: 20 }
    : { saves: 300, batches: 10, saveBatch: 500, vectorBatch: 1000 };
  const results = new Map<string, Round[]>(ENGINES.map((e) => [e.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const engine of r % 2 === 0 ? ENGINES : [...ENGINES].reverse()) {
      progress(`sql: ${engine.name} round ${r + 1}/${rounds}`);
      results.get(engine.name)!.push(await round(engine, sizes));
    }
  }
  const out: BenchRow[] = [];
  for (const engine of ENGINES) {
    const rs = results.get(engine.name)!;
    const plain = rs.map((x) => x.plainUs);
    out.push(row(GROUP, `${engine.name} save, plain (awaited one by one)`, "µs", plain));
    const cond = rs.map((x) => x.conditionalUs);
    if (cond.every((x) => x !== undefined)) {
      out.push(
        row(GROUP, `${engine.name} save, ifVersion (awaited one by one)`, "µs", cond),
        row(GROUP, `${engine.name} save, ifVersion/plain`, "×", ratios(cond, plain)),
      );
    }
    out.push(
      row(
        GROUP,
        `${engine.name} artifacts.saveMany (batches of ${sizes.saveBatch})`,
        "rows/s",
        rs.map((x) => x.saveManyRate),
      ),
      row(
        GROUP,
        `${engine.name} vectors.upsertMany (d=${D}, batches of ${sizes.vectorBatch})`,
        "rows/s",
        rs.map((x) => x.upsertManyRate),
      ),
    );
  }
  return out;
}
