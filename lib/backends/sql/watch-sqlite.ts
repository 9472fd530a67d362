/**
 * A SQLite watcher's feed: a connection of its own to the file, which asks `PRAGMA data_version`
 * every SQLITE_POLL_MS (it changes when another connection, of any process, commits) and then
 * reads the rows of `<t>_changes` after the last id it read. SQLite has one writer at a time and
 * ids are handed out inside the write's transaction, so ids become visible in commit order and
 * `id > last` misses nothing. Writers of this process wake the watcher at once (changes.ts).
 *
 * Why polling and not fs.watch: the question costs one call into the engine that reads a counter
 * in shared memory (no table, no lock), measured in bench/sql.ts, and it notices every commit;
 * inotify on the -wal file sees writes before they commit and checkpoints that change nothing,
 * and the file can be replaced under a watch.
 */
import { randomUUID } from "node:crypto";
import { WATCHER_TTL_MS } from "./changes.js";
import { nowMs, type SqlClient } from "./client.js";
import type { Tables } from "./schema.js";
import { openSqliteClient } from "./sqlite.js";
import { type ChangeRow, type OpenFeed, registerFailed } from "./watch.js";

/** How often a SQLite watcher asks whether another connection committed. */
export const SQLITE_POLL_MS = 50;

export interface SqliteFeedOptions {
  path: string;
  t: Tables;
  /** The changes table's name unquoted, as sqlite_sequence keeps it. */
  changesTable: string;
  busyTimeoutMs?: number | undefined;
  /** `:memory:` has no file to open again: the watcher reads through the storage's own connection. */
  shared?: SqlClient | undefined;
}

export function sqliteFeed(options: SqliteFeedOptions): OpenFeed {
  const { t } = options;
  const NOW = nowMs("sqlite");
  return (bases, events) => {
    const id = randomUUID();
    const list = JSON.stringify(bases);
    let client: SqlClient | undefined;
    let starting: Promise<void> | undefined;
    let stopped = false;
    let last: number | undefined;
    let version: unknown;
    let timer: NodeJS.Timeout | undefined;
    let asking = false;

    const beat = async () => {
      if (!client) throw new Error("not connected");
      for (const base of bases) {
        try {
          await client.query(
            `INSERT INTO ${t.watchers} (base, id, expires_at) VALUES ($1, $2, ${NOW} + ${WATCHER_TTL_MS}) ` +
              "ON CONFLICT (base, id) DO UPDATE SET expires_at = excluded.expires_at",
            [base, id],
          );
          await client.query(`DELETE FROM ${t.watchers} WHERE base = $1 AND expires_at <= ${NOW}`, [base]);
        } catch (error) {
          registerFailed(base, error);
        }
      }
    };

    const dataVersion = async (c: SqlClient) => (await c.query("PRAGMA data_version"))[0]?.data_version;

    const connect = async () => {
      const c = options.shared ?? (await openSqliteClient(options.path, options.busyTimeoutMs));
      client = c;
      if (stopped) return;
      await beat();
      if (last === undefined) {
        const [row] = await c.query("SELECT seq FROM sqlite_sequence WHERE name = $1", [options.changesTable]);
        last = Number(row?.seq ?? 0);
      }
      version = await dataVersion(c);
      timer = setInterval(() => {
        if (asking || client !== c) return;
        asking = true;
        dataVersion(c).then(
          (now) => {
            asking = false;
            if (now === version) return;
            version = now;
            events.wake();
          },
          (error: unknown) => {
            asking = false;
            events.lost(error);
          },
        );
      }, SQLITE_POLL_MS);
      timer.unref();
    };

    return {
      start() {
        starting = connect();
        return starting;
      },
      async read(): Promise<ChangeRow[]> {
        if (!client) throw new Error("not connected");
        const rows = await client.query(
          `SELECT id, prefix, name, op FROM ${t.changes} WHERE id > $1 AND base IN (SELECT value FROM json_each($2)) ORDER BY id`,
          [last ?? 0, list],
        );
        const end = rows.at(-1);
        if (end) last = Number(end.id);
        return rows.map((row) => ({
          prefix: String(row.prefix),
          name: row.name === null ? null : String(row.name),
          op: String(row.op),
        }));
      },
      beat,
      async stop(final) {
        if (final) stopped = true;
        await starting?.catch(() => {});
        clearInterval(timer);
        const c = client;
        client = undefined;
        if (!c) return;
        if (final) {
          await c
            .query(`DELETE FROM ${t.watchers} WHERE base IN (SELECT value FROM json_each($1)) AND id = $2`, [list, id])
            .catch(() => {});
        }
        if (c !== options.shared) await c.close().catch(() => {});
      },
    };
  };
}
