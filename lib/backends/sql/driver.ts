/**
 * The SQL driver: one PrefixStore per prefix over the tables of schema.ts, the same SQL on
 * SQLite and PostgreSQL (placeholders `$n`; engine differences in client.ts).
 *
 * Listing reads `WHERE prefix = $1 AND key > $last ORDER BY key LIMIT n`: a range scan of the
 * (prefix, key) index, exact (names written under this prefix) and independent of other
 * prefixes' rows. Nothing here uses LIKE. Expired rows are never returned (filtered by
 * expires_at on the engine's clock) and are deleted by the next TTL write to their prefix.
 * Tracked prefixes (keys.ts tracksChanges) log every write in the write's own transaction.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { InvalidNameError, InvalidValueError } from "../../errors.js";
import { isWellFormed, joinKey, tracksChanges } from "../../keys.js";
import { LOG_LIMIT } from "../change-log.js";
import type { Driver, Entry, PrefixStore, ScopeOptions } from "../driver.js";
import type { ChangeWriter } from "./changes.js";
import { inList, listParam, nowMs, type Query, type SqlClient } from "./client.js";
import { type Around, sqlQuotas, WRITE_WITHIN, type WritesWithin } from "./quota.js";
import { prefixBase } from "./quota-ddl.js";
import { type Tables, tables } from "./schema.js";
import { sqlTransact } from "./transact.js";
import { chunks, distinctRows, type SqlRow, upsertMerge, upsertParams, upsertRows, upsertText } from "./write.js";

export interface SqlDriverOptions {
  /** Writes a tracked prefix's log covers at least (default LOG_LIMIT). */
  logLimit?: number;
  /** The change feed's writer side (changes.ts); without it writes log no changes. */
  changes?: ChangeWriter | undefined;
  /** Driver.watch, given the driver's scopes (watch.ts); without it the driver cannot watch. */
  watch?: ((scope: (prefix: string) => PrefixStore) => NonNullable<Driver["watch"]>) | undefined;
}

/** Rows one listing query reads. */
export const PAGE = 500;
/** Expired rows one TTL write deletes at most: bounds one write's work. */
export const PRUNE_LIMIT = 1000;
/** The log is trimmed every this many writes of a prefix, not on every write. */
export const TRIM_EVERY = 64;
const VERSION = /^([0-9a-f]{16})\.(\d{1,15})$/;

export function checkedKey(key: string): string {
  if (!isWellFormed(key) || key.includes("\u0000")) {
    throw new InvalidNameError(
      `key ${JSON.stringify(key.slice(0, 80))} contains an unpaired UTF-16 surrogate or a NUL character, which SQL text columns cannot keep`,
    );
  }
  return key;
}

function sqlValue(value: unknown): string {
  if (typeof value === "string") return value;
  throw new InvalidValueError(`the SQL backends store strings (Keyv serialises values); got ${typeof value}`);
}

const validTtl = (ttl: number | undefined) => (typeof ttl === "number" && ttl > 0 ? Math.ceil(ttl) : null);

export function sqlDriver(client: SqlClient, table: string, options: SqlDriverOptions = {}): Driver {
  const limit = Math.max(1, Math.floor(options.logLimit ?? LOG_LIMIT));
  const t = tables(table);
  const quotas = sqlQuotas(client, table);
  // Every workspace data prefix is guarded, raw writes too: the triggers count every row alike.
  const scope = (prefix: string, scopeOptions?: ScopeOptions) =>
    quotas.guard(sqlScope(client, t, table, prefix, limit, options.changes), scopeOptions?.quota ?? prefixBase(prefix));
  const driver: Driver = { scope, quotas: quotas.book };
  return options.watch ? { ...driver, watch: options.watch(scope) } : driver;
}

