/**
 * What the SQL driver needs from an engine: statements with `$n` placeholders, transactions,
 * close. One implementation per engine (sqlite.ts, postgres.ts); the driver's SQL is shared.
 */
export type Row = Record<string, unknown>;
/**
 * One statement. With `merge` (a write that returns nothing), the client may merge it with
 * writes of the same `merge.key` issued beside it into one statement over all their rows, in
 * order (SQLite's write queue does; others run `text` as it is).
 */
export type Query = (text: string, params?: readonly unknown[], merge?: Merge) => Promise<Row[]>;

export type Dialect = "sqlite" | "postgres";

/** The rows of a write that may be merged with others (Query), and the statement for any run of them. */
export interface Merge {
  key: string;
  rows: readonly unknown[];
  /** The statements, run in order, that write `rows` as the writes would one by one. */
  build(rows: readonly unknown[]): Array<[text: string, params: unknown[]]>;
}

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
