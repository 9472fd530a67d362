/**
 * Writing many rows of one prefix: one multi-row `INSERT … ON CONFLICT` per chunk, so a batch
 * costs one statement (one round trip) where it fits the engine's parameter limit, and a few
 * statements in one transaction where it does not.
 */
import { compareNames } from "../driver.js";
import { type Dialect, inList, type Merge, nowMs, type Query, type SqlClient } from "./client.js";
import type { Tables } from "./schema.js";

/** One row to write: its key, its stored value, its TTL in ms (null = no expiry). */
export type SqlRow = readonly [key: string, value: string, ttl: number | null];

/** Bound on the characters of values one statement carries, so a batch of big values is not one giant message. */
export const CHUNK_CHARS = 16 * 1024 * 1024;

/**
 * The batch as it will be written: the last row of each key (as if written one by one; Postgres
 * refuses an upsert that touches one row twice), sorted by key on Postgres, so two batches that
 * share keys lock their rows in one order and cannot deadlock each other.
 */
export function distinctRows(dialect: Dialect, rows: readonly SqlRow[]): SqlRow[] {
  const byKey = new Map<string, SqlRow>();
  for (const row of rows) {
    byKey.delete(row[0]);
    byKey.set(row[0], row);
  }
  const out = [...byKey.values()];
  if (dialect === "postgres") out.sort((a, b) => compareNames(a[0], b[0]));
  return out;
}

/** The rows in statements that fit: three parameters a row, and three to spare (the prefix, a guard or the log's). */
export function chunks(client: SqlClient, rows: readonly SqlRow[]): SqlRow[][] {
  const perStatement = Math.max(1, Math.floor((client.maxParams - 3) / 3));
  const out: SqlRow[][] = [];
  let current: SqlRow[] = [];
  let chars = 0;
  for (const row of rows) {
    if (current.length > 0 && (current.length >= perStatement || chars + row[1].length > CHUNK_CHARS)) {
      out.push(current);
      current = [];
      chars = 0;
    }
    current.push(row);
    chars += row[1].length;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/**
 * `INSERT … SELECT … FROM (VALUES …)`: the engine's clock expression once, not once a row.
 * `$1` is the prefix; with `guard`, `$2` lists the keys the statement may overwrite (other
 * existing keys are left as they are and not returned), and it returns one row per row written.
 */
export function upsertText(t: Tables, dialect: Dialect, count: number, guard = false, returning = false): string {
  const first = guard ? 3 : 2;
  const tuples: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = first + 3 * i;
    tuples.push(`($${n}, $${n + 1}, $${n + 2})`);
  }
  // One row (every plain set) keeps the plainest statement: no subquery for the planner.
  const rows =
    count === 1
      ? `VALUES ($${first}, $1, $${first + 1}, ${nowMs(dialect)} + CAST($${first + 2} AS BIGINT))`
      : `SELECT column1, $1, column2, ${nowMs(dialect)} + CAST(column3 AS BIGINT) FROM (VALUES ${tuples.join(", ")}) AS v WHERE true`;
  return (
    `INSERT INTO ${t.data} (key, prefix, value, expires_at) ${rows} ` +
    "ON CONFLICT (key) DO UPDATE SET prefix = excluded.prefix, value = excluded.value, expires_at = excluded.expires_at" +
    (guard ? ` WHERE ${inList(dialect, `${t.data}.key`, 2)} RETURNING 1 AS x` : returning ? " RETURNING key" : "")
  );
}

/** Values longer than this are written by a statement of their own, never merged with others. */
export const MERGE_CHARS = 64 * 1024;

/**
 * For a one-row plain upsert of `prefix`: how it may be merged with others of that prefix issued
 * beside it (SQLite's write queue) into multi-row statements, in order. A key written twice
 * starts a new statement, so each write stays a change of its own (watchers see every one). A big
 * value, or several rows, stays a statement of its own.
 */
export function upsertMerge(t: Tables, dialect: Dialect, prefix: string) {
  const build = (all: readonly unknown[]): Array<[string, unknown[]]> => {
    const out: Array<[string, unknown[]]> = [];
    let rows: SqlRow[] = [];
    let keys = new Set<string>();
    const flush = () => {
      if (rows.length > 0) out.push([upsertText(t, dialect, rows.length), upsertParams(prefix, rows)]);
      rows = [];
      keys = new Set();
    };
    for (const row of all as SqlRow[]) {
      if (keys.has(row[0])) flush();
      keys.add(row[0]);
      rows.push(row);
    }
    flush();
    return out;
  };
  const key = `upsert\u0000${prefix}`;
  return (rows: readonly SqlRow[]): Merge | undefined =>
    rows.length === 1 && (rows[0] as SqlRow)[1].length <= MERGE_CHARS ? { key, rows, build } : undefined;
}

export function upsertParams(prefix: string, rows: readonly SqlRow[], guard?: unknown): unknown[] {
  const params: unknown[] = guard === undefined ? [prefix] : [prefix, guard];
  for (const [key, value, ttl] of rows) params.push(key, value, ttl);
  return params;
}

/**
 * Writes the rows through `query` (inside the caller's transaction when there is more than one
 * chunk) and says how many were written: all of them, or with `guard` (a list parameter of the
 * keys that may be overwritten) those that were new or guarded.
 */
export async function upsertRows(
  query: Query,
  t: Tables,
  client: SqlClient,
  prefix: string,
  rows: readonly SqlRow[],
  guard?: unknown,
): Promise<number> {
  let written = 0;
  for (const chunk of chunks(client, rows)) {
    const result = await query(
      upsertText(t, client.dialect, chunk.length, guard !== undefined),
      upsertParams(prefix, chunk, guard),
    );
    written += guard === undefined ? chunk.length : result.length;
  }
  return written;
}
