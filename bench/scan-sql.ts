/**
 * The scan suite's SQL rows: list one workspace's 100 artifacts while other workspaces hold
 * 10k, 100k (and with --full 1M) rows, on SQLite and PostgreSQL:
 *   - library list(): the library's own engine (sqlite:, postgres://): an index range on (prefix, key);
 *   - adapter range: scopeStore over an app's @keyv/sqlite / @keyv/postgres adapter, the driver's
 *     key range `P:` … `P;` on the adapter's own table and connection;
 *   - LIKE 'P:%': what the adapters' own clear/iterator filter by (a scan: SQLite's LIKE ignores
 *     case so it cannot use the index; Postgres uses it only under the "C" collation);
 *   - adapter iterator(): the adapter's own iterator over the namespace (pages of 10 by LIKE).
 * Other rows are inserted in bulk (one INSERT … SELECT per batch), outside the timing.
 */
import KeyvPostgres from "@keyv/postgres";
import KeyvSqlite from "@keyv/sqlite";
import type { SqlClient } from "../lib/backends/sql/client.js";
import type { SqlStore } from "../lib/backends/sql/store.js";
import { createStorage, openBackend } from "../lib/index.js";
import { dropPgTables, PG_URL, pgQuery, removeSqlite, sqliteFile } from "../spec/support/sql.js";
import {
  type BenchRow,
  growth,
  interleaved,
  progress,
  type RoundOptions,
  ratios,
  row,
  type SuiteOptions,
  samples,
} from "./rows.js";
import { benchRoot } from "./support.js";

const GROUP = "scan";
const ENTRIES = 100;
const OTHER_WORKSPACES = 1000;
const VALUE = JSON.stringify({ value: { text: "z".repeat(80) } });
const BATCH = 50_000;

type Query = (sql: string, params: unknown[]) => Promise<unknown>;

interface Engine {
  name: "sqlite" | "postgres";
  url(root: string): string;
  adapter(root: string): KeyvSqlite | KeyvPostgres;
  adapterTable(root: string): string;
  ownTable(root: string): string;
  cleanup(root: string): Promise<void>;
  /** INSERT … SELECT of rows [from, to) for other workspaces; `$1` = root, `$2` = from, `$3` = to. */
  series(select: string): string;
}

const ENGINES: Engine[] = [
  {
    name: "sqlite",
    url: (root) => `sqlite:${sqliteFile(root)}`,
    adapter: (root) => new KeyvSqlite({ uri: `sqlite://${sqliteFile(`${root}_adapter`)}`, table: "keyv" }),
    adapterTable: () => "keyv",
    ownTable: () => "kvws",
    async cleanup(root) {
      removeSqlite(sqliteFile(root));
      removeSqlite(sqliteFile(`${root}_adapter`));
    },
    series: (select) => `WITH RECURSIVE g(i) AS (SELECT $2 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < $3) ${select}`,
  },
  {
    name: "postgres",
    url: (root) => `${PG_URL}?table=${root}`,
    adapter: (root) => new KeyvPostgres({ uri: PG_URL, schema: `s_${root}`, table: "keyv" }),
    adapterTable: (root) => `s_${root}.keyv`,
    ownTable: (root) => `"${root}"`,
    async cleanup(root) {
      await dropPgTables(root);
      await pgQuery(`DROP SCHEMA IF EXISTS "s_${root}" CASCADE`);
    },
    series: (select) => `WITH g(i) AS (SELECT generate_series($2::int, $3::int - 1)) ${select}`,
  },
];

function sizes(opts: SuiteOptions): number[] {
  if (opts.tiny) return [1000, 3000];
  return opts.full ? [10_000, 100_000, 1_000_000] : [10_000, 100_000];
}

function rounds(opts: SuiteOptions): RoundOptions {
  return opts.tiny ? { rounds: 2, time: 5, iterations: 2 } : { rounds: 4, time: 250, iterations: 5 };
}

/** `<root>:ws:o<i % 1000>:artifacts:n<i>`, built in SQL so a million rows cost one statement per batch. */
function otherKeys(engine: Engine, into: string, ownTable: boolean): string {
  const ws = `$1 || ':ws:o' || (i % ${OTHER_WORKSPACES}) || ':artifacts'`;
  const cast = engine.name === "postgres" ? "::text" : "";
  const columns = ownTable ? "(key, prefix, value)" : "(key, value)";
  const values = ownTable ? `${ws} || ':n' || i, ${ws}, '${VALUE}'` : `${ws} || ':n' || i, '${VALUE}'`;
  return engine.series(`INSERT INTO ${into} ${columns} SELECT ${values.replaceAll("$1", `$1${cast}`)} FROM g`);
}

