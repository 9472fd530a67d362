/**
 * The writer's side of the SQL change feed (storage.watch). A write appends what it changed to
 * `<t>_changes` only while someone watches its scope (keys.ts changeBase of the prefix): a storage
 * nobody watches keeps its one-statement writes. Whether anyone watches is known at once for
 * watchers of this process (one registry per database per process) and asked of `<t>_watchers`
 * at most once per WATCH_RECHECK_MS per scope for everyone else, so a watcher in another process
 * may miss what was written in its first second: it gets a reset then (watch.ts).
 *
 * The change rows are written in the write's own transaction or statement, after its rows are
 * locked, so on PostgreSQL two writes of one name get their change ids in commit order. On
 * PostgreSQL the write also sends a NOTIFY without payload on its scope's channel: a wake-up
 * only, since any role may LISTEN on any channel; what changed is read from the table, which
 * row-level security guards (rls.ts).
 */
import { createHash } from "node:crypto";
import { changeBase } from "../../keys.js";
import { Memo } from "../../memo.js";
import { warnOnce } from "../../warnings.js";
import { SqliteTriggers } from "./changes-sqlite.js";
import { type Dialect, listParam, nowMs, type Query, type SqlClient } from "./client.js";
import type { Tables } from "./schema.js";

/** Writers ask whether a scope is watched at most this often; a new watcher resets once after it. */
export const WATCH_RECHECK_MS = 1000;
/** A watcher's row lives this long without a heartbeat (a watcher that died stops costing writers then). */
export const WATCHER_TTL_MS = 30_000;
export const HEARTBEAT_MS = 10_000;
/** Change rows older than this are pruned; a watcher reads new rows as soon as it is woken. */
export const CHANGE_KEEP_MS = 60_000;
/** A driver prunes its scope's old change rows every this many logged writes. */
export const PRUNE_EVERY = 64;
/** Scopes whose watched state a driver remembers at most; more are asked again. */
const REMEMBERED = 10_000;

export type ChangeOp = "set" | "delete" | "clear";

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** A watcher of this process: writers wait for it to be ready (its starting point read), then wake it. */
export interface LocalWatcher {
  ready: Promise<void> | undefined;
  wake(): void;
}

type Registry = Map<string, Set<LocalWatcher>>;
const registries = new Map<string, Registry>();

/** The NOTIFY channel of a scope: a hash, so the channel name says nothing of the workspace either. */
export const channelOf = (table: string, base: string) =>
  `kvws_${createHash("sha256").update(`${table}\0${base}`).digest("hex").slice(0, 24)}`;

export class ChangeWriter {
  readonly #client: SqlClient;
  readonly #t: Tables;
  readonly #table: string;
  readonly #local: Registry;
  readonly #asked = new Memo<string, { at: number; watched: boolean }>(REMEMBERED);
  readonly #asking = new Map<string, Promise<boolean>>();
  #logged = 0;
  /** SQLite: its writes are logged by the connection's TEMP triggers (changes-sqlite.ts). */
  readonly #triggers: SqliteTriggers | undefined;

  /**
   * `database` names the database for the process-wide registry (path or host/db, and table);
   * undefined for a private one (`:memory:`), whose watchers are this writer's alone.
   */
  constructor(client: SqlClient, t: Tables, table: string, database: string | undefined) {
    this.#client = client;
    this.#t = t;
    this.#table = table;
    let registry = database === undefined ? new Map() : registries.get(database);
    if (!registry) registries.set(database as string, (registry = new Map()));
    this.#local = registry;
    this.#triggers = client.dialect === "sqlite" ? new SqliteTriggers(client, t, table) : undefined;
  }

  /** SQLite logs a watched write inside its own statement, by trigger: the write needs nothing more. */
  get logsByTrigger(): boolean {
    return this.#triggers !== undefined;
  }

  /** Runs a clear's DELETE (in its transaction) without a change per row; the caller logs the clear. */
  quiet(query: Query, prefix: string, work: () => Promise<void>): Promise<void> {
    return this.#triggers ? this.#triggers.quiet(query, prefix, work) : work();
  }

  get dialect(): Dialect {
    return this.#client.dialect;
  }

  /** Registers a watcher of this process on `bases`; returns how to forget it. */
  register(bases: readonly string[], watcher: LocalWatcher): () => void {
    for (const base of bases) {
      let set = this.#local.get(base);
      if (!set) this.#local.set(base, (set = new Set()));
      set.add(watcher);
    }
    return () => {
      for (const base of bases) {
        const set = this.#local.get(base);
        set?.delete(watcher);
        if (set?.size === 0) this.#local.delete(base);
      }
    };
  }

