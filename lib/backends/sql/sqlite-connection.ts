/**
 * One node-sqlite3 connection whose statements stay prepared. `Database.all(text)` prepares,
 * runs and finalizes: three hops to a libuv worker thread and back for one statement. A statement
 * kept prepared runs in one hop (the same plan, rebound), which is most of what a point read or
 * write costs here. SQLite re-prepares a kept statement itself when the schema changes under it.
 */
import type sqlite3 from "sqlite3";
import type { Query, Row } from "./client.js";

type Sqlite3 = typeof sqlite3;
type Database = InstanceType<Sqlite3["Database"]>;
type Statement = InstanceType<Sqlite3["Statement"]>;

/** Statements one connection keeps prepared; the least recently used is finalized past it. */
export const KEPT_STATEMENTS = 64;

// `$3` is a named parameter to SQLite, numbered by first appearance; `?3` is bound by position.
const positional = (text: string) => text.replace(/\$(\d+)/g, "?$1");

export interface Connection {
  /**
   * One statement. Calls of one text issued together run in the order issued (one prepared
   * statement, whose calls node-sqlite3 queues); calls of different texts may run in any order.
   */
  run: Query;
  close(): Promise<void>;
}

export async function openConnection(
  sqlite: Sqlite3,
  path: string,
  fail: (error: unknown) => Error,
  mode?: number,
): Promise<Connection> {
  const db = await new Promise<Database>((resolve, reject) => {
    const done = (error: Error | null) => (error ? reject(fail(error)) : resolve(opened));
    const opened: Database =
      mode === undefined ? new sqlite.Database(path, done) : new sqlite.Database(path, mode, done);
  });
  // No busy handler in SQLite: it would sleep in a libuv worker thread, and a few connections
  // waiting on one file (several storages in one process) would hold every thread of the pool,
  // including the one the lock holder needs to finish. Waiting happens in retryBusy instead.
  db.configure("busyTimeout", 0);
  const kept = new Map<string, Promise<Statement>>();

  const finalize = (statement: Promise<Statement>) =>
    statement.then(
      (s) => new Promise<void>((resolve) => s.finalize(() => resolve())),
      () => {},
    );

  const prepared = (text: string): Promise<Statement> => {
    const found = kept.get(text);
    if (found) {
      // Most recently used last: the map's first entry is the one to let go.
      kept.delete(text);
      kept.set(text, found);
      return found;
    }
    const statement = new Promise<Statement>((resolve, reject) => {
      const s: Statement = db.prepare(positional(text), (error: Error | null) => (error ? reject(error) : resolve(s)));
    });
    kept.set(text, statement);
    // A statement that does not prepare is not kept: the next use reports its error afresh.
    statement.catch(() => kept.get(text) === statement && kept.delete(text));
    if (kept.size > KEPT_STATEMENTS) {
      const [oldest, first] = kept.entries().next().value as [string, Promise<Statement>];
      kept.delete(oldest);
      // Runs already queued on it finish first: node-sqlite3 queues the finalize behind them.
      void finalize(first);
    }
    return statement;
  };

  const run: Query = async (text, params = []) => {
    let statement: Statement;
    try {
      statement = await prepared(text);
    } catch (error) {
      throw fail(error);
    }
    return new Promise<Row[]>((resolve, reject) => {
      statement.all(params as unknown[], (error: Error | null, rows: Row[]) =>
        error ? reject(fail(error)) : resolve(rows),
      );
    });
  };

  return {
    run,
    async close() {
      // sqlite3_close refuses a connection with statements left unfinalized.
      const all = [...kept.values()];
      kept.clear();
      await Promise.all(all.map(finalize));
      await new Promise<void>((resolve, reject) => db.close((error) => (error ? reject(fail(error)) : resolve())));
    },
  };
}