async function load(query: Query, statement: string, root: string, from: number, to: number): Promise<void> {
  for (let start = from; start < to; start += BATCH) await query(statement, [root, start, Math.min(to, start + BATCH)]);
}

async function engineSuite(engine: Engine, opts: SuiteOptions): Promise<BenchRow[]> {
  const root = benchRoot(`scan${engine.name}`).toLowerCase();
  const backend = await openBackend(engine.url(root));
  const adapter = engine.adapter(root);
  const out: BenchRow[] = [];
  try {
    const client: SqlClient = (backend.store as SqlStore).sqlClient;
    const storage = createStorage(backend.store, { root, workspaceId: "target" });
    const prefix = storage.keyspace.prefix("artifacts");
    const adapted = createStorage(adapter, { root, workspaceId: "target" });
    for (let i = 0; i < ENTRIES; i++) {
      await storage.artifacts.save(`a${i}`, { i });
      await adapted.artifacts.save(`a${i}`, { i });
    }
    const table = engine.ownTable(root);
    const adapterQuery: Query = (sql, params) =>
      (adapter.query as (s: string, p: unknown[]) => Promise<unknown>)(sql, params);
    const ownInsert = otherKeys(engine, table, true);
    const adapterInsert = otherKeys(engine, engine.adapterTable(root), false);
    const like = `SELECT key, value FROM ${engine.adapterTable(root)} WHERE key LIKE ${engine.name === "postgres" ? "$1" : "?"}`;
    const bySize = new Map<number, Record<string, number[]>>();
    let loaded = 0;
    for (const size of sizes(opts)) {
      progress(`scan: ${engine.name} loading other rows up to ${size}`);
      await load((sql, params) => client.query(sql, params), ownInsert, root, loaded, size);
      await load(adapterQuery, adapterInsert, root, loaded, size);
      if (engine.name === "postgres") {
        await client.query(`ANALYZE ${table}`);
        await adapterQuery(`ANALYZE ${engine.adapterTable(root)}`, []);
      }
      loaded = size;
      progress(`scan: ${engine.name} list at ${size}`);
      const expect = (n: number, what: string) => {
        if (n !== ENTRIES) throw new Error(`${what} found ${n} entries, expected ${ENTRIES}`);
      };
      const results = await interleaved(
        [
          { name: "library", fn: async () => expect((await storage.artifacts.list()).length, "list()") },
          { name: "adapter range", fn: async () => expect((await adapted.artifacts.list()).length, "adapter list()") },
          {
            name: "like",
            fn: async () => expect(((await adapterQuery(like, [`${prefix}:%`])) as unknown[]).length, "LIKE"),
          },
          {
            name: "iterator",
            fn: async () => {
              let n = 0;
              for await (const _ of adapter.iterator(prefix)) n++;
              expect(n, "iterator()");
            },
          },
        ],
        rounds(opts),
      );
      const series = {
        "library list()": samples(results, "library"),
        "adapter range": samples(results, "adapter range"),
        "LIKE 'P:%'": samples(results, "like"),
        "adapter iterator()": samples(results, "iterator"),
      };
      bySize.set(size, series);
      for (const [name, values] of Object.entries(series)) {
        out.push(row(GROUP, `${engine.name} list 100: ${name}, ${size} other rows`, "ms", values));
      }
      out.push(
        row(
          GROUP,
          `${engine.name} list 100: LIKE / library, ${size} other rows`,
          "×",
          ratios(series["LIKE 'P:%'"], series["library list()"]),
        ),
      );
    }
    out.push(...growth(GROUP, `${engine.name} list 100`, bySize, "rows"));
  } finally {
    await adapter.disconnect();
    await backend.close();
    await engine.cleanup(root);
  }
  return out;
}

export async function sqlScanRows(opts: SuiteOptions): Promise<BenchRow[]> {
  const out: BenchRow[] = [];
  for (const engine of ENGINES) out.push(...(await engineSuite(engine, opts)));
  return out;
}
