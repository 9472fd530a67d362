// Quotas on the library's SQL engines (lib/backends/sql/quota.ts): real SQLite files and the real
// PostgreSQL, two storages and a second process writing one workspace at once.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import KeyvPostgres from "@keyv/postgres";
import KeyvSqlite from "@keyv/sqlite";
import { afterEach, describe, expect, it } from "vitest";
import {
  createStorage,
  openBackend,
  openStorage,
  QuotaExceededError,
  UnsupportedStoreError,
  type WorkspaceStorage,
} from "../../lib/index.js";
import { randomRoot } from "../support/env.js";
import {
  dropPgTables,
  PG_URL,
  pgQuery,
  pgTable,
  pgUrl,
  removeSqlite,
  sqliteFile,
  sqliteQuery,
} from "../support/sql.js";
import { collect } from "../support/watch.js";

const writer = fileURLToPath(new URL("../fixtures/sql-quota-writer.ts", import.meta.url));

interface Engine {
  name: "sqlite" | "postgres";
  url(root: string): string;
  cleanup(root: string): Promise<void>;
  /** The quota triggers on the store's data table. */
  triggers(root: string): Promise<number>;
  sql(root: string, text: string): Promise<unknown>;
}

const ENGINES: Engine[] = [
  {
    name: "sqlite",
    url: (root) => `sqlite:${sqliteFile(root)}`,
    cleanup: async (root) => removeSqlite(sqliteFile(root)),
    triggers: async (root) =>
      (await sqliteQuery(sqliteFile(root), "SELECT name FROM sqlite_master WHERE type = 'trigger'")).length,
    sql: (root, text) => sqliteQuery(sqliteFile(root), text.replaceAll("$T", "kvws")),
  },
  {
    name: "postgres",
    url: pgUrl,
    cleanup: (root) => dropPgTables(pgTable(root)),
    triggers: async (root) =>
      (
        await pgQuery("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass($1) AND NOT tgisinternal", [
          `"${pgTable(root)}"`,
        ])
      ).length,
    sql: (root, text) => pgQuery(text.replaceAll("$T", pgTable(root))),
  },
];

