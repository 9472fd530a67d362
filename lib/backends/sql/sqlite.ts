import type sqlite3 from "sqlite3";
import type { Query, Row, SqlClient } from "./client.js";
import { sqliteError } from "./errors.js";
import { loadPeer } from "./peer.js";

type Sqlite3 = typeof sqlite3;
type Database = InstanceType<Sqlite3["Database"]>;

export const BUSY_TIMEOUT_MS = 5000;

// `$3` is a named parameter to SQLite, numbered by first appearance; `?3` is bound by position.
const positional = (text: string) => text.replace(/\$(\d+)/g, "?$1");

/**
 * Runs `work` again while SQLite answers SQLITE_BUSY (another connection holds the write lock or
 * is switching the file to WAL), with backoff, for at most `timeoutMs`. Only whole statements and
 * whole transactions are retried: a busy answer means nothing of them was applied.
 */
export async function retryBusy<T>(work: () => Promise<T>, timeoutMs = BUSY_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(2 * delay, 100)) {
    try {
      return await work();
    } catch (error) {
      const busy = (error as { cause?: { code?: unknown } }).cause?.code === "SQLITE_BUSY";
      if (!busy || Date.now() + delay >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay + Math.random() * delay));
    }
  }
}

/** SQLITE_MAX_VARIABLE_NUMBER's default: 999 until 3.32.0 (a system library may be that old), 32766 since. */
export function parametersOf(version: string): number {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major > 3 || (major === 3 && minor >= 32) ? 32766 : 999;
}

/**
 * One node-sqlite3 connection, every statement through one queue: a transaction is a run of
 * statements on that connection, so nothing else may interleave with it. Other processes are
 * kept out by SQLite's own locks (WAL mode; BEGIN IMMEDIATE waits up to the busy timeout).
 */
export async function openSqliteClient(path: string, busyTimeoutMs = BUSY_TIMEOUT_MS): Promise<SqlClient> {
  const sqlite = await loadPeer<Sqlite3>("sqlite3", "sqlite:", () => import("sqlite3") as never);
  const fail = (error: unknown) => sqliteError(error, path);
  const db = await new Promise<Database>((resolve, reject) => {
    const opened: Database = new sqlite.Database(path, (error) => (error ? reject(fail(error)) : resolve(opened)));
  });
  // No busy handler in SQLite: it would sleep in a libuv worker thread, and a few connections
  // waiting on one file (several storages in one process) would hold every thread of the pool,
  // including the one the lock holder needs to finish. Waiting happens here instead (retryBusy).
  db.configure("busyTimeout", 0);
  const run: Query = (text, params = []) =>
    new Promise<Row[]>((resolve, reject) => {
      db.all(positional(text), params as unknown[], (error: Error | null, rows: Row[]) =>
        error ? reject(fail(error)) : resolve(rows),
      );
    });

  let tail: Promise<unknown> = Promise.resolve();
  const queued = <T>(work: () => Promise<T>): Promise<T> => {
    const next = tail.then(work, work);
    tail = next.catch(() => {});
    return next;
  };

  let maxParams = 999;
  try {
    await retryBusy(() => run("PRAGMA journal_mode = WAL"), busyTimeoutMs);
    await run("PRAGMA synchronous = NORMAL");
    maxParams = parametersOf(String((await run("SELECT sqlite_version() AS v"))[0]?.v));
  } catch (error) {
    await new Promise((resolve) => db.close(resolve));
    throw error;
  }

  let closed: Promise<void> | undefined;
  return {
    dialect: "sqlite",
    maxParams,
    query: (text, params) => queued(() => retryBusy(() => run(text, params), busyTimeoutMs)),
    transaction: (work) =>
      queued(() =>
        retryBusy(async () => {
          // IMMEDIATE takes the write lock now: a deferred transaction that reads first and then
          // writes fails with SQLITE_BUSY when another process wrote in between.
          await run("BEGIN IMMEDIATE");
          try {
            const result = await work(run);
            await run("COMMIT");
            return result;
          } catch (error) {
            await run("ROLLBACK").catch(() => {});
            throw error;
          }
        }, busyTimeoutMs),
      ),
    close: () => {
      closed ??= queued(
        () => new Promise<void>((resolve, reject) => db.close((error) => (error ? reject(fail(error)) : resolve()))),
      );
      return closed;
    },
  };
}
