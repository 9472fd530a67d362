/**
 * How a SQLite writer logs its changes while watched: TEMP triggers on its own connection append
 * a change row for every row written or deleted under a prefix listed in a TEMP table, inside the
 * very statement that writes it. So a watched write stays one statement (node-sqlite3 pays a
 * thread hop per statement: a BEGIN … COMMIT of four cost about three times one). The triggers
 * exist only once this connection has written a watched prefix, and a prefix is listed only while
 * its scope is watched (changes.ts decides, at most once a second): a storage nobody watches has
 * no trigger at all. TEMP objects belong to the connection, so other connections and processes
 * are untouched.
 */
import { nowMs, type Query, quote, type SqlClient } from "./client.js";
import type { Tables } from "./schema.js";

export class SqliteTriggers {
  readonly #client: SqlClient;
  readonly #t: Tables;
  readonly #listed: string;
  readonly #members = new Set<string>();
  readonly #syncing = new Map<string, Promise<boolean>>();
  #created: Promise<void> | undefined;

  constructor(client: SqlClient, t: Tables, table: string) {
    this.#client = client;
    this.#t = t;
    this.#listed = quote(`${table}_watched`);
  }

  /** Lists or unlists `prefix` to match `watched`; resolves `watched` once the triggers log it (or not). */
  sync(prefix: string, base: string, watched: boolean): boolean | Promise<boolean> {
    if (this.#members.has(prefix) === watched) return watched;
    const pending = this.#syncing.get(prefix);
    if (pending) return pending;
    const done = (async () => {
      if (watched) {
        await this.#ensure();
        await this.#client.query(`INSERT OR IGNORE INTO ${this.#listed} (prefix, base) VALUES ($1, $2)`, [
          prefix,
          base,
        ]);
        this.#members.add(prefix);
      } else {
        await this.#client.query(`DELETE FROM ${this.#listed} WHERE prefix = $1`, [prefix]);
        this.#members.delete(prefix);
      }
      return watched;
    })().finally(() => this.#syncing.delete(prefix));
    this.#syncing.set(prefix, done);
    return done;
  }

  /** A clear logs one "clear", not a delete per row: the prefix is unlisted for its transaction's DELETE. */
  async quiet(query: Query, prefix: string, work: () => Promise<void>): Promise<void> {
    const [row] = await query(`SELECT base FROM ${this.#listed} WHERE prefix = $1`, [prefix]).catch(() => []);
    if (row) await query(`DELETE FROM ${this.#listed} WHERE prefix = $1`, [prefix]);
    await work();
    if (row) await query(`INSERT INTO ${this.#listed} (prefix, base) VALUES ($1, $2)`, [prefix, row.base]);
  }

  #ensure(): Promise<void> {
    this.#created ??= this.#create().catch((error: unknown) => {
      this.#created = undefined;
      throw error;
    });
    return this.#created;
  }

  async #create(): Promise<void> {
    const { data, changes } = this.#t;
    const listed = this.#listed;
    const NOW = nowMs("sqlite");
    const name = (what: string) => quote(`${data.slice(1, -1)}_watch_${what}`);
    const log = (row: "NEW" | "OLD", op: string) =>
      `WHEN ${row}.prefix IN (SELECT prefix FROM ${listed}) BEGIN ` +
      `INSERT INTO ${changes} (base, prefix, name, op, at) SELECT base, ${row}.prefix, ` +
      `substr(${row}.key, length(${row}.prefix) + 2), '${op}', ${NOW} FROM ${listed} WHERE prefix = ${row}.prefix; END`;
    // Names in a trigger's body may not be qualified; TEMP is searched first, then main.
    await this.#client.query(`CREATE TEMP TABLE IF NOT EXISTS ${listed} (prefix TEXT PRIMARY KEY, base TEXT NOT NULL)`);
    await this.#client.query(
      `CREATE TEMP TRIGGER IF NOT EXISTS ${name("insert")} AFTER INSERT ON ${data} ${log("NEW", "set")}`,
    );
    await this.#client.query(
      `CREATE TEMP TRIGGER IF NOT EXISTS ${name("update")} AFTER UPDATE ON ${data} ${log("NEW", "set")}`,
    );
    await this.#client.query(
      `CREATE TEMP TRIGGER IF NOT EXISTS ${name("delete")} AFTER DELETE ON ${data} ${log("OLD", "delete")}`,
    );
  }
}