  /** Whether writes to `prefix` must be logged: a boolean when known, a promise once a second. */
  watched(prefix: string): boolean | Promise<boolean> {
    const state = this.#watched(prefix);
    const triggers = this.#triggers;
    if (!triggers) return state;
    // SQLite: the triggers follow the answer, so they log exactly the writes that are watched.
    const sync = (watched: boolean) => {
      const done = triggers.sync(prefix, changeBase(prefix), watched);
      return typeof done === "boolean"
        ? done
        : done.catch((error: unknown) => {
            warnOnce("KVWS_WATCH_CHECK", `could not set up logging changes for watchers: ${message(error)}`);
            return false;
          });
    };
    return typeof state === "boolean" ? sync(state) : state.then(sync);
  }

  #watched(prefix: string): boolean | Promise<boolean> {
    const base = changeBase(prefix);
    const local = this.#local.get(base);
    if (local) {
      const starting = [...local].flatMap((w) => (w.ready ? [w.ready] : []));
      return starting.length === 0 ? true : Promise.all(starting).then(() => true);
    }
    const known = this.#asked.get(base);
    if (known && Date.now() - known.at <= WATCH_RECHECK_MS) return known.watched;
    let asking = this.#asking.get(base);
    if (!asking) {
      const at = Date.now();
      asking = this.#client
        .query(
          `SELECT 1 AS x FROM ${this.#t.watchers} WHERE base = $1 AND expires_at > ${nowMs(this.dialect)} LIMIT 1`,
          [base],
        )
        .then(
          (rows) => rows.length > 0,
          (error: unknown) => {
            warnOnce(
              "KVWS_WATCH_CHECK",
              `could not ask whether ${base} is watched; its changes are not reported to other processes until it can be: ${message(error)}`,
            );
            return false;
          },
        )
        .then((watched) => {
          this.#asked.set(base, { at, watched });
          this.#asking.delete(base);
          return watched;
        });
      this.#asking.set(base, asking);
    }
    return asking;
  }

  /** Appends the change inside the write's transaction (names null: a clear), and the wake-up. */
  async log(query: Query, prefix: string, op: ChangeOp, names: ReadonlyArray<string | null>): Promise<void> {
    if (names.length === 0) return;
    const d = this.dialect;
    const base = changeBase(prefix);
    const list = listParam(d, names as string[]);
    if (d === "postgres") {
      await query(
        `WITH c AS (INSERT INTO ${this.#t.changes} (base, prefix, name, op, at) ` +
          `SELECT $1, $2, n, $3, ${nowMs(d)} FROM unnest($4::text[]) WITH ORDINALITY AS u(n, i) ORDER BY i RETURNING 1) ` +
          "SELECT pg_notify($5, '') AS n FROM (SELECT count(*) FROM c) AS x",
        [base, prefix, op, list, channelOf(this.#table, base)],
      );
    } else {
      await query(
        `INSERT INTO ${this.#t.changes} (base, prefix, name, op, at) SELECT $1, $2, value, $3, ${nowMs(d)} FROM json_each($4) ORDER BY key`,
        [base, prefix, op, list],
      );
    }
  }

  /**
   * PostgreSQL, one statement: `source` (with `params`, `$1` the prefix) is a data-modifying
   * statement returning the keys it wrote or deleted; the change rows are made from its output, so
   * after its row locks, and the wake-up is sent. Resolves `select` per row of it, once committed.
   */
  async logged(prefix: string, source: string, params: readonly unknown[], op: ChangeOp, select: string) {
    const n = params.length + 1;
    const base = changeBase(prefix);
    const rows = await this.#client.query(
      `WITH w AS (${source}), c AS (INSERT INTO ${this.#t.changes} (base, prefix, name, op, at) ` +
        `SELECT $${n}, $1, substr(w.key, length($1) + 2), '${op}', ${nowMs(this.dialect)} FROM w) ` +
        `SELECT ${select}, pg_notify($${n + 1}, '') AS n FROM w`,
      [...params, base, channelOf(this.#table, base)],
    );
    await this.after(prefix);
    return rows;
  }

  /** After a logged write committed: wake this process's watchers, and now and then prune. */
  async after(prefix: string): Promise<void> {
    const base = changeBase(prefix);
    for (const watcher of this.#local.get(base) ?? []) watcher.wake();
    if (++this.#logged % PRUNE_EVERY !== 0) return;
    await this.#client
      .query(`DELETE FROM ${this.#t.changes} WHERE base = $1 AND at < ${nowMs(this.dialect)} - ${CHANGE_KEEP_MS}`, [
        base,
      ])
      .catch(() => {}); // the next prune tries again; the write itself succeeded
  }
}
