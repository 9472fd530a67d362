/**
 * Drivers for the SQL adapters an app already holds (@keyv/sqlite, @keyv/postgres): point reads
 * and writes go through the adapter's own methods; listing and clearing one prefix go through
 * the adapter's own connection and table as a key range — `key >= 'P:' AND key < 'P;'` in byte
 * order, paged on `key > last` — never the adapters' own LIKE (unescaped `_`/`%`, and on SQLite
 * case-blind: clearing `client_a` would take `clientXa` and `CLIENT_A` with it).
 *
 * These tables have only a key column, so the prefix a key was written under is not stored:
 * a nested root's keys (`R:crm:ws:a:…`) lie inside the range of `R`'s collection `crm` and are
 * listed with it. The library's own engines (sqlite:, postgres://) store the prefix and are exact.
 */
import { InvalidNameError, KeyvWorkspacesError, StoreCommandError, UnsupportedStoreError } from "../../errors.js";
import { joinKey } from "../../keys.js";
import type { Decision, Driver, PrefixStore } from "../driver.js";
import { genericDriver } from "../generic.js";
import { pgError, sqliteError } from "./errors.js";

const PAGE = 500;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface SqliteAdapter {
  opts: { dialect: "sqlite"; table: string; db?: string };
  query(sql: string, ...params: unknown[]): Promise<Array<Record<string, unknown>>>;
}

interface PostgresAdapter {
  opts: { dialect: "postgres"; table: string; schema: string; keySize?: number | string; uri?: string };
  query(sql: string, values?: unknown[]): Promise<Array<Record<string, unknown>>>;
}

type SqlAdapter = SqliteAdapter | PostgresAdapter;

/** A @keyv/sqlite or @keyv/postgres adapter, recognised by its shape (any copy, ESM or CJS). */
function sqlAdapter(store: object): SqlAdapter | undefined {
  const { opts, query } = store as { opts?: Record<string, unknown>; query?: unknown };
  if (typeof query !== "function" || typeof opts !== "object" || opts === null) return undefined;
  if (typeof opts.table !== "string") return undefined;
  if (opts.dialect === "sqlite") return store as SqliteAdapter;
  if (opts.dialect === "postgres" && typeof opts.schema === "string") return store as PostgresAdapter;
  return undefined;
}

/** A driver for an app's @keyv/sqlite or @keyv/postgres adapter, or undefined for other stores. */
export function sqlDriverFor(store: object): Driver | undefined {
  const adapter = sqlAdapter(store);
  if (!adapter) return undefined;
  const postgres = adapter.opts.dialect === "postgres";
  const table = postgres
    ? `${identifier(adapter, (adapter as PostgresAdapter).opts.schema)}.${identifier(adapter, adapter.opts.table)}`
    : identifier(adapter, adapter.opts.table);
  const where = postgres ? "@keyv/postgres" : `@keyv/sqlite (${(adapter as SqliteAdapter).opts.db ?? "?"})`;
  const typed = (error: unknown) => (postgres ? pgError(error, where) : sqliteError(error, where));
  const run = async (sql: string, params: unknown[]) => {
    try {
      return await (postgres
        ? (adapter as PostgresAdapter).query(sql, params)
        : (adapter as SqliteAdapter).query(sql, params));
    } catch (error) {
      throw typed(error);
    }
  };
  const keySize = postgres ? Number((adapter as PostgresAdapter).opts.keySize ?? 255) : Number.POSITIVE_INFINITY;
  // Asked once, on first listing (not here: the adapter may not be connected yet), retried after a failure.
  let order: Promise<string> | undefined;
  const byteOrder = () => {
    if (!postgres) return Promise.resolve("");
    order ??= pgByteOrder(run, adapter as PostgresAdapter).catch((error) => {
      order = undefined;
      throw error;
    });
    return order;
  };
  const generic = genericDriver(store as never);

  return {
    scope(prefix) {
      const safe = wrapped(generic.scope(prefix), typed);
      const low = joinKey(prefix, "");
      const high = `${prefix};`;
      // VARCHAR(n) counts characters (code points); a longer key would fail inside the adapter,
      // where a plain Keyv swallows the error. Refused here, before any I/O.
      const fits = (name: string) => {
        const length = [...joinKey(prefix, name)].length;
        if (length > keySize) {
          throw new InvalidNameError(
            `key of ${length} characters under ${JSON.stringify(prefix)} does not fit ${where}'s key column VARCHAR(${keySize}); ` +
              "use the library's own postgres:// engine (keys of any length) or a larger keySize",
          );
        }
        return name;
      };
      const scope: PrefixStore = {
        ...safe,
        set: async (name, value, ttl) => safe.set(fits(name), value, ttl),
        setMany: async (entries) => {
          for (const entry of entries) fits(entry.name);
          return safe.setMany(entries);
        },
        transact: (names, decide) => {
          if (names.length !== 1) {
            return Promise.reject(
              new UnsupportedStoreError(
                `${where} writes one name conditionally at a time (one statement); ${names.length} names need the library's own engine`,
              ),
            );
          }
          return compareAndSet(run, table, postgres, joinKey(prefix, fits(names[0] as string)), decide);
        },
        async *names() {
          const collate = await byteOrder();
          let last = low;
          for (;;) {
            const rows = await run(
              postgres
                ? `SELECT key FROM ${table} WHERE key${collate} >= $1 AND key${collate} < $2 AND key${collate} > $3 ORDER BY key${collate} LIMIT ${PAGE}`
                : `SELECT key FROM ${table} WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ${PAGE}`,
              [low, high, last],
            );
            for (const row of rows) yield String(row.key).slice(low.length);
            if (rows.length < PAGE) return;
            last = String(rows[rows.length - 1]?.key);
          }
        },
        async page({ after, startsWith, limit }) {
          // The same key range as names(), from the later of `after` and `startsWith`, cut at the first
          // name outside `startsWith` (names sort as their keys do: one shared `<prefix>:` head).
          const collate = await byteOrder();
          const params = [low, high, joinKey(prefix, after ?? ""), joinKey(prefix, startsWith ?? "")];
          const rows = await run(
            postgres
              ? `SELECT key FROM ${table} WHERE key${collate} >= $1 AND key${collate} < $2 AND key${collate} > $3 AND key${collate} >= $4 ORDER BY key${collate} LIMIT ${Math.floor(limit)}`
              : `SELECT key FROM ${table} WHERE key >= ? AND key < ? AND key > ? AND key >= ? ORDER BY key LIMIT ${Math.floor(limit)}`,
            params,
          );
          const names = rows.map((row) => String(row.key).slice(low.length));
          const cut = startsWith === undefined ? -1 : names.findIndex((name) => !name.startsWith(startsWith));
          return cut < 0 ? names : names.slice(0, cut);
        },
        async clear() {
          const collate = await byteOrder();
          await run(
            postgres
              ? `DELETE FROM ${table} WHERE key${collate} >= $1 AND key${collate} < $2`
              : `DELETE FROM ${table} WHERE key >= ? AND key < ?`,
            [low, high],
          );
        },
      };
      return scope;
    },
  };
}

