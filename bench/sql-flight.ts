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
 *     hands each statement to its worker threads as it comes.
 *   sqlite: the library: WAL, synchronous=NORMAL (an acknowledged write survives a process crash,
 *     as the rollback journal's does; an OS crash may lose the last commits), a TTL-aware upsert
 *     that books the key's prefix; sets that arrive together are committed in one transaction.
 *   raw @keyv/postgres: a pg Pool (its default size, 10), one statement per set or get.
 *   postgres: the library: a pg Pool of its own, one statement per set or get.
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
  library(root: string): Promise<Side>;
  raw(root: string): Promise<Side>;
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

const ENGINES: Engine[] = [
  {
    name: "sqlite",
    library: (root) => librarySide(`sqlite:${sqliteFile(root)}`, root),
    raw: async (root) =>
      rawSide(new Keyv({ store: new KeyvSqlite({ uri: `sqlite://${sqliteFile(`${root}_raw`)}`, table: "keyv" }) })),
    async cleanup(root) {
      removeSqlite(sqliteFile(root));
      removeSqlite(sqliteFile(`${root}_raw`));
    },
  },
  {
    name: "postgres",
    library: (root) => librarySide(pgUrl(root), root),
    raw: async (root) =>
      rawSide(new Keyv({ store: new KeyvPostgres({ uri: PG_URL, schema: `s_${root}`, table: "keyv" }) })),
    async cleanup(root) {
      await dropPgTables(pgTable(root));
      await pgQuery(`DROP SCHEMA IF EXISTS "s_${root}" CASCADE`);
    },
  },
];

const SERIES = ["library set", "raw set", "library get", "raw get"] as const;
type Series = (typeof SERIES)[number];

async function engineRows(engine: Engine, opts: SuiteOptions, flights: readonly number[]): Promise<BenchRow[]> {
  const rounds = opts.tiny ? 1 : 5;
  const count = (flight: number) => (opts.tiny ? 200 : flight === 1 ? 2_000 : 8_000);
  const root = benchRoot(`sqlflight${engine.name}`);
  const library = await engine.library(root);
  const raw = await engine.raw(root);
  try {
    const sides: Record<Series, Op> = {
      "library set": library.set,
      "raw set": raw.set,
      "library get": library.get,
      "raw get": raw.get,
    };
    // Every name exists before the first get, on both sides.
    for (const side of [library, raw]) await opsPerSecond(side.set, Math.min(NAMES, count(32)), 8);
    const out: BenchRow[] = [];
    for (const flight of flights) {
      const ops = new Map<Series, number[]>(SERIES.map((s) => [s, []]));
      for (let r = 0; r < rounds; r++) {
        for (const series of r % 2 === 0 ? SERIES : [...SERIES].reverse()) {
          ops.get(series)?.push(await opsPerSecond(sides[series], count(flight), flight));
        }
      }
      const of = (s: Series) => ops.get(s) ?? [];
      progress(`sql ${engine.name} @${flight}: ${SERIES.map((s) => `${s} ${median(of(s)) | 0}/s`).join(", ")}`);
      for (const series of SERIES) {
        out.push(row(GROUP, `${engine.name} ${series} @${flight} in flight`, "ops/s", of(series)));
      }
      const goal = (op: string) =>
        flight === 32 ? (engine.name === "sqlite" ? "goal ≥ 0.7" : "goal ≥ 0.9") : `${op}, same round`;
      out.push(
        row(
          GROUP,
          `${engine.name} set library/raw @${flight} in flight`,
          "×",
          ratios(of("library set"), of("raw set")),
          goal("set"),
        ),
        row(
          GROUP,
          `${engine.name} get library/raw @${flight} in flight`,
          "×",
          ratios(of("library get"), of("raw get")),
          goal("get"),
        ),
      );
    }
    return out;
  } finally {
    await library.close();
    await raw.close();
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
