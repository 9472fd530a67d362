import { isAbsolute, resolve } from "node:path";
import { InvalidConfigError } from "../../errors.js";
import type { Backend, OpenOptions } from "../driver.js";
import { redact } from "../redis/url.js";
import { ChangeWriter } from "./changes.js";
import { sqlDriver } from "./driver.js";
import { openPostgresClient, parsePostgresUrl } from "./postgres.js";
import { ensureSchema, tables } from "./schema.js";
import { openSqliteClient, retryBusy } from "./sqlite.js";
import { SqlStore } from "./store.js";
import { type SqlWatch, sqlWatch } from "./watch.js";
import { pgFeed } from "./watch-pg.js";
import { sqliteFeed } from "./watch-sqlite.js";

/** The table of a `sqlite:` file; one file = one store. */
export const SQLITE_TABLE = "kvws";
const MEMORY = ":memory:";

/**
 * `sqlite:data/x.db` (relative to the working directory), `sqlite:/abs/x.db`, `sqlite:///abs/x.db`,
 * `sqlite::memory:` (a private database of this storage). The normalised URL carries the absolute path.
 */
export function sqlitePath(url: string): string {
  let rest = url.slice("sqlite:".length);
  if (rest.startsWith("//")) {
    let parsed: URL;
    try {
      parsed = new URL(url);
      rest = decodeURIComponent(parsed.pathname);
    } catch (error) {
      throw new InvalidConfigError("url", `sqlite URL ${JSON.stringify(url)} is not a valid URL`, { cause: error });
    }
    if (parsed.hostname !== "" && parsed.hostname !== "localhost") {
      throw new InvalidConfigError("url", `sqlite URL ${JSON.stringify(url)} names a host; only local files work`);
    }
  }
  if (rest === "") throw new InvalidConfigError("url", `sqlite URL ${JSON.stringify(url)} names no path`);
  return rest === MEMORY || isAbsolute(rest) ? rest : resolve(rest);
}

export async function openSqliteBackend(url: string, options: OpenOptions = {}): Promise<Backend> {
  const path = sqlitePath(url);
  const client = await openSqliteClient(path, options.commandTimeoutMs);
  let watchable: boolean;
  try {
    watchable = await retryBusy(() => ensureSchema(client, SQLITE_TABLE), options.commandTimeoutMs);
  } catch (error) {
    await client.close().catch(() => {});
    throw error;
  }
  const normalised = `sqlite:${path}`;
  const t = tables(SQLITE_TABLE);
  // A private :memory: database is its own database: its registry is its own too.
  const database = path === MEMORY ? undefined : `${normalised}#${SQLITE_TABLE}`;
  const changes = watchable ? new ChangeWriter(client, t, SQLITE_TABLE, database) : undefined;
  const feed =
    changes &&
    sqlWatch(
      changes,
      sqliteFeed({
        path,
        t,
        changesTable: `${SQLITE_TABLE}_changes`,
        busyTimeoutMs: options.commandTimeoutMs,
        shared: path === MEMORY ? client : undefined,
      }),
    );
  const driver = sqlDriver(client, SQLITE_TABLE, { changes, watch: feed?.watch });
  return {
    store: new SqlStore(client, SQLITE_TABLE, driver, normalised),
    driver,
    url: normalised,
    close: closing(feed, () => client.close()),
  };
}

function closing(feed: SqlWatch | undefined, close: () => Promise<void>): () => Promise<void> {
  let closed: Promise<void> | undefined;
  return () => {
    closed ??= (async () => {
      await feed?.close();
      await close();
    })();
    return closed;
  };
}

/** Host, port, database and table: the same database whoever connects (the registry of changes.ts). */
function pgDatabase(url: string, table: string): string {
  const parsed = new URL(url);
  return `postgres://${parsed.host}${parsed.pathname}#${table}`;
}

export async function openPostgresBackend(url: string, options: OpenOptions = {}): Promise<Backend> {
  const { table } = parsePostgresUrl(url);
  const client = await openPostgresClient(url, options);
  let watchable: boolean;
  try {
    watchable = await ensureSchema(client, table);
  } catch (error) {
    await client.close();
    throw error;
  }
  const t = tables(table);
  const changes = watchable ? new ChangeWriter(client, t, table, pgDatabase(url, table)) : undefined;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const feed =
    changes &&
    sqlWatch(
      changes,
      pgFeed({
        connectionString: parsePostgresUrl(url).connectionString,
        table,
        t,
        where: redact(url),
        connectTimeoutMs,
        commandTimeoutMs: options.commandTimeoutMs ?? 2 * connectTimeoutMs,
      }),
    );
  const driver = sqlDriver(client, table, { changes, watch: feed?.watch });
  return { store: new SqlStore(client, table, driver, url), driver, url, close: closing(feed, () => client.close()) };
}