/** Attempts of a conditional write through an adapter that lost the race before it gives up. */
const CAS_ATTEMPTS = 50;

/**
 * transact over an app's adapter, one name: the app's own statements share the adapter's
 * connection (SQLite) or pool (PostgreSQL), so no transaction of ours could keep them out or be
 * kept whole. Instead the write is one statement conditioned on what was read — the row still
 * holding the value read, or still absent — which any engine applies atomically, across
 * connections and processes. When it matches nothing another writer came first: read again,
 * decide again (the value includes the entry's version, so an equal value is the same entry).
 */
async function compareAndSet(
  run: (sql: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>,
  table: string,
  postgres: boolean,
  key: string,
  decide: (current: readonly unknown[]) => Decision[],
): Promise<Decision[]> {
  const sql = (text: string) => (postgres ? text : text.replace(/\$(\d+)/g, "?$1"));
  for (let attempt = 1; attempt <= CAS_ATTEMPTS; attempt++) {
    const old = (await run(sql(`SELECT value FROM ${table} WHERE key = $1`), [key]))[0]?.value ?? undefined;
    const decisions = decide([old]);
    const decision = decisions[0];
    if (decision === undefined || (decision === "delete" && old === undefined)) return decisions;
    const [text, params] =
      decision === "delete"
        ? [`DELETE FROM ${table} WHERE key = $1 AND value = $2 RETURNING key`, [key, old]]
        : old === undefined
          ? [
              `INSERT INTO ${table} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING key`,
              [key, decision.value],
            ]
          : [`UPDATE ${table} SET value = $2 WHERE key = $1 AND value = $3 RETURNING key`, [key, decision.value, old]];
    if ((await run(sql(text), params)).length > 0) return decisions;
  }
  throw new StoreCommandError(
    `a conditional write of ${JSON.stringify(key)} lost the race ${CAS_ATTEMPTS} times in a row; try again`,
  );
}

function identifier(adapter: SqlAdapter, name: string): string {
  if (!IDENTIFIER.test(name)) {
    throw new UnsupportedStoreError(
      `the ${adapter.opts.dialect} adapter's table or schema ${JSON.stringify(name)} is not a plain identifier; ` +
        "this library lists it only by plain names",
    );
  }
  return name;
}

/**
 * "" when the key column already compares in byte order (a "C"/"POSIX" collation, or a C.UTF-8
 * database default), so the range uses the primary-key index; otherwise ` COLLATE "C"`: exact,
 * but a scan of the table (docs/sql.md says how to add an index for it).
 */
async function pgByteOrder(
  run: (sql: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>,
  adapter: PostgresAdapter,
): Promise<string> {
  const [row] = await run(
    "SELECT (SELECT collname FROM pg_collation WHERE oid = a.attcollation) AS coll, " +
      "(SELECT datcollate FROM pg_database WHERE datname = current_database()) AS db " +
      "FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = 'key'",
    [`${adapter.opts.schema}.${adapter.opts.table}`],
  );
  const coll = String(row?.coll ?? "");
  const db = String(row?.db ?? "");
  const bytes = ["C", "POSIX", "ucs_basic"].includes(coll) || (coll === "default" && /^(C|POSIX|C\.UTF-?8)$/i.test(db));
  return bytes ? "" : ' COLLATE "C"';
}

/** The generic scope's point operations with the adapter's errors typed. */
function wrapped(base: PrefixStore, typed: (error: unknown) => Error): PrefixStore {
  const guard =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (error) {
        throw error instanceof KeyvWorkspacesError ? error : typed(error);
      }
    };
  return {
    prefix: base.prefix,
    get: guard(base.get),
    getMany: guard(base.getMany),
    has: guard(base.has),
    set: guard(base.set),
    setMany: guard(base.setMany),
    delete: guard(base.delete),
    deleteMany: guard(base.deleteMany),
    names: base.names,
    clear: base.clear,
  };
}
