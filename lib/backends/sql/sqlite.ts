import type sqlite3 from "sqlite3";
import type { Query, SqlClient } from "./client.js";
import { sqliteError } from "./errors.js";
import { loadPeer } from "./peer.js";
import { BUSY_TIMEOUT_MS, retryBusy } from "./sqlite-busy.js";
import { type Connection, openConnection } from "./sqlite-connection.js";
import { writeQueue } from "./sqlite-writes.js";

export { BUSY_TIMEOUT_MS, retryBusy };

type Sqlite3 = typeof sqlite3;

/** Connections a file's reads run on beside the writer's, opened on the first read. */
export const READERS = 2;

/** SQLITE_MAX_VARIABLE_NUMBER's default: 999 until 3.32.0 (a system library may be that old), 32766 since. */
export function parametersOf(version: string): number {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major > 3 || (major === 3 && minor >= 32) ? 32766 : 999;
}

/**
 * A SQLite file through node-sqlite3: one connection writes, every write through its queue in
 * the order issued (sqlite-writes.ts: what queues up meanwhile commits as one transaction), so
 * a transaction is a run of statements on that connection that nothing else interleaves with.
 * Other processes are kept out by SQLite's own locks (WAL mode; BEGIN IMMEDIATE waits up to the
 * busy timeout). Reads (`read`) run on READERS connections of their own, side by side on
 * node-sqlite3's worker threads: in WAL mode a reader sees the last commit (so every write
 * acknowledged before the read was issued) and neither waits for the writer nor holds it up.
 *
 * synchronous=NORMAL in WAL mode: a commit survives the process crashing; an OS crash or power
 * loss may lose the last commits, never corrupt the file.
 */
export async function openSqliteClient(path: string, busyTimeoutMs = BUSY_TIMEOUT_MS): Promise<SqlClient> {
  const sqlite = await loadPeer<Sqlite3>("sqlite3", "sqlite:", () => import("sqlite3") as never);
  const fail = (error: unknown) => sqliteError(error, path);
  const writer = await openConnection(sqlite, path, fail);
  const writes = writeQueue(writer.run, busyTimeoutMs);

  let maxParams = 999;
  try {
    await retryBusy(() => writer.run("PRAGMA journal_mode = WAL"), busyTimeoutMs);
    await writer.run("PRAGMA synchronous = NORMAL");
    maxParams = parametersOf(String((await writer.run("SELECT sqlite_version() AS v"))[0]?.v));
  } catch (error) {
    await writer.close().catch(() => {});
    throw error;
  }

  const readers = readerPool(sqlite, path, fail, busyTimeoutMs);
  let closed: Promise<void> | undefined;
  return {
    dialect: "sqlite",
    maxParams,
    query: writes.query,
    // A private :memory: database has no file a second connection could open.
    read:
      path === ":memory:" || path === "" ? writes.query : (text, params) => readers.read(text, params, writes.query),
    transaction: writes.transaction,
    close: () => {
      closed ??= writes.finish(async () => {
        await readers.close();
        await writer.close();
      });
      return closed;
    },
  };
}

interface ReaderPool {
  /** `text` on the least busy reader; through `fallback` while they open (or when they cannot). */
  read(text: string, params: readonly unknown[] | undefined, fallback: Query): ReturnType<Query>;
  close(): Promise<void>;
}

function readerPool(sqlite: Sqlite3, path: string, fail: (error: unknown) => Error, busyTimeoutMs: number): ReaderPool {
  let opening: Promise<Connection[]> | undefined;
  let open: Connection[] | undefined;
  let busy: number[] = [];
  let closing = false;

  const start = () => {
    opening = Promise.allSettled(Array.from({ length: READERS }, () => openConnection(sqlite, path, fail))).then(
      (results) => {
        // A reader that cannot open (no file handle left, say) leaves its share on the others or the writer.
        const connections = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
        if (!closing && connections.length > 0) {
          open = connections;
          busy = connections.map(() => 0);
        }
        return connections;
      },
    );
  };

  return {
    async read(text, params, fallback) {
      if (!opening && !closing) start();
      if (!open) return fallback(text, params);
      let i = 0;
      for (let j = 1; j < busy.length; j++) if ((busy[j] as number) < (busy[i] as number)) i = j;
      const reader = open[i] as Connection;
      busy[i] = (busy[i] as number) + 1;
      try {
        return await retryBusy(() => reader.run(text, params), busyTimeoutMs);
      } finally {
        busy[i] = (busy[i] as number) - 1;
      }
    },
    async close() {
      closing = true;
      open = undefined;
      await Promise.all(((await opening) ?? []).map((c) => c.close().catch(() => {})));
    },
  };
}
