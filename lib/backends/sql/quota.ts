/**
 * Driver.quotas on the library's SQL engines (quota-ddl.ts has the tables and triggers).
 *
 * Counters count the rows stored, expired or not; read() subtracts the expired rows not yet
 * deleted, in the same statement, so quota() reports live entries as stats() does. A write the
 * triggers refuse first deletes the workspace's expired rows (they count no longer) and, when it
 * deleted any, runs once more; refused again, it throws QuotaExceededError with the use and the
 * write's growth counted as exceeds() counts them.
 *
 * setQuota counts the workspace while no writer can write: SQLite inside BEGIN IMMEDIATE (the
 * database's write lock), PostgreSQL under the data table's SHARE ROW EXCLUSIVE lock (writers of
 * every workspace wait for the count). Every write reads the limit in its own statement, so a
 * quota set or removed applies to the next write of every storage and process at once.
 */
import { PermissionDeniedError } from "../../errors.js";
import { joinKey } from "../../keys.js";
import { exceeds, type Quota, type QuotaDelta, type QuotaUsage, quotaExceeded, valueBytes } from "../../quota.js";
import type { Decision, Entry, PrefixStore, QuotaBook } from "../driver.js";
import { inList, listParam, nowMs, type Query, quote, type SqlClient } from "./client.js";
import {
  baseSql,
  bytesSql,
  dropTriggers,
  LISTED_BASES,
  pgCheck,
  pgFunction,
  pgTriggers,
  pgTxColumns,
  QUOTA_MARKER,
  quotaTableDdl,
  quotaTableName,
  sqliteTriggers,
} from "./quota-ddl.js";

/** sqlScope's: writes `entries` in a transaction of their own, `around` that write (SQLite's batches). */
export const WRITE_WITHIN = Symbol("kvws.sql.writeWithin");
export type Around = (query: Query, write: () => Promise<unknown>) => Promise<unknown>;
export interface WritesWithin {
  [WRITE_WITHIN](entries: readonly Entry[], around: Around): Promise<void>;
}

export interface SqlQuotas {
  readonly book: QuotaBook;
  /** `store`, checked against workspace `base`'s quota (undefined: no workspace, `store` as it is). */
  guard(store: PrefixStore, base: string | undefined): PrefixStore;
}

const causes = (error: unknown) => {
  const out: unknown[] = [];
  for (let e = error; e && out.length < 4; e = (e as { cause?: unknown }).cause) out.push(e);
  return out;
};

/** Whether `error` is a quota trigger's refusal (pgError/sqliteError keep the engine's error as cause). */
export const isQuotaRaise = (error: unknown) =>
  causes(error).some((e) => e instanceof Error && e.message.includes(QUOTA_MARKER));

const missingTable = (error: unknown) =>
  causes(error).some(
    (e) => (e as { code?: unknown }).code === "42P01" || (e instanceof Error && /no such table/.test(e.message)),
  );

/** Rows of workspace `base`'s data: an index range of prefixes, then the exact mapping. */
const rowsOf = (client: SqlClient) => `prefix >= $1 AND prefix < $2 AND ${baseSql(client.dialect, "prefix")} = $3`;
const bounds = (base: string) => [`${base}:`, `${base};`, base];