function sqlScope(
  client: SqlClient,
  t: Tables,
  table: string,
  prefix: string,
  limit: number,
  changes: ChangeWriter | undefined,
): PrefixStore {
  const d = client.dialect;
  const NOW = nowMs(d);
  const live = `(expires_at IS NULL OR expires_at > ${NOW})`;
  const tracked = tracksChanges(prefix);
  const key = (name: string) => checkedKey(joinKey(prefix, name));
  /** Whether this write must log its change for watchers (changes.ts); known without a query but once a second. */
  const watching = () => changes?.watched(prefix) ?? false;
  const nameOf = (k: unknown) => String(k).slice(prefix.length + 1);
  const logNames =
    d === "postgres"
      ? `INSERT INTO ${t.log} (prefix, seq, name) SELECT $1, $2, n FROM unnest($3::text[]) AS u(n) ON CONFLICT DO NOTHING`
      : `INSERT INTO ${t.log} (prefix, seq, name) SELECT $1, $2, value FROM json_each($3) WHERE true ON CONFLICT DO NOTHING`;

  /** Bumps the prefix's version and logs `names` under it; inside the write's transaction. */
  const logChange = async (query: Query, names: readonly string[]) => {
    const [row] = await query(
      `INSERT INTO ${t.versions} (prefix, epoch, seq, floor) VALUES ($1, $2, 1, 0) ` +
        `ON CONFLICT (prefix) DO UPDATE SET seq = ${t.versions}.seq + 1 RETURNING seq`,
      [prefix, randomBytes(8).toString("hex")],
    );
    const seq = Number(row?.seq);
    if (names.length > 0) await query(logNames, [prefix, seq, listParam(d, [...new Set(names)])]);
    await trim(query, seq);
  };

  /** Every TRIM_EVERY writes, drops the log's oldest entries and raises its floor. */
  const trim = async (query: Query, seq: number) => {
    if (seq % TRIM_EVERY !== 0 || seq <= limit) return;
    const floor = seq - limit;
    await query(`DELETE FROM ${t.log} WHERE prefix = $1 AND seq <= $2`, [prefix, floor]);
    await query(`UPDATE ${t.versions} SET floor = $2 WHERE prefix = $1`, [prefix, floor]);
  };

  /**
   * A tracked Postgres batch in one statement (one round trip): the upsert, the version bump and
   * the log as data-modifying CTEs, all applied or none. A trim that falls due runs after it in
   * a transaction of its own; until then the log just covers more than it must.
   */
  const writeLogged = async (rows: readonly SqlRow[]) => {
    const params = upsertParams(prefix, rows);
    const n = params.length + 1;
    params.push(
      randomBytes(8).toString("hex"),
      rows.map((row) => nameOf(row[0])),
    );
    const [row] = await client.query(
      `WITH w AS (${upsertText(t, d, rows.length)}), ` +
        `v AS (INSERT INTO ${t.versions} (prefix, epoch, seq, floor) VALUES ($1, $${n}, 1, 0) ` +
        `ON CONFLICT (prefix) DO UPDATE SET seq = ${t.versions}.seq + 1 RETURNING seq), ` +
        `l AS (INSERT INTO ${t.log} (prefix, seq, name) SELECT $1, v.seq, u.n FROM v, unnest($${n + 1}::text[]) AS u(n) ` +
        "ON CONFLICT DO NOTHING) SELECT seq FROM v",
      params,
    );
    const seq = Number(row?.seq);
    if (seq % TRIM_EVERY === 0 && seq > limit) await client.transaction((query) => trim(query, seq));
  };

  /**
   * Inside a transaction: prunes expired rows (only a TTL write can leave them behind, so only
   * TTL writes prune, as on Redis), upserts, deletes, and logs a tracked prefix's change.
   * Returns the rows written (fewer only under a `guard`: see write.ts).
   */
  const apply = async (
    query: Query,
    rows: readonly SqlRow[],
    deletes: readonly string[] = [],
    guard?: readonly string[],
    watched = false,
  ) => {
    const changed = [...rows, ...deletes].map((row) => nameOf(typeof row === "string" ? row : row[0]));
    let pruned: string[] = [];
    if (rows.some((row) => row[2] !== null)) {
      const gone = await query(
        `DELETE FROM ${t.data} WHERE key IN (SELECT key FROM ${t.data} WHERE prefix = $1 AND expires_at <= ${NOW} ` +
          `LIMIT ${PRUNE_LIMIT}) RETURNING key`,
        [prefix],
      );
      pruned = gone.map((row) => nameOf(row.key));
      changed.push(...pruned);
    }
    const written = await upsertRows(query, t, client, prefix, rows, guard && listParam(d, guard));
    if (deletes.length > 0) await query(`DELETE FROM ${t.data} WHERE ${inList(d, "key", 1)}`, [listParam(d, deletes)]);
    if (tracked) await logChange(query, changed);
    if (watched && changes && !changes.logsByTrigger) {
      // Expired rows pruned here are deletes too; a guarded upsert that comes up short is rolled back.
      await changes.log(query, prefix, "delete", pruned);
      await changes.log(query, prefix, "set", [...new Set(rows.map((row) => nameOf(row[0])))]);
      await changes.log(query, prefix, "delete", deletes.map(nameOf));
    }
    return written;
  };

  const toRow = (k: string, value: unknown, ttl: number | undefined): SqlRow => [k, sqlValue(value), validTtl(ttl)];

  const mergeable = upsertMerge(t, d, prefix);

  const write = async (entries: readonly Entry[], around?: Around) => {
    if (entries.length === 0) return;
    // Every entry is checked before the first statement: a bad one writes nothing.
    const rows = distinctRows(
      d,
      entries.map((e) => toRow(key(e.name), e.value, e.ttl)),
    );
    const watched = await watching();
    if (!around && chunks(client, rows).length === 1 && rows.every((row) => row[2] === null)) {
      // One statement is atomic on its own: no transaction, one round trip.
      if (!tracked && (!watched || changes?.logsByTrigger)) {
        await client.query(upsertText(t, d, rows.length), upsertParams(prefix, rows), mergeable(rows));
        if (watched) await changes?.after(prefix);
        return;
      }
      if (!tracked && changes && d === "postgres") {
        await changes.logged(
          prefix,
          upsertText(t, d, rows.length, false, true),
          upsertParams(prefix, rows),
          "set",
          "1",
        );
        return;
      }
      if (!watched && d === "postgres") return writeLogged(rows);
    }
    const written = (query: Query) => apply(query, rows, [], undefined, watched);
    await client.transaction((query) => (around ? around(query, () => written(query)) : written(query)));
    if (watched) await changes?.after(prefix);
  };

  const remove = async (names: readonly string[]): Promise<number> => {
    if (names.length === 0) return 0;
    const alive = `CASE WHEN ${live} THEN 1 ELSE 0 END AS alive`;
    const statement = `DELETE FROM ${t.data} WHERE ${inList(d, "key", 1)} RETURNING key, ${alive}`;
    const params = [listParam(d, names.map(key))];
    const count = (rows: Array<Record<string, unknown>>) => rows.filter((row) => Number(row.alive) === 1).length;
    const watched = await watching();
    if (!tracked && (!watched || changes?.logsByTrigger)) {
      const deleted = await client.query(statement, params);
      if (watched) await changes?.after(prefix);
      return count(deleted);
    }
    if (!tracked && changes && d === "postgres") {
      const source = `DELETE FROM ${t.data} WHERE ${inList(d, "key", 2)} RETURNING key, ${alive}`;
      return count(await changes.logged(prefix, source, [prefix, params[0]], "delete", "w.alive"));
    }
    const deleted = await client.transaction(async (query) => {
      const rows = await query(statement, params);
      if (tracked) await logChange(query, names);
      const gone = rows.map((row) => nameOf(row.key));
      if (watched && !changes?.logsByTrigger) await changes?.log(query, prefix, "delete", gone);
      return rows;
    });
    if (watched) await changes?.after(prefix);
    return count(deleted);
  };

  const store: PrefixStore = {
    prefix,
    async get(name) {
      const rows = await client.read(`SELECT value FROM ${t.data} WHERE key = $1 AND ${live}`, [key(name)]);
      return rows[0]?.value ?? undefined;
    },
    async getMany(names) {
      if (names.length === 0) return [];
      const keys = names.map(key);
      const rows = await client.read(`SELECT key, value FROM ${t.data} WHERE ${inList(d, "key", 1)} AND ${live}`, [
        listParam(d, keys),
      ]);
      const found = new Map(rows.map((row) => [String(row.key), row.value]));
      return keys.map((k) => found.get(k) ?? undefined);
    },
    async has(name) {
      const rows = await client.read(`SELECT 1 AS x FROM ${t.data} WHERE key = $1 AND ${live}`, [key(name)]);
      return rows.length > 0;
    },
    set: (name, value, ttl) => write([{ name, value, ttl }]),
    async transact(names, decide) {
      const watched = await watching();
      const decisions = await sqlTransact(
        {
          client,
          t,
          lockSpace: `kvws:${table}`,
          key,
          row: (k, { value, ttl }) => toRow(k, value, ttl),
          apply: (query, rows, deletes, guard) => apply(query, rows, deletes, guard, watched),
        },
        names,
        decide,
      );
      if (watched) await changes?.after(prefix);
      return decisions;
    },
    setMany: (entries) => write(entries),
    delete: async (name) => (await remove([name])) > 0,
    deleteMany: (names) => remove(names),
    async *names() {
      let last = "";
      for (;;) {
        const rows = await client.read(
          `SELECT key FROM ${t.data} WHERE prefix = $1 AND key > $2 AND ${live} ORDER BY key LIMIT ${PAGE}`,
          [prefix, last],
        );
        for (const row of rows) yield nameOf(row.key);
        if (rows.length < PAGE) return;
        last = String(rows[rows.length - 1]?.key);
      }
    },
    async page({ after, startsWith, limit }) {
      // Keys sort as their names do (one shared `<prefix>:` head, byte order): a range of the
      // (prefix, key) index from the later of the two bounds, cut at the first name outside `startsWith`.
      const rows = await client.read(
        `SELECT key FROM ${t.data} WHERE prefix = $1 AND key > $2 AND key >= $3 AND ${live} ORDER BY key LIMIT ${Math.floor(limit)}`,
        [prefix, key(after ?? ""), key(startsWith ?? "")],
      );
      const names = rows.map((row) => nameOf(row.key));
      if (startsWith === undefined) return names;
      const cut = names.findIndex((name) => !name.startsWith(startsWith));
      return cut < 0 ? names : names.slice(0, cut);
    },
    async clear() {
      const watched = await watching();
      if (!tracked && !watched) {
        await client.query(`DELETE FROM ${t.data} WHERE prefix = $1`, [prefix]);
        return;
      }
      await client.transaction(async (query) => {
        const drop = async () => {
          await query(`DELETE FROM ${t.data} WHERE prefix = $1`, [prefix]);
        };
        await (watched && changes ? changes.quiet(query, prefix, drop) : drop());
        if (tracked) {
          // The version row goes too: the next write makes a new epoch, so no old version matches again.
          await query(`DELETE FROM ${t.log} WHERE prefix = $1`, [prefix]);
          await query(`DELETE FROM ${t.versions} WHERE prefix = $1`, [prefix]);
        }
        if (watched) await changes?.log(query, prefix, "clear", [null]);
      });
      if (watched) await changes?.after(prefix);
    },
  };
  // quota.ts: a batch SQLite's row triggers refused, written again in a transaction of its own.
  (store as PrefixStore & WritesWithin)[WRITE_WITHIN] = (entries, around) => write(entries, around);
  if (!tracked) return store;

  const anyLive = async () =>
    (await client.read(`SELECT 1 AS x FROM ${t.data} WHERE prefix = $1 AND ${live} LIMIT 1`, [prefix])).length > 0;
  const versionRow = async () =>
    (await client.read(`SELECT epoch, seq, floor FROM ${t.versions} WHERE prefix = $1`, [prefix]))[0];

  store.version = async () => {
    const row = await versionRow();
    if (row) return `${String(row.epoch)}.${Number(row.seq)}`;
    // No version row and no entries: the empty state, always "0". Entries without one cannot be
    // vouched for (written around the driver): a version that matches no other.
    return (await anyLive()) ? `unknown-${randomUUID()}` : "0";
  };

  store.changedSince = async (version) => {
    if (version === "0") return (await versionRow()) === undefined && !(await anyLive()) ? [] : undefined;
    const match = VERSION.exec(version);
    if (!match) return undefined;
    const seq = Number(match[2]);
    // The log first, then the version row: a clear or trim in between shows in the row.
    const names = await client.read(`SELECT DISTINCT name FROM ${t.log} WHERE prefix = $1 AND seq > $2`, [prefix, seq]);
    const row = await versionRow();
    if (!row || row.epoch !== match[1] || Number(row.floor) > seq || Number(row.seq) < seq) return undefined;
    return names.map((r) => String(r.name));
  };
  return store;
}
