import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import sqlite3 from "sqlite3";

export const PG_URL = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A table per test root: tests drop only what they created. */
export const pgTable = (root: string) => `t_${root.toLowerCase()}`;
export const pgUrl = (root: string) => `${PG_URL}?table=${pgTable(root)}`;
export const sqliteFile = (root: string) => join(tmpdir(), `${root}.sqlite`);

export async function pgQuery<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end();
  }
}

export async function dropPgTables(table: string): Promise<void> {
  await pgQuery(
    `DROP TABLE IF EXISTS "${table}", "${table}_versions", "${table}_log", "${table}_changes", "${table}_watchers", "${table}_quotas"`,
  );
  // A quota's trigger function outlives its table (lib/backends/sql/quota-ddl.ts).
  await pgQuery(`DROP FUNCTION IF EXISTS "${table}_quota"()`);
}

export function removeSqlite(path: string): void {
  for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(`${path}${suffix}`, { force: true });
}

export async function sqliteQuery<T = Record<string, unknown>>(
  path: string,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const opened = new sqlite3.Database(path, (error) => (error ? reject(error) : resolve(opened)));
  });
  try {
    return await new Promise<T[]>((resolve, reject) =>
      db.all(text, params, (error, rows) => (error ? reject(error) : resolve(rows as T[]))),
    );
  } finally {
    await new Promise((resolve) => db.close(resolve));
  }
}

/** Every [key, value, expires_at] row of a SQL backend whose key contains `root`. */
export async function sqlRows(backend: string, url: string, root: string): Promise<Array<[string, unknown, unknown]>> {
  const rows =
    backend === "postgres"
      ? await pgQuery<{ key: string; value: unknown; expires_at: unknown }>(
          `SELECT key, value, expires_at FROM "${new URL(url).searchParams.get("table")}" WHERE strpos(key, $1) > 0 ORDER BY key`,
          [root],
        ).catch(() => [])
      : await sqliteQuery<{ key: string; value: unknown; expires_at: unknown }>(
          url.slice("sqlite:".length),
          "SELECT key, value, expires_at FROM kvws WHERE instr(key, ?) > 0 ORDER BY key",
          [root],
        ).catch(() => []);
  return rows.map((row) => [row.key, row.value, row.expires_at]);
}
