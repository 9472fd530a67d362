/**
 * PrefixStore.transact on the library's SQL engines: read, decide and write in one transaction
 * that no other conditional write to those names can interleave with, across connections and
 * processes — absent names included.
 *
 *   SQLite: the client's transactions begin IMMEDIATE, taking the database's one write lock
 *   before the first read; no other connection can write until COMMIT, so what was read is what
 *   is overwritten. A busy lock is waited for (retryBusy) and the whole transaction retried.
 *
 *   PostgreSQL: `SELECT … FOR UPDATE` locks rows that exist but not rows that do not, so two
 *   "only if absent" writers would both read nothing. Each name's key takes a transaction-scoped
 *   advisory lock first (sorted, so two transactions never wait on each other in a cycle), in a
 *   statement of its own: under READ COMMITTED the read that follows sees what the previous holder
 *   committed. Writers that take no lock (a plain save) cannot change a row read FOR UPDATE, and a
 *   row they insert meanwhile is not overwritten: the upsert only replaces rows read (its guard),
 *   comes up short, and the transaction is rolled back and run again with what is there now.
 */
import { StoreCommandError } from "../../errors.js";
import type { Decision } from "../driver.js";
import { inList, listParam, nowMs, type Query, type SqlClient } from "./client.js";
import type { Tables } from "./schema.js";
import { distinctRows, type SqlRow } from "./write.js";

/** Attempts of a Postgres transact that lost a race (a concurrent insert, a deadlock) before it gives up. */
export const TRANSACT_ATTEMPTS = 50;

export interface TransactScope {
  client: SqlClient;
  t: Tables;
  /** Names the advisory locks, so one key of two tables (or databases' schemas) never share a lock. */
  lockSpace: string;
  key(name: string): string;
  row(key: string, decision: { value: unknown; ttl?: number | undefined }): SqlRow;
  /** Prunes, writes, deletes and logs inside `query`'s transaction; returns the rows written. */
  apply(query: Query, rows: readonly SqlRow[], deletes: readonly string[], guard?: readonly string[]): Promise<number>;
}

/** The race was lost to a writer that took no lock: roll back and run again. */
class LostRace extends Error {}

const raced = (error: unknown) => {
  if (error instanceof LostRace) return true;
  // 40P01 deadlock (with a plain batch that locks the same rows in another order), 40001 serialization.
  const code = (error as { cause?: { code?: unknown } }).cause?.code;
  return code === "40P01" || code === "40001";
};

export async function sqlTransact(
  scope: TransactScope,
  names: readonly string[],
  decide: (current: readonly unknown[]) => Decision[],
): Promise<Decision[]> {
  const { client, t } = scope;
  const d = client.dialect;
  const postgres = d === "postgres";
  const keys = names.map(scope.key);
  const list = listParam(d, keys);
  const lock =
    keys.length === 1
      ? "SELECT pg_advisory_xact_lock(hashtextextended($1 || $2, 0))"
      : // A volatile function in the target list runs after ORDER BY: the locks are taken in hash order.
        "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended($1 || k, 0) AS h " +
        "FROM unnest($2::text[]) AS u(k)) AS l ORDER BY h";
  const read =
    `SELECT key, value, CASE WHEN expires_at IS NULL OR expires_at > ${nowMs(d)} THEN 1 ELSE 0 END AS alive ` +
    `FROM ${t.data} WHERE ${inList(d, "key", 1)}${postgres ? " ORDER BY key FOR UPDATE" : ""}`;

  const once = (query: Query) => async () => {
    if (postgres) await query(lock, [`${scope.lockSpace}:`, keys.length === 1 ? keys[0] : keys]);
    const found = new Map((await query(read, [list])).map((row) => [String(row.key), row]));
    const current = keys.map((key) => {
      const row = found.get(key);
      return row && Number(row.alive) === 1 ? row.value : undefined;
    });
    const decisions = decide(current);
    const rows: SqlRow[] = [];
    const deletes: string[] = [];
    keys.forEach((key, i) => {
      const decision = decisions[i];
      if (decision === "delete") {
        // A name read as absent has nothing to delete; one written meanwhile is not ours to remove.
        if (found.has(key)) deletes.push(key);
      } else if (decision !== undefined) rows.push(scope.row(key, decision));
    });
    if (rows.length === 0 && deletes.length === 0) return decisions;
    const distinct = distinctRows(d, rows);
    const written = await scope.apply(query, distinct, deletes, postgres ? [...found.keys()] : undefined);
    if (written < distinct.length) throw new LostRace();
    return decisions;
  };

  if (!postgres) return client.transaction((query) => once(query)());
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.transaction((query) => once(query)());
    } catch (error) {
      if (!raced(error)) throw error;
      if (attempt >= TRANSACT_ATTEMPTS) {
        throw new StoreCommandError(
          `a conditional write of ${JSON.stringify(names.slice(0, 3))} lost the race ${attempt} times in a row; try again`,
          { cause: error },
        );
      }
    }
  }
}