export function sqlQuotas(client: SqlClient, table: string): SqlQuotas {
  const d = client.dialect;
  const D = quote(table);
  const Q = quote(quotaTableName(table));
  const NOW = nowMs(d);
  const bytes = bytesSql(d, "value");

  const read = async (base: string, query: Query = client.query): Promise<QuotaUsage | undefined> => {
    let rows: Array<Record<string, unknown>>;
    try {
      rows = await query(
        `SELECT q.max_entries, q.max_bytes, q.entries - x.n AS entries, q.bytes - x.b AS bytes FROM ${Q} AS q, ` +
          `(SELECT count(*) AS n, coalesce(sum(${bytes}), 0) AS b FROM ${D} WHERE ${rowsOf(client)} AND expires_at <= ${NOW}) AS x ` +
          "WHERE q.base = $3",
        bounds(base),
      );
    } catch (error) {
      if (missingTable(error)) return undefined;
      throw error;
    }
    const row = rows[0];
    if (!row) return undefined;
    const limit: Quota = {};
    if (row.max_entries != null) limit.maxEntries = Number(row.max_entries);
    if (row.max_bytes != null) limit.maxBytes = Number(row.max_bytes);
    return { limit, entries: Number(row.entries), bytes: Number(row.bytes) };
  };

  /** Deletes the workspace's expired rows (the triggers uncount them); how many there were. */
  const sweep = async (base: string) =>
    (
      await client.query(
        `DELETE FROM ${D} WHERE ${rowsOf(client)} AND expires_at <= ${NOW} RETURNING 1 AS x`,
        bounds(base),
      )
    ).length;

  const setSqlite = async (query: Query, base: string, quota: Quota | null) => {
    await query(quotaTableDdl(d, table));
    if (quota) for (const statement of sqliteTriggers(table)) await query(statement);
    await write(query, base, quota);
    if (!quota) await dropWhenUnused(query);
  };

  const setPostgres = async (query: Query, base: string, quota: Quota | null) => {
    const [row] = await query("SELECT current_schema() AS s, to_regclass($1) IS NOT NULL AS made", [
      quote(quotaTableName(table)),
    ]);
    const schema = String(row?.s);
    // Serialises setQuota callers (a CREATE of the quota table or trigger races on the catalog).
    await query("SELECT pg_advisory_xact_lock(hashtext($1))", [`kvws-quota:${schema}.${table}`]);
    if (!row?.made) await query(quotaTableDdl(d, table));
    const [may] = await query("SELECT has_table_privilege($1, 'INSERT') AS ok", [`${quote(schema)}.${Q}`]);
    if (!may?.ok) {
      throw new PermissionDeniedError(
        `setQuota needs the role that owns the store: this role may not write ${quotaTableName(table)} (a workspace role cannot change quotas)`,
      );
    }
    // Writers of every workspace wait from here until COMMIT: the count below misses none of them.
    await query(`LOCK TABLE ${quote(schema)}.${D} IN SHARE ROW EXCLUSIVE MODE`);
    await query(pgTxColumns(schema, table));
    await write(query, base, quota);
    const bases = (await query(`SELECT base FROM ${Q} ORDER BY base LIMIT ${LISTED_BASES + 1}`)).map((r) =>
      String(r.base),
    );
    if (bases.length === 0) {
      for (const statement of dropTriggers(d, table, schema)) await query(statement);
      return;
    }
    await query(pgFunction(schema, table));
    for (const statement of [...pgCheck(schema, table), ...pgTriggers(schema, table, bases)]) await query(statement);
  };

  /** Counts what the workspace stores now (expired rows too: the triggers count them) and keeps the limit. */
  const write = async (query: Query, base: string, quota: Quota | null) => {
    if (!quota) {
      await query(`DELETE FROM ${Q} WHERE base = $1`, [base]);
      return;
    }
    await query(
      `INSERT INTO ${Q} (base, max_entries, max_bytes, entries, bytes) ` +
        `SELECT $3, CAST($4 AS BIGINT), CAST($5 AS BIGINT), count(*), coalesce(sum(${bytes}), 0) FROM ${D} WHERE ${rowsOf(client)} ` +
        "ON CONFLICT (base) DO UPDATE SET max_entries = excluded.max_entries, max_bytes = excluded.max_bytes, " +
        "entries = excluded.entries, bytes = excluded.bytes",
      [...bounds(base), quota.maxEntries ?? null, quota.maxBytes ?? null],
    );
  };

  /** The last quota gone: the triggers go too, so writers pay nothing for the feature again. */
  const dropWhenUnused = async (query: Query, schema?: string) => {
    if ((await query(`SELECT 1 AS x FROM ${Q} LIMIT 1`)).length > 0) return;
    for (const statement of dropTriggers(d, table, schema)) await query(statement);
  };

  const book: QuotaBook = {
    read,
    async set(base, quota) {
      await client.transaction((query) => (d === "postgres" ? setPostgres : setSqlite)(query, base, quota));
    },
  };

  const guard = (store: PrefixStore, base: string | undefined): PrefixStore => {
    if (base === undefined) return store;
    /**
     * Runs `work`; refused, sweeps expired rows and runs it once more, else runs `whole` (a batch
     * judged as one) if given, else throws with `delta()`'s numbers.
     */
    const checked = async <T>(
      work: () => Promise<T>,
      delta: () => Promise<QuotaDelta>,
      whole?: () => Promise<T>,
    ): Promise<T> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await work();
        } catch (error) {
          if (!isQuotaRaise(error)) throw error;
          if (attempt < 3 && (await sweep(base)) > 0) continue;
          const usage = await read(base);
          // Removed meanwhile: the next attempt is not limited.
          if (!usage?.limit) {
            if (attempt < 3) continue;
            throw error;
          }
          if (whole) return await whole();
          throw quotaExceeded(base, usage.limit, usage, await delta());
        }
      }
    };
    /** What writing `entries` adds to what `oldBytes` says is stored (the last of a name wins, as in the write). */
    const deltaOf = async (
      entries: readonly Entry[],
      oldBytes: (names: string[]) => Promise<Array<number | undefined>>,
    ): Promise<QuotaDelta> => {
      const last = new Map(entries.map((e) => [e.name, e.value]));
      const names = [...last.keys()];
      const old = await oldBytes(names);
      const delta = { entries: 0, bytes: 0 };
      names.forEach((name, i) => {
        if (old[i] === undefined) delta.entries++;
        delta.bytes += valueBytes(last.get(name)) - (old[i] ?? 0);
      });
      return delta;
    };
    const entriesDelta = (entries: readonly Entry[]) =>
      deltaOf(entries, async (names) =>
        (await store.getMany(names)).map((v) => (v === undefined ? undefined : valueBytes(v))),
      );
    /**
     * SQLite's triggers check row by row, so they can refuse a batch for the order of its rows, or
     * for one growing row in a workspace over a limit set below its use, though exceeds() lets the
     * batch through as a whole. Such a batch runs again in a transaction of its own, which holds the
     * database's write lock: checked there as a whole and, if it passes, written with the
     * workspace's limits lifted and put back before COMMIT, so no other writer sees them lifted.
     */
    const within = d === "sqlite" ? (store as Partial<WritesWithin>)[WRITE_WITHIN] : undefined;
    const wholeBatch = (entries: readonly Entry[]) =>
      within?.(entries, async (query, write) => {
        const usage = await read(base, query);
        const limit = usage?.limit;
        if (!usage || !limit) return void (await write());
        const delta = await batchDelta(query, entries);
        if (exceeds(limit, usage, delta)) throw quotaExceeded(base, limit, usage, delta);
        await query(`UPDATE ${Q} SET max_entries = NULL, max_bytes = NULL WHERE base = $1`, [base]);
        await write();
        await query(`UPDATE ${Q} SET max_entries = $2, max_bytes = $3 WHERE base = $1`, [
          base,
          limit.maxEntries ?? null,
          limit.maxBytes ?? null,
        ]);
      });
    /** entriesDelta, read inside the batch's transaction (which may follow uncommitted writes of its group). */
    const batchDelta = (query: Query, entries: readonly Entry[]) =>
      deltaOf(entries, async (names) => {
        const keys = names.map((name) => joinKey(store.prefix, name));
        const rows = await query(
          `SELECT key, ${bytes} AS b FROM ${D} WHERE ${inList(d, "key", 1)} AND (expires_at IS NULL OR expires_at > ${NOW})`,
          [listParam(d, keys)],
        );
        const old = new Map(rows.map((row) => [String(row.key), Number(row.b)]));
        return keys.map((key) => old.get(key));
      });
    const guarded: PrefixStore = {
      ...store,
      set: (name, value, ttl) =>
        checked(
          () => store.set(name, value, ttl),
          () => entriesDelta([{ name, value }]),
        ),
      setMany: (entries) =>
        checked(
          () => store.setMany(entries),
          () => entriesDelta(entries),
          within && entries.length > 1 ? async () => void (await wholeBatch(entries)) : undefined,
        ),
    };
    const transact = store.transact?.bind(store);
    if (transact) {
      guarded.transact = (names, decide) => {
        let seen: { current: readonly unknown[]; decisions: Decision[] } | undefined;
        const watched = (current: readonly unknown[]) => {
          const decisions = decide(current);
          seen = { current, decisions };
          return decisions;
        };
        return checked(
          () => transact(names, watched),
          async () => {
            const delta = { entries: 0, bytes: 0 };
            seen?.decisions.forEach((decision, i) => {
              const old = seen?.current[i];
              if (decision === undefined) return;
              if (decision === "delete") {
                if (old !== undefined) delta.entries--;
                delta.bytes -= valueBytes(old);
                return;
              }
              if (old === undefined) delta.entries++;
              delta.bytes += valueBytes(decision.value) - valueBytes(old);
            });
            return delta;
          },
        );
      };
    }
    return guarded;
  };

  return { book, guard };
}
