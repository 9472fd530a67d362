import { EventEmitter } from "node:events";
import type { KeyvStoreAdapter, StoredData } from "keyv";
import { joinKey, layoutPrefixLength } from "../../keys.js";
import { DRIVER, type Driver, type PrefixStore } from "../driver.js";
import { inList, listParam, nowMs, type SqlClient } from "./client.js";
import { checkedKey, PAGE } from "./driver.js";
import { tables } from "./schema.js";

/**
 * The plain Keyv adapter over a SQL backend's table (full keys), for apps that also use raw
 * Keyv on the same data. A raw write goes through the driver, booked to the prefix the key
 * already has or, for a new key, the one the key layout gives it — so scopes list it and tracked
 * prefixes log it.
 */
export class SqlStore extends EventEmitter implements KeyvStoreAdapter {
  readonly [DRIVER]: Driver;
  readonly opts: { url: string; dialect: string };
  namespace: string | undefined;
  readonly #client: SqlClient;
  readonly #t: ReturnType<typeof tables>;

  constructor(client: SqlClient, table: string, driver: Driver, url: string) {
    super();
    this.#client = client;
    this.#t = tables(table);
    this[DRIVER] = driver;
    this.opts = { url, dialect: `keyv-workspaces-${client.dialect}` };
  }

  /** The connection, for tools (and tests) that work on the same tables. */
  get sqlClient(): SqlClient {
    return this.#client;
  }

  get #live(): string {
    return `(expires_at IS NULL OR expires_at > ${nowMs(this.#client.dialect)})`;
  }

  async #scopeOf(key: string): Promise<[PrefixStore, string]> {
    const rows = await this.#client.read(`SELECT prefix FROM ${this.#t.data} WHERE key = $1`, [checkedKey(key)]);
    const booked = rows[0]?.prefix;
    const length = typeof booked === "string" ? booked.length : (layoutPrefixLength(key) ?? -1);
    // A key with no ":" at all has no prefix: it is booked under "" and listed by no scope.
    const prefix = length < 0 ? "" : key.slice(0, length);
    return [this[DRIVER].scope(prefix), length < 0 ? key : key.slice(length + 1)];
  }

  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    const rows = await this.#client.read(`SELECT value FROM ${this.#t.data} WHERE key = $1 AND ${this.#live}`, [
      checkedKey(key),
    ]);
    return (rows[0]?.value ?? undefined) as StoredData<Value> | undefined;
  }

  async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return Promise.all(keys.map((key) => this.get<Value>(key)));
  }

  async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  async set(key: string, value: unknown, ttl?: number): Promise<void> {
    const [scope, name] = await this.#scopeOf(key);
    if (scope.prefix === "") await this.#unprefixed(key, value, ttl);
    else await scope.set(name, value, ttl);
  }

  async #unprefixed(key: string, value: unknown, ttl?: number): Promise<void> {
    const valid = typeof ttl === "number" && ttl > 0 ? Math.ceil(ttl) : null;
    await this.#client.query(
      `INSERT INTO ${this.#t.data} (key, prefix, value, expires_at) VALUES ($1, '', $2, ${nowMs(this.#client.dialect)} + CAST($3 AS BIGINT)) ` +
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
      [checkedKey(key), String(value), valid],
    );
  }

  async delete(key: string): Promise<boolean> {
    const [scope, name] = await this.#scopeOf(key);
    if (scope.prefix !== "") return scope.delete(name);
    const rows = await this.#client.query(`DELETE FROM ${this.#t.data} WHERE key = $1 RETURNING key`, [key]);
    return rows.length > 0;
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    let all = true;
    for (const key of keys) if (!(await this.delete(key))) all = false;
    return all;
  }

  /** Deletes the keys of Keyv's namespace, by key range; without a namespace, the whole table. */
  async clear(): Promise<void> {
    if (!this.namespace) {
      await this.#client.transaction(async (query) => {
        for (const table of [this.#t.data, this.#t.log, this.#t.versions]) await query(`DELETE FROM ${table}`);
      });
      return;
    }
    const keys: string[] = [];
    for await (const [key] of this.iterator(this.namespace)) keys.push(key as string);
    for (let i = 0; i < keys.length; i += PAGE) {
      const batch = keys.slice(i, i + PAGE);
      await this.#client.query(`DELETE FROM ${this.#t.data} WHERE ${inList(this.#client.dialect, "key", 1)}`, [
        listParam(this.#client.dialect, batch),
      ]);
    }
  }

  /** Full keys in `<namespace>:` … `<namespace>;` (byte order), with their values. */
  async *iterator<Value>(namespace?: string): AsyncGenerator<Array<string | Awaited<Value> | undefined>, void> {
    const low = namespace ? joinKey(namespace, "") : "";
    const high = namespace ? `${namespace};` : undefined;
    let last: string | undefined;
    for (;;) {
      const params: unknown[] = [last ?? low];
      let where = last === undefined ? "key >= $1" : "key > $1";
      if (high !== undefined) {
        params.push(high);
        where += " AND key < $2";
      }
      const rows = await this.#client.read(
        `SELECT key, value FROM ${this.#t.data} WHERE ${where} AND ${this.#live} ORDER BY key LIMIT ${PAGE}`,
        params,
      );
      for (const row of rows) yield [String(row.key), row.value as Awaited<Value>];
      if (rows.length < PAGE) return;
      last = String(rows[rows.length - 1]?.key);
    }
  }

  /** The backend's close() releases the connection; a raw Keyv disconnecting must not. */
  async disconnect(): Promise<void> {}
}
