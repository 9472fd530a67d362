import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LOG_LIMIT } from "../../lib/backends/change-log.js";
import { TABLE_NAME } from "../../lib/backends/sql/client.js";
import { PAGE, PRUNE_LIMIT, TRIM_EVERY } from "../../lib/backends/sql/driver.js";
import { sqliteError } from "../../lib/backends/sql/errors.js";
import { loadPeer } from "../../lib/backends/sql/peer.js";
import { BUSY_TIMEOUT_MS } from "../../lib/backends/sql/sqlite.js";
import {
  InvalidConfigError,
  IOError,
  MAX_ROLE_BYTES,
  openStorage,
  ReadOnlyError,
  StorageFullError,
  UnsupportedStoreError,
} from "../../lib/index.js";
import { BACKENDS, perTest } from "../support/backends.js";
import { randomRoot } from "../support/env.js";
import { removeSqlite, sqliteQuery } from "../support/sql.js";
import { sqlEngineSuite } from "../support/sql-suite.js";

const sqlite = BACKENDS.find((b) => b.name === "sqlite")!;
const file = (url: string) => url.slice("sqlite:".length);

sqlEngineSuite(sqlite, {
  rowCount: async (url, root) =>
    Number(
      (await sqliteQuery<{ n: number }>(file(url), "SELECT count(*) AS n FROM kvws WHERE instr(key, ?) = 1", [root]))[0]
        ?.n,
    ),
  plan: async (url, prefix) =>
    (
      await sqliteQuery<{ detail: string }>(
        file(url),
        "EXPLAIN QUERY PLAN SELECT key FROM kvws WHERE prefix = ? AND key > ? AND (expires_at IS NULL OR expires_at > 0) ORDER BY key LIMIT 500",
        [prefix, ""],
      )
    )
      .map((row) => row.detail)
      .join("\n"),
});

describe("sqlite: URLs", () => {
  const { newRoot, track } = perTest(sqlite);

  it("resolve a relative path against the working directory; the bootstrap config carries it absolute", async () => {
    const root = newRoot();
    const dir = join(tmpdir(), `${root}-dir`);
    mkdirSync(dir);
    const cwd = process.cwd();
    try {
      process.chdir(dir);
      const s = await track(openStorage({ url: "sqlite:rel/../x.db", root, workspaceId: "w" }));
      await s.artifacts.save("a", 1);
      expect(s.toBootstrapConfig().url).toBe(`sqlite:${join(dir, "x.db")}`);
      process.chdir(cwd);
      const again = await track(openStorage(s.toBootstrapConfig()));
      expect(await again.artifacts.load("a")).toBe(1);
    } finally {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("accepts sqlite:///abs, refuses another host and an empty path", async () => {
    const root = newRoot();
    const path = join(tmpdir(), `${root}.sqlite`);
    const s = await track(openStorage({ url: `sqlite://${path}`, root }));
    expect(s.toBootstrapConfig().url).toBe(`sqlite:${path}`);
    await expect(openStorage({ url: "sqlite://elsewhere/x.db", root })).rejects.toBeInstanceOf(InvalidConfigError);
    await expect(openStorage({ url: "sqlite:", root })).rejects.toBeInstanceOf(InvalidConfigError);
    removeSqlite(path);
  });

  it("a file that is not a database is an IOError with the cause, not a crash", async () => {
    const root = randomRoot("sqlbad");
    const path = join(tmpdir(), `${root}.sqlite`);
    const { writeFileSync } = await import("node:fs");
    writeFileSync(path, "this is not sqlite".repeat(100));
    try {
      const error = await openStorage({ url: `sqlite:${path}`, root }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IOError);
      expect((error as Error).cause).toBeDefined();
    } finally {
      removeSqlite(path);
    }
  });

  it("maps SQLite's full and read-only results to typed errors, cause kept", () => {
    const full = Object.assign(new Error("SQLITE_FULL: database or disk is full"), { code: "SQLITE_FULL" });
    const ro = Object.assign(new Error("SQLITE_READONLY: attempt to write a readonly database"), {
      code: "SQLITE_READONLY",
    });
    expect(sqliteError(full, "/x.db")).toBeInstanceOf(StorageFullError);
    expect(sqliteError(ro, "/x.db")).toMatchObject({ code: "ERR_READ_ONLY", cause: ro });
    expect(sqliteError(ro, "/x.db")).toBeInstanceOf(ReadOnlyError);
  });

  it("a missing optional client package is a typed error naming what to install", async () => {
    const missing = Object.assign(new Error("Cannot find package 'sqlite3'"), { code: "ERR_MODULE_NOT_FOUND" });
    const error = await loadPeer("sqlite3", "sqlite:", () => Promise.reject(missing)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedStoreError);
    expect((error as Error).message).toMatch(/npm install sqlite3/);
    expect((error as Error).cause).toBe(missing);
  });
});

describe("docs/sql.md states the numbers the code uses", () => {
  const doc = readFileSync(new URL("../../docs/sql.md", import.meta.url), "utf8");
  it("page, prune, log, busy wait, name limits", () => {
    expect(doc).toContain(`ORDER BY key LIMIT ${PAGE}\``);
    expect(doc).toContain(`deletes up to ${PRUNE_LIMIT} expired rows`);
    expect(doc).toContain(
      `more than ${LOG_LIMIT} writes behind (the log is trimmed every ${TRIM_EVERY} writes to the last ${LOG_LIMIT})`,
    );
    expect(doc).toContain(`for up to ${BUSY_TIMEOUT_MS / 1000} s`);
    expect(doc).toContain(`at most ${MAX_ROLE_BYTES} bytes`);
    expect(TABLE_NAME.test("t".repeat(48))).toBe(true);
    expect(TABLE_NAME.test("t".repeat(49))).toBe(false);
    expect(doc).toContain("identifier of at most 48 characters");
  });
});
