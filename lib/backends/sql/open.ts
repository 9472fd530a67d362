import { isAbsolute, resolve } from "node:path";
import { InvalidConfigError } from "../../errors.js";
import type { Backend, OpenOptions } from "../driver.js";
import { sqlDriver } from "./driver.js";
import { openPostgresClient, parsePostgresUrl } from "./postgres.js";
import { ensureSchema } from "./schema.js";
import { openSqliteClient, retryBusy } from "./sqlite.js";
import { SqlStore } from "./store.js";

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
  try {
    await retryBusy(() => ensureSchema(client, SQLITE_TABLE), options.commandTimeoutMs);
  } catch (error) {
    await client.close().catch(() => {});
    throw error;
  }
  const normalised = `sqlite:${path}`;
  const driver = sqlDriver(client, SQLITE_TABLE);
  return {
    store: new SqlStore(client, SQLITE_TABLE, driver, normalised),
    driver,
    url: normalised,
    close: () => client.close(),
  };
}

export async function openPostgresBackend(url: string, options: OpenOptions = {}): Promise<Backend> {
  const { table } = parsePostgresUrl(url);
  const client = await openPostgresClient(url, options);
  try {
    await ensureSchema(client, table);
  } catch (error) {
    await client.close();
    throw error;
  }
  const driver = sqlDriver(client, table);
  return { store: new SqlStore(client, table, driver, url), driver, url, close: () => client.close() };
}