/** The writer fixture in its own process, opened and waiting: go() starts it and resolves its output. */
async function startWriter(...args: [string, string, string, string, number]) {
  const child = spawn(process.execPath, ["--import", "tsx", writer, ...args.map(String)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.setEncoding("utf8");
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      if (out.startsWith("ready\n")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`the writer exited with ${code} before it was ready`)));
  });
  return {
    async go() {
      child.stdin.end("go\n");
      const code = await exited;
      if (code !== 0) throw new Error(`the writer exited with ${code}`);
      return out.slice("ready\n".length);
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function sums(storage: WorkspaceStorage) {
  const all = Object.values(await storage.stats());
  return { entries: all.reduce((n, s) => n + s.entries, 0), bytes: all.reduce((n, s) => n + s.bytes, 0) };
}

describe.each(ENGINES)("quotas on $name", (engine) => {
  const opened: WorkspaceStorage[] = [];
  const roots: string[] = [];
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    for (const root of roots.splice(0)) await engine.cleanup(root);
  });
  const open = async (root: string, workspaceId: string | null) => {
    const s = await openStorage({ url: engine.url(root), root, workspaceId });
    opened.push(s);
    return s;
  };
  const fresh = async () => {
    const root = randomRoot(`q${engine.name.slice(0, 2)}`);
    roots.push(root);
    const operator = await open(root, null);
    return { root, operator, a: operator.withWorkspace("a") };
  };

  it("refuses a write past maxEntries with the right numbers and stores nothing of it", async () => {
    const { operator, a } = await fresh();
    const notes = a.collection("notes");
    await notes.set("one", "1");
    await operator.setQuota("a", { maxEntries: 2 });
    await notes.set("two", "2");
    const error = await notes.set("three", "3").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error).toMatchObject({ code: "ERR_QUOTA_EXCEEDED", workspaceId: "a", limit: { maxEntries: 2 } });
    expect((error as Error).message).toContain("2 of 2 entries used, the write adds 1");
    expect(await notes.get("three")).toBeUndefined();
    expect(await a.quota()).toEqual({ limit: { maxEntries: 2 }, ...(await sums(a)) });
  });

  it("lets deletes and non-growing overwrites through when over a limit set below the use; growth is refused", async () => {
    const { operator, a } = await fresh();
    const notes = a.collection("notes");
    await notes.setMany([
      { key: "x", value: "aaaa" },
      { key: "y", value: "bbbb" },
      { key: "z", value: "cccc" },
    ]);
    const { bytes } = await sums(a);
    await operator.setQuota("a", { maxEntries: 1, maxBytes: bytes - 5 });
    await notes.set("x", "dddd");
    await notes.set("y", "b");
    await expect(notes.set("z", "cccccccccc")).rejects.toThrow(/bytes used, the write adds 6/);
    expect(await notes.get("z")).toBe("cccc");
    expect(await notes.delete("z")).toBe(true);
    await expect(notes.set("new", "n")).rejects.toThrow(/2 of 1 entries used/);
    expect(await a.quota()).toEqual({ limit: { maxEntries: 1, maxBytes: bytes - 5 }, ...(await sums(a)) });
  });

  it("setMany is all-or-nothing, and counts its entries as one write", async () => {
    const { operator, a } = await fresh();
    const notes = a.collection("notes");
    await operator.setQuota("a", { maxEntries: 3 });
    await notes.set("k0", "0");
    const error = await notes
      .setMany([
        { key: "k1", value: "1" },
        { key: "k2", value: "2" },
        { key: "k3", value: "3" },
      ])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect((error as Error).message).toContain("1 of 3 entries used, the write adds 3");
    expect(await notes.getMany(["k1", "k2", "k3"])).toEqual([undefined, undefined, undefined]);
    await notes.setMany([
      { key: "k1", value: "1" },
      { key: "k0", value: "again" },
      { key: "k2", value: "2" },
    ]);
    expect((await a.quota()).entries).toBe(3);
  });

  // PostgreSQL checks a transaction's net change at commit; SQLite's triggers check row by row, and
  // a batch they refuse that passes as a whole is written again in a transaction of its own.
  it("judges a batch by its net change, whatever the order of its rows", async () => {
    const { operator, a } = await fresh();
    const notes = a.collection("notes");
    await notes.setMany([
      { key: "x", value: "a".repeat(20) },
      { key: "y", value: "b".repeat(20) },
    ]);
    const full = await sums(a);
    await operator.setQuota("a", { maxEntries: 2, maxBytes: full.bytes });
    // At both limits: the growing row first, then one that shrinks more. Net: 5 bytes fewer.
    await notes.setMany([
      { key: "x", value: "a".repeat(25) },
      { key: "y", value: "b".repeat(10) },
    ]);
    expect(await notes.getMany(["x", "y"])).toEqual(["a".repeat(25), "b".repeat(10)]);
    // Over a limit set below the use: a batch that shrinks it goes through, though one row grows.
    await operator.setQuota("a", { maxBytes: 10 });
    await notes.setMany([
      { key: "x", value: "a".repeat(30) },
      { key: "y", value: "b" },
    ]);
    expect((await a.quota()).bytes).toBe(full.bytes - 5 - 4);
    // A batch that grows it is refused whole, though one of its rows shrinks.
    const error = await notes
      .setMany([
        { key: "y", value: "" },
        { key: "x", value: "a".repeat(40) },
      ])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(await notes.getMany(["x", "y"])).toEqual(["a".repeat(30), "b"]);
    expect(await a.quota()).toEqual({ limit: { maxBytes: 10 }, ...(await sums(a)) });
  });

  it("counts conditional writes and deletes, and refuses a conditional write past the limit", async () => {
    const { operator, a } = await fresh();
    await operator.setQuota("a", { maxEntries: 2 });
    const first = await a.artifacts.save("p1", 1, { ifVersion: null });
    await a.artifacts.save("p2", 2, { ifVersion: null });
    await expect(a.artifacts.save("p3", 3, { ifVersion: null })).rejects.toBeInstanceOf(QuotaExceededError);
    expect(await a.artifacts.delete("p1", { ifVersion: first.version })).toBe(true);
    await a.artifacts.save("p3", 3, { ifVersion: null });
    expect(await a.quota()).toEqual({ limit: { maxEntries: 2 }, ...(await sums(a)) });
    expect((await a.quota()).entries).toBe(2);
  });

  it("an already-open storage obeys a quota set, changed and removed elsewhere at once", async () => {
    const { root, operator } = await fresh();
    const other = (await open(root, "a")).collection("notes");
    await other.set("warm", "1");
    await operator.setQuota("a", { maxEntries: 1 });
    await expect(other.set("next", "2")).rejects.toBeInstanceOf(QuotaExceededError);
    await operator.setQuota("a", { maxEntries: 2 });
    await other.set("next", "2");
    expect(await engine.triggers(root)).toBe(3);
    await operator.setQuota("a", null);
    expect(await engine.triggers(root)).toBe(0);
    for (let i = 0; i < 5; i++) await other.set(`free-${i}`, "x");
    expect((await operator.withWorkspace("a").quota()).limit).toBeNull();
    expect(await engine.sql(root, 'SELECT count(*) AS n FROM "$T_quotas"')).toMatchObject([{ n: expect.anything() }]);
    // Set again, the count starts from what is stored now.
    await operator.setQuota("a", { maxEntries: 100 });
    expect((await operator.withWorkspace("a").quota()).entries).toBe(7);
  });

  it("concurrent writers of two storages and a second process never store more than maxEntries", async () => {
    const { root, operator } = await fresh();
    const max = 90;
    await operator.setQuota("w", { maxEntries: max });
    const mine = [await open(root, "w"), await open(root, "w")];
    const attempt = async (s: WorkspaceStorage, tag: string) => {
      let stored = 0;
      for (let i = 0; i < 60; i++) {
        try {
          if (i % 3 === 0) await s.artifacts.save(`${tag}-${i}`, i, { ifVersion: null });
          else await s.collection("notes").set(`${tag}-${i}`, i);
          stored++;
        } catch (error) {
          if (!(error instanceof QuotaExceededError)) throw error;
        }
      }
      return stored;
    };
    const child = await startWriter(engine.url(root), root, "w", "c", 60);
    const [s1, s2, out] = await Promise.all([attempt(mine[0]!, "s1"), attempt(mine[1]!, "s2"), child.go()]);
    const fromChild = JSON.parse(out) as { stored: number; refused: number };
    expect(fromChild.stored + fromChild.refused).toBe(60);
    expect(s1 + s2 + fromChild.stored).toBe(max);
    const w = operator.withWorkspace("w");
    expect(await sums(w)).toMatchObject({ entries: max });
    expect(await w.quota()).toEqual({ limit: { maxEntries: max }, ...(await sums(w)) });
  });

  it("quota() equals stats() after TTLs, clears, raw writes, other workspaces and bookkeeping", async () => {
    const { root, operator, a } = await fresh();
    await a.collection("notes").set("before", { big: "x".repeat(50) });
    await operator.setQuota("a", { maxBytes: 100_000 });
    await operator.setQuota("ab", { maxEntries: 10 });
    const cache = a.collection("cache");
    // Long enough that it cannot expire between quota() and stats() below on a loaded machine (40 ms did).
    await cache.set("short", "gone soon", 500);
    await cache.set("long", "stays", 60_000);
    await a.workflows.add({ name: "wf", source: "x", description: "counted as stats() counts it" });
    await a.vectors.upsert("v", [0, 1]);
    await a.collection("tmp").setMany([
      { key: "t1", value: "é€😀" },
      { key: "t2", value: "2" },
    ]);
    await a.collection("tmp").clear();
    await a.collection("notes").deleteMany(["before", "missing"]);
    await operator.withWorkspace("ab").collection("notes").set("elsewhere", "x");
    await operator.withWorkspace("a-b").collection("notes").set("look-alike", "x");
    const backend = await openBackend(engine.url(root));
    try {
      await (backend.store as { set(k: string, v: unknown): Promise<void> }).set(`${root}:ws:a:notes:raw`, "raw");
    } finally {
      await backend.close();
    }
    expect(await a.quota()).toEqual({ limit: { maxBytes: 100_000 }, ...(await sums(a)) });
    await sleep(550);
    // Expired but not yet deleted: counted by neither.
    expect(await a.quota()).toEqual({ limit: { maxBytes: 100_000 }, ...(await sums(a)) });
    expect((await operator.withWorkspace("ab").quota()).entries).toBe(1);
  });

  it("expired entries do not hold a full workspace: the refused write deletes them and goes through", async () => {
    const { operator, a } = await fresh();
    await operator.setQuota("a", { maxEntries: 2 });
    const notes = a.collection("notes");
    await notes.set("t1", "1", 40);
    await notes.set("t2", "2", 40);
    await expect(notes.set("now", "x")).rejects.toBeInstanceOf(QuotaExceededError);
    await sleep(80);
    await notes.set("now", "x");
    await notes.set("then", "y");
    expect(await a.quota()).toEqual({ limit: { maxEntries: 2 }, entries: 2, ...{ bytes: (await sums(a)).bytes } });
  });

  it("keys a quota by its exact base: a nested root with a quote, look-alike ids, many quotas at once", async () => {
    const root = randomRoot(`qn${engine.name.slice(0, 2)}`);
    roots.push(root);
    const nested = `${root}:it's`;
    const operator = await openStorage({ url: engine.url(root), root: nested, workspaceId: null });
    opened.push(operator);
    // Past LISTED_BASES (64), PostgreSQL's triggers stop naming the bases: both ways are enforced.
    const ids = Array.from({ length: engine.name === "postgres" ? 66 : 3 }, (_, i) => `w${i}`);
    for (const id of ids) await operator.setQuota(id, { maxEntries: 1 });
    for (const id of [ids[0]!, ids.at(-1)!]) {
      const notes = operator.withWorkspace(id).collection("notes");
      await notes.set("one", 1);
      await expect(notes.set("two", 2)).rejects.toBeInstanceOf(QuotaExceededError);
    }
    for (const id of ["w0x", "w0.b", "W0"]) {
      const notes = operator.withWorkspace(id).collection("notes");
      await notes.setMany([
        { key: "a", value: 1 },
        { key: "b", value: 2 },
      ]);
    }
    for (const id of ids.slice(1)) await operator.setQuota(id, null);
    expect(await engine.triggers(root)).toBe(3);
    await expect(operator.withWorkspace("w0").collection("notes").set("two", 2)).rejects.toBeInstanceOf(
      QuotaExceededError,
    );
    await operator.withWorkspace(ids.at(-1)!).collection("notes").set("two", 2);
    expect(await operator.withWorkspace("w0").quota()).toMatchObject({ limit: { maxEntries: 1 }, entries: 1 });
  });

  it("a watcher of the workspace sees the writes that went through and none that was refused", async () => {
    const { root, operator } = await fresh();
    await operator.setQuota("a", { maxEntries: 1 });
    const watcher = await open(root, "a");
    const events = watcher.watch({ collections: ["notes"] });
    const writer = (await open(root, "a")).collection("notes");
    await writer.set("warm", 0);
    await collect(events, (got) => got.some((e) => e.name === "warm"));
    await expect(writer.set("refused", 1)).rejects.toBeInstanceOf(QuotaExceededError);
    await writer.delete("warm");
    await writer.set("kept", 2);
    const got = await collect(events, (all) => all.some((e) => e.name === "kept"));
    expect(got.filter((e) => e.op !== "reset").map((e) => [e.op, e.name])).toEqual([
      ["delete", "warm"],
      ["set", "kept"],
    ]);
    await events.return?.();
  });

  it("a store made before quotas opens, works and takes a quota counting what it holds", async () => {
    const root = randomRoot(`qo${engine.name.slice(0, 2)}`);
    roots.push(root);
    const before = await openStorage({ url: engine.url(root), root, workspaceId: "a" });
    await before.collection("notes").setMany([
      { key: "x", value: 1 },
      { key: "y", value: 2 },
    ]);
    await before.close();
    await expect(engine.sql(root, 'SELECT 1 FROM "$T_quotas"')).rejects.toThrow();
    const operator = await open(root, null);
    const a = operator.withWorkspace("a");
    expect(await a.quota()).toEqual({ limit: null, ...(await sums(a)) });
    await operator.setQuota("a", { maxEntries: 3 });
    expect(await a.quota()).toEqual({ limit: { maxEntries: 3 }, ...(await sums(a)) });
    await a.collection("notes").set("z", 3);
    await expect(a.collection("notes").set("w", 4)).rejects.toBeInstanceOf(QuotaExceededError);
  });
});

describe("quotas over an app's own SQL adapter", () => {
  it.each([
    ["@keyv/sqlite", (root: string) => new KeyvSqlite({ uri: `sqlite://${sqliteFile(root)}`, table: "keyv" })],
    ["@keyv/postgres", (root: string) => new KeyvPostgres({ uri: PG_URL, schema: `s_${root}`, table: "keyv" })],
  ] as const)("%s cannot enforce one atomically: setQuota refuses with UnsupportedStoreError", async (name, make) => {
    const root = randomRoot("qad");
    const adapter = make(root);
    try {
      const storage = createStorage(adapter, { root, workspaceId: null });
      await expect(storage.setQuota("a", { maxEntries: 1 })).rejects.toBeInstanceOf(UnsupportedStoreError);
      await storage.withWorkspace("a").collection("notes").set("k", "v");
      expect(await storage.withWorkspace("a").quota()).toMatchObject({ limit: null, entries: 1 });
    } finally {
      if (name === "@keyv/postgres") await pgQuery(`DROP SCHEMA IF EXISTS "s_${root}" CASCADE`);
      await adapter.disconnect();
      removeSqlite(sqliteFile(root));
    }
  });
});
