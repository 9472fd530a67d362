import { describe, expect, it } from "vitest";
import { pgError } from "../../lib/backends/sql/errors.js";
import { parsePostgresUrl } from "../../lib/backends/sql/postgres.js";
import type { SqlStore } from "../../lib/backends/sql/store.js";
import {
  ConnectionError,
  InvalidConfigError,
  openBackend,
  openStorage,
  PermissionDeniedError,
  ReadOnlyError,
  StorageFullError,
} from "../../lib/index.js";
import { BACKENDS, perTest } from "../support/backends.js";
import { freePort } from "../support/servers.js";
import { PG_URL, pgQuery } from "../support/sql.js";
import { sqlEngineSuite } from "../support/sql-suite.js";

const postgres = BACKENDS.find((b) => b.name === "postgres")!;
const tableOf = (url: string) => new URL(url).searchParams.get("table") as string;

sqlEngineSuite(postgres, {
  rowCount: async (url, root) =>
    Number(
      (
        await pgQuery<{ n: number }>(`SELECT count(*)::int AS n FROM "${tableOf(url)}" WHERE starts_with(key, $1)`, [
          root,
        ])
      )[0]?.n,
    ),
  async plan(url, prefix) {
    const table = tableOf(url);
    // A big enough table that the planner would rather scan it whole if the index did not fit.
    await pgQuery(
      `INSERT INTO "${table}" (key, prefix, value) SELECT 'zz:' || g || ':x', 'zz:' || g, '1' FROM generate_series(1, 5000) g`,
    );
    await pgQuery(`ANALYZE "${table}"`);
    const rows = await pgQuery<{ "QUERY PLAN": string }>(
      `EXPLAIN SELECT key FROM "${table}" WHERE prefix = '${prefix}' AND key > '' AND (expires_at IS NULL OR expires_at > 0) ORDER BY key LIMIT 500`,
    );
    return rows.map((row) => row["QUERY PLAN"]).join("\n");
  },
});

describe("postgres:// URLs", () => {
  const { newRoot, track } = perTest(postgres);

  it("postgresql:// works too, and the table comes from ?table=", async () => {
    const root = newRoot();
    const url = postgres.url(root).replace(/^postgres:/, "postgresql:");
    const s = await track(openStorage({ url, root, workspaceId: "w" }));
    await s.artifacts.save("a", 1);
    expect(s.toBootstrapConfig().url).toBe(url);
    const [row] = await pgQuery<{ n: number }>(`SELECT count(*)::int AS n FROM "${tableOf(url)}" WHERE prefix = $1`, [
      s.keyspace.prefix("artifacts"),
    ]);
    expect(row?.n).toBe(1);
  });

  it("refuses a table name that is not a plain identifier, before connecting", async () => {
    expect(() => parsePostgresUrl(`${PG_URL}?table=x;drop`)).toThrow(InvalidConfigError);
    await expect(openStorage({ url: `${PG_URL}?table=Bad"`, root: "r" })).rejects.toMatchObject({
      code: "ERR_INVALID_CONFIG",
      field: "url",
    });
  });

  it("an unreachable server is a ConnectionError within connectTimeoutMs", async () => {
    const port = await freePort();
    const started = Date.now();
    const error = await openStorage(
      { url: `postgres://postgres@127.0.0.1:${port}/test`, root: "r" },
      { connectTimeoutMs: 500 },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).cause).toBeDefined();
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("a read-only session refuses writes with ReadOnlyError; reads still work", async () => {
    const root = newRoot();
    const url = postgres.url(root);
    const s = await track(openStorage({ url, root, workspaceId: "w" }));
    await s.artifacts.save("a", 1);
    const readOnly = `${url}&options=${encodeURIComponent("-c default_transaction_read_only=on")}`;
    const ro = await track(openStorage({ url: readOnly, root, workspaceId: "w" }));
    expect(await ro.artifacts.load("a")).toBe(1);
    const error = await ro.artifacts.save("b", 2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReadOnlyError);
    expect((error as Error).cause).toMatchObject({ code: "25006" });
  });

  it("maps SQLSTATE 42501 and 53100 to typed errors, cause kept, password never in the message", () => {
    const denied = Object.assign(new Error("permission denied for table t"), { code: "42501" });
    expect(pgError(denied, "postgres://u:***@h/db")).toBeInstanceOf(PermissionDeniedError);
    const full = Object.assign(new Error("could not extend file: No space left on device"), { code: "53100" });
    expect(pgError(full, "postgres://h/db")).toMatchObject({ code: "ERR_STORAGE_FULL", cause: full });
    expect(pgError(full, "postgres://h/db")).toBeInstanceOf(StorageFullError);
  });

  it("keeps its pool to itself: closing one storage leaves another one's connection working", async () => {
    const root = newRoot();
    const url = postgres.url(root);
    const a = await openStorage({ url, root, workspaceId: "w" });
    const b = await track(openStorage({ url, root, workspaceId: "w" }));
    await a.artifacts.save("x", 1);
    await a.close();
    expect(await b.artifacts.load("x")).toBe(1);
  });

  it("keeps point statements prepared on its connections, batches and DDL not", async () => {
    const root = newRoot();
    const url = postgres.url(root);
    const b = await openBackend(url);
    try {
      const scope = b.driver.scope(`${root}:ws:w:notes`);
      // One at a time: the pool lends its one idle connection again and again.
      await scope.set("k", "v");
      for (let i = 0; i < 3; i++) expect(await scope.get("k")).toBe("v");
      await scope.setMany(Array.from({ length: 20 }, (_, i) => ({ name: `n${i}`, value: "v" })));
      const client = (b.store as SqlStore).sqlClient;
      const kept = (await client.query("SELECT statement FROM pg_prepared_statements")).map((r) => String(r.statement));
      expect(kept.some((text) => text.startsWith("SELECT value FROM") && text.includes("key = $1"))).toBe(true);
      expect(kept.some((text) => text.startsWith("INSERT INTO") && text.includes("VALUES ($2, $1, $3"))).toBe(true);
      expect(kept.some((text) => text.includes("$61"))).toBe(false);
      expect(kept.some((text) => text.startsWith("CREATE"))).toBe(false);
    } finally {
      await b.close();
    }
  });
});
