/**
 * The sql suite's concurrency rows: collection().set / get on the library's own engines
 * (`sqlite:` file, `postgres://` table) next to raw Keyv over @keyv/sqlite / @keyv/postgres, at 1,
 * 8 and 32 operations in flight, ops/s and library/raw per round. Each side has its own file
 * (SQLite) or table (PostgreSQL), filled with the same names first, so gets hit. Rounds are
 * interleaved (the order flips every round) so drift hits both sides alike.
 *
 * What each side does, so like is compared with like:
 *   raw @keyv/sqlite: one node-sqlite3 connection, SQLite's defaults (rollback journal,
 *     synchronous=FULL), every set one autocommit INSERT … ON CONFLICT, no JS queue: node-sqlite3
 *     hands each statement to its worker threads as it comes. `raw WAL`: the same adapter with
 *     the library's journal settings (WAL, synchronous=NORMAL) set on its connection first.
 *   sqlite: the library: WAL, synchronous=NORMAL (an acknowledged write survives a process crash,
 *     as the rollback journal's does; an OS crash may lose the last commits), a TTL-aware upsert
 *     that books the key's prefix, statements kept prepared; sets that queue up behind a running
 *     one are committed together in one transaction, as one multi-row upsert; gets run on two
 *     reader connections.
 *   raw @keyv/postgres: a pg Pool (its default size, 10), one statement per set or get.
 *   postgres: the library: a pg Pool of its own (also 10), one statement per set or get, point
 *     statements named (parsed and planned once per connection).
 */
import KeyvPostgres from "@keyv/postgres";
import KeyvSqlite from "@keyv/sqlite";
import { Keyv } from "keyv";
import { openStorage } from "../lib/index.js";
import { dropPgTables, PG_URL, pgQuery, pgTable, pgUrl, removeSqlite, sqliteFile } from "../spec/support/sql.js";
import { type BenchRow, median, progress, ratios, row, type SuiteOptions } from "./rows.js";
import { benchRoot } from "./support.js";

const GROUP = "sql";
export const FLIGHTS = [1, 8, 32] as const;
const VALUE = { n: 1, text: "x".repeat(100), tags: ["a", "b"] };
/** Names each side writes and reads, round and round (tiny runs touch only their first ones). */
const NAMES = 2000;

type Op = (i: number) => Promise<unknown>;

/** `count` operations with at most `flight` in flight: ops/s. */
export async function opsPerSecond(op: Op, count: number, flight: number): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < count) await op(next++);
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: flight }, worker));
  return (count * 1000) / (performance.now() - t0);
}

interface Side {
  set: Op;
  get: Op;
  close(): Promise<void>;
}

interface Engine {
  name: "sqlite" | "postgres";
  /** The library's side first, then the raw ones; ratio rows divide the first by each other. */
  sides(root: string): Promise<Array<[string, Side]>>;
  cleanup(root: string): Promise<void>;
}

const name = (i: number) => `k${i % NAMES}`;

async function librarySide(url: string, root: string): Promise<Side> {
  const storage = await openStorage({ url, root, workspaceId: "w" });
  const things = storage.collection("things");
  return {
    set: (i) => things.set(name(i), VALUE),
    get: (i) => things.get(name(i)),
    close: () => storage.close(),
  };
}

function rawSide(keyv: Keyv): Side {
  return {
    set: (i) => keyv.set(name(i), VALUE),
    get: (i) => keyv.get(name(i)),
    close: () => keyv.disconnect(),
  };
}

/** Raw @keyv/sqlite over a file of its own, as shipped or with the library's journal settings. */
async function rawSqlite(file: string, pragmas: readonly string[]): Promise<Side> {
  const adapter = new KeyvSqlite({ uri: `sqlite://${file}`, table: "keyv" });
  for (const pragma of pragmas) await adapter.query(pragma);
  return rawSide(new Keyv({ store: adapter }));
}

/** What the library sets on its SQLite connection (sqlite.ts). */
const LIBRARY_PRAGMAS = ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"];

const ENGINES: Engine[] = [
  {
    name: "sqlite",
    sides: async (root) => [
      ["library", await librarySide(`sqlite:${sqliteFile(root)}`, root)],
      ["raw", await rawSqlite(sqliteFile(`${root}_raw`), [])],
      ["raw WAL", await rawSqlite(sqliteFile(`${root}_rawwal`), LIBRARY_PRAGMAS)],
    ],
    async cleanup(root) {
      for (const file of [root, `${root}_raw`, `${root}_rawwal`]) removeSqlite(sqliteFile(file));
    },
  },
  {
    name: "postgres",
    sides: async (root) => [
      ["library", await librarySide(pgUrl(root), root)],
      ["raw", rawSide(new Keyv({ store: new KeyvPostgres({ uri: PG_URL, schema: `s_${root}`, table: "keyv" }) }))],
    ],
    async cleanup(root) {
      await dropPgTables(pgTable(root));
      await pgQuery(`DROP SCHEMA IF EXISTS "s_${root}" CASCADE`);
    },
  },
];

async function engineRows(engine: Engine, opts: SuiteOptions, flights: readonly number[]): Promise<BenchRow[]> {
  const rounds = opts.tiny ? 1 : 5;
  const count = (flight: number) => (opts.tiny ? 200 : flight === 1 ? 2_000 : 8_000);
  const root = benchRoot(`sqlflight${engine.name}`);
  const sides = await engine.sides(root);
  try {
    const series = sides.flatMap(([side, ops]) =>
      (["set", "get"] as const).map((op) => ({ name: `${side} ${op}`, side, op, run: ops[op] })),
    );
    // Every name exists before the first get, on every side.
    for (const [, side] of sides) await opsPerSecond(side.set, Math.min(NAMES, count(32)), 8);
    const out: BenchRow[] = [];
    for (const flight of flights) {
      const ops = new Map<string, number[]>(series.map((s) => [s.name, []]));
      for (let r = 0; r < rounds; r++) {
        for (const s of r % 2 === 0 ? series : [...series].reverse()) {
          ops.get(s.name)?.push(await opsPerSecond(s.run, count(flight), flight));
        }
      }
      const of = (s: string) => ops.get(s) ?? [];
      progress(
        `sql ${engine.name} @${flight}: ${series.map((s) => `${s.name} ${median(of(s.name)) | 0}/s`).join(", ")}`,
      );
      for (const s of series)
        out.push(row(GROUP, `${engine.name} ${s.name} @${flight} in flight`, "ops/s", of(s.name)));
      for (const [raw] of sides.slice(1)) {
        // Issue 22's goals are against the adapter as shipped, at 32 in flight.
        const goal =
          flight === 32 && raw === "raw" ? (engine.name === "sqlite" ? "goal ≥ 0.7" : "goal ≥ 0.9") : undefined;
        for (const op of ["set", "get"]) {
          const ratio = ratios(of(`library ${op}`), of(`${raw} ${op}`));
          out.push(row(GROUP, `${engine.name} ${op} library/${raw} @${flight} in flight`, "×", ratio, goal));
        }
      }
    }
    return out;
  } finally {
    for (const [, side] of sides) await side.close();
    await engine.cleanup(root);
  }
}

/** The rows of every engine, or of the one named `only`. */
export async function flightRows(
  opts: SuiteOptions,
  only?: string,
  flights: readonly number[] = FLIGHTS,
): Promise<BenchRow[]> {
  const out: BenchRow[] = [];
  for (const engine of ENGINES) {
    if (!only || engine.name === only) out.push(...(await engineRows(engine, opts, flights)));
  }
  return out;
}
