import { type Dialect, quote, type SqlClient } from "./client.js";

/**
 * The tables of one store, named after its data table:
 *
 *   <t>           key (primary key, byte order), prefix (the prefix the name was written under),
 *                 value, expires_at (ms on the engine's clock, NULL = never). Listing one prefix is
 *                 an index range scan on (prefix, key): exact by construction — a nested root's key
 *                 `R:crm:ws:a:x` is booked under its own prefix, never under `R:crm`.
 *   <t>_versions  per tracked prefix: a random epoch (made with the row, so versions never repeat
 *                 across a clear), a write counter, and the oldest counter the log still covers.
 *   <t>_log       per tracked prefix: (seq, name) for every name each write changed.
 *   <t>_changes   the change feed (storage.watch, watch.ts): what each write changed, appended only
 *                 while someone watches the write's scope (`base`, keys.ts changeBase), pruned by age.
 *                 On PostgreSQL each row carries its transaction id (`tx`), which watchers read by.
 *   <t>_watchers  one row per watcher and scope it watches, kept alive by a heartbeat: what writers
 *                 check (at most once a second per scope) to know whether to append changes.
 */
export interface Tables {
  readonly data: string;
  readonly versions: string;
  readonly log: string;
  readonly changes: string;
  readonly watchers: string;
}

export function tables(table: string): Tables {
  return {
    data: quote(table),
    versions: quote(`${table}_versions`),
    log: quote(`${table}_log`),
    changes: quote(`${table}_changes`),
    watchers: quote(`${table}_watchers`),
  };
}

function ddl(dialect: Dialect, table: string): string[] {
  const t = tables(table);
  // Postgres compares text by the database's collation unless told otherwise; byte order is "C".
  const text = dialect === "postgres" ? 'TEXT COLLATE "C"' : "TEXT";
  return [
    `CREATE TABLE IF NOT EXISTS ${t.data} (key ${text} PRIMARY KEY, prefix ${text} NOT NULL, value TEXT NOT NULL, expires_at BIGINT NULL)`,
    `CREATE INDEX IF NOT EXISTS ${quote(`${table}_prefix`)} ON ${t.data} (prefix, key)`,
    `CREATE INDEX IF NOT EXISTS ${quote(`${table}_expiry`)} ON ${t.data} (prefix, expires_at) WHERE expires_at IS NOT NULL`,
    `CREATE TABLE IF NOT EXISTS ${t.versions} (prefix ${text} PRIMARY KEY, epoch TEXT NOT NULL, seq BIGINT NOT NULL, floor BIGINT NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${t.log} (prefix ${text} NOT NULL, seq BIGINT NOT NULL, name ${text} NOT NULL, PRIMARY KEY (prefix, seq, name))`,
    ...watchDdl(dialect, table),
  ];
}

function watchDdl(dialect: Dialect, table: string): string[] {
  const t = tables(table);
  const text = dialect === "postgres" ? 'TEXT COLLATE "C"' : "TEXT";
  // SQLite: AUTOINCREMENT, so an id is never handed out again after pruning (watchers read `id > last`).
  const id =
    dialect === "postgres"
      ? "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
      : "id INTEGER PRIMARY KEY AUTOINCREMENT";
  const tx = dialect === "postgres" ? ", tx xid8 NOT NULL DEFAULT pg_current_xact_id()" : "";
  return [
    `CREATE TABLE IF NOT EXISTS ${t.changes} (${id}, base ${text} NOT NULL, prefix ${text} NOT NULL, name ${text} NULL, op TEXT NOT NULL, at BIGINT NOT NULL${tx})`,
    `CREATE INDEX IF NOT EXISTS ${quote(`${table}_changes_base`)} ON ${t.changes} (base, ${dialect === "postgres" ? "tx" : "id"})`,
    `CREATE TABLE IF NOT EXISTS ${t.watchers} (base ${text} NOT NULL, id TEXT NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (base, id))`,
  ];
}

/**
 * Creates the tables unless they exist. Existence is checked first: a workspace role (rls.ts)
 * may use the tables but not create anything, and Postgres checks CREATE rights even for
 * `CREATE TABLE IF NOT EXISTS` of a table that is there. Resolves whether the change-feed tables
 * are there: a store made before them, opened by a role that may not create them, still opens
 * (and cannot be watched until an owner opens it once).
 */
export async function ensureSchema(client: SqlClient, table: string): Promise<boolean> {
  const core = [table, `${table}_versions`, `${table}_log`];
  const feed = [`${table}_changes`, `${table}_watchers`];
  const count = async (names: string[]) =>
    Number(
      (client.dialect === "postgres"
        ? await client.query(
            "SELECT count(*)::int AS n FROM unnest($1::text[]) AS t(name) WHERE to_regclass(quote_ident(name)) IS NOT NULL",
            [names],
          )
        : await client.query(
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN (SELECT value FROM json_each($1))",
            [JSON.stringify(names)],
          ))[0]?.n,
    );
  const all = [...core, ...feed];
  if ((await count(all)) === all.length) return true;
  const hasCore = (await count(core)) === core.length;
  try {
    await create(client, table);
    return true;
  } catch (error) {
    // 42501: not allowed to create; the store itself is usable without its change feed.
    if (hasCore && (error as { cause?: { code?: unknown } }).cause?.code === "42501") return false;
    throw error;
  }
}

async function create(client: SqlClient, table: string): Promise<void> {
  if (client.dialect === "postgres") {
    // Two processes creating the same tables at once collide on the catalog (23505): one lock orders them.
    await client.transaction(async (query) => {
      await query("SELECT pg_advisory_xact_lock(hashtext($1))", [`kvws:${table}`]);
      for (const statement of ddl("postgres", table)) await query(statement);
    });
    return;
  }
  await client.transaction(async (query) => {
    for (const statement of ddl("sqlite", table)) await query(statement);
  });
}
