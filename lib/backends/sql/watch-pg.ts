/**
 * A PostgreSQL watcher's feed: a connection of its own that LISTENs on its scopes' channels
 * (changes.ts channelOf; a notification is a wake-up, nothing more) and reads `<t>_changes`,
 * whose rows row-level security limits to the role's own workspace (rls.ts).
 *
 * Reading by id alone would miss rows: ids are handed out in statement order but become visible
 * in commit order, so a row with a smaller id can appear after a larger one was read. Each row
 * carries its transaction id instead, and every read also takes its snapshot's xmin (every
 * transaction below it has ended): a read returns the rows with tx at or above the previous xmin
 * — all of them final once below the new one — and remembers the ids it already reported of
 * those still above, so each row is reported exactly once. Order is by id within a read. Two
 * writes of one name are ordered by their row lock and get their ids under it (changes.ts), so
 * the later write always has the larger id and is never read before the earlier.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { channelOf, WATCHER_TTL_MS } from "./changes.js";
import { nowMs, quote } from "./client.js";
import { pgError } from "./errors.js";
import { loadPeer } from "./peer.js";
import type { Tables } from "./schema.js";
import { type ChangeRow, type OpenFeed, registerFailed } from "./watch.js";

type Pg = typeof pg;

export interface PgFeedOptions {
  connectionString: string;
  table: string;
  t: Tables;
  /** The URL without its password, for errors. */
  where: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
}

export function pgFeed(options: PgFeedOptions): OpenFeed {
  const { t, table } = options;
  const NOW = nowMs("postgres");
  const poll =
    "WITH s AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS h) " +
    "SELECT s.h::text AS h, c.id::text AS id, c.tx::text AS tx, c.prefix, c.name, c.op " +
    `FROM s LEFT JOIN ${t.changes} c ON c.base = ANY($1::text[]) AND c.tx >= COALESCE($2::xid8, s.h) ORDER BY c.id`;

  return (bases, events) => {
    const id = randomUUID();
    let client: pg.Client | undefined;
    let starting: Promise<void> | undefined;
    let stopped = false;
    /** Rows of transactions below this have all been read. */
    let horizon: string | undefined;
    /** Ids read whose transaction is at or above the horizon (read again next time, not reported again). */
    let early = new Set<string>();

    const run = async (text: string, params: unknown[]) => {
      if (!client) throw new Error("not connected");
      try {
        return (await client.query(text, params)).rows as Array<Record<string, unknown>>;
      } catch (error) {
        throw pgError(error, options.where);
      }
    };

    const read = async (): Promise<Array<Record<string, unknown>>> => {
      const rows = await run(poll, [[...bases], horizon ?? null]);
      const h = String(rows[0]?.h);
      const next = new Set<string>();
      const fresh: Array<Record<string, unknown>> = [];
      for (const row of rows) {
        if (row.id === null || row.id === undefined) continue;
        const rowId = String(row.id);
        if (!early.has(rowId)) fresh.push(row);
        if (BigInt(String(row.tx)) >= BigInt(h)) next.add(rowId);
      }
      horizon = h;
      early = next;
      return fresh;
    };

    const beat = async () => {
      for (const base of bases) {
        try {
          await run(
            `INSERT INTO ${t.watchers} (base, id, expires_at) VALUES ($1, $2, ${NOW} + ${WATCHER_TTL_MS}) ` +
              "ON CONFLICT (base, id) DO UPDATE SET expires_at = excluded.expires_at",
            [base, id],
          );
          await run(`DELETE FROM ${t.watchers} WHERE base = $1 AND expires_at <= ${NOW}`, [base]);
        } catch (error) {
          registerFailed(base, error);
        }
      }
    };

    const connect = async () => {
      const { Client } = await loadPeer<Pg>("pg", "postgres://", () => import("pg") as never);
      const c = new Client({
        connectionString: options.connectionString,
        connectionTimeoutMillis: options.connectTimeoutMs,
        query_timeout: options.commandTimeoutMs,
        // Operators (and tests) can tell a watcher's session from the pool's.
        application_name: "kvws-watch",
      });
      let gone = false;
      const lost = (error: unknown) => {
        if (gone || c !== client) return;
        gone = true;
        events.lost(error);
      };
      c.on("error", lost);
      c.on("end", () => lost(new Error("the connection ended")));
      c.on("notification", () => events.wake());
      try {
        await c.connect();
      } catch (error) {
        c.end().catch(() => {});
        throw pgError(error, options.where);
      }
      client = c;
      if (stopped) return;
      for (const base of bases) await run(`LISTEN ${quote(channelOf(table, base))}`, []);
      await beat();
      // The starting point: rows already there are not this watcher's news.
      if (horizon === undefined) await read();
    };

    return {
      start() {
        starting = connect();
        return starting;
      },
      async read(): Promise<ChangeRow[]> {
        return (await read()).map((row) => ({
          prefix: String(row.prefix),
          name: row.name === null ? null : String(row.name),
          op: String(row.op),
        }));
      },
      beat,
      async stop(final) {
        if (final) stopped = true;
        await starting?.catch(() => {});
        const c = client;
        client = undefined;
        if (!c) return;
        if (final) {
          client = c;
          await run(`DELETE FROM ${t.watchers} WHERE base = ANY($1::text[]) AND id = $2`, [[...bases], id]).catch(
            () => {},
          );
          client = undefined;
        }
        await c.end().catch(() => {});
      },
    };
  };
}
