/**
 * What the SQL driver needs from an engine: statements with `$n` placeholders, transactions,
 * close. One implementation per engine (sqlite.ts, postgres.ts); the driver's SQL is shared.
 */
export type Row = Record<string, unknown>;
export type Query = (text: string, params?: readonly unknown[]) => Promise<Row[]>;

export type Dialect = "sqlite" | "postgres";

export interface SqlClient {
  readonly dialect: Dialect;
  /** Bound parameters one statement may carry (SQLite 32766, or 999 before 3.32; PostgreSQL 65535). */
  readonly maxParams: number;
  /** One statement, committed on its own. */
  query: Query;
  /**
   * One statement that only reads; it may run on another connection, beside the writes, and sees
   * every write acknowledged before it was issued (not one issued but not yet acknowledged).
   */
  read: Query;
  /** `work` runs in one transaction, committed when it resolves, rolled back when it rejects. */
  transaction<T>(work: (query: Query) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Milliseconds since the epoch on the engine's clock, so every process expires rows by one clock. */
export function nowMs(dialect: Dialect): string {
  return dialect === "postgres"
    ? "(extract(epoch from clock_timestamp()) * 1000)::bigint"
    : "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
}

/** `<column> IN (<a list bound as parameter $n>)`, with `toParam` turning the list into that parameter. */
export function inList(dialect: Dialect, column: string, n: number): string {
  return dialect === "postgres"
    ? `${column} = ANY($${n}::text[])`
    : `${column} IN (SELECT value FROM json_each($${n}))`;
}

export function listParam(dialect: Dialect, values: readonly string[]): unknown {
  return dialect === "postgres" ? values : JSON.stringify(values);
}

/** Table names go into SQL text, so only plain lower-case identifiers are accepted. */
export const TABLE_NAME = /^[a-z_][a-z0-9_]{0,47}$/;

export const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;
