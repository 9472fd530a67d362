// storage.watch() on the SQL engines (lib/backends/sql/changes.ts, watch.ts, watch-pg.ts,
// watch-sqlite.ts): other processes' changes, what an unwatched writer costs, pruning, a lost
// PostgreSQL connection, and a workspace role's feed under row-level security.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import {
  CHANGE_KEEP_MS,
  ChangeWriter,
  channelOf,
  HEARTBEAT_MS,
  PRUNE_EVERY,
  WATCH_RECHECK_MS,
  WATCHER_TTL_MS,
} from "../../lib/backends/sql/changes.js";
import type { SqlClient } from "../../lib/backends/sql/client.js";
import { sqlDriver } from "../../lib/backends/sql/driver.js";
import { openPostgresClient } from "../../lib/backends/sql/postgres.js";
import { ensureSchema, tables } from "../../lib/backends/sql/schema.js";
import { openSqliteClient } from "../../lib/backends/sql/sqlite.js";
import { SQLITE_POLL_MS } from "../../lib/backends/sql/watch-sqlite.js";
import {
  type ChangeEvent,
  keyspace,
  openStorage,
  provisionWorkspaceRole,
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
import { captureWarnings } from "../support/warnings.js";

const run = promisify(execFile);
const writer = fileURLToPath(new URL("../fixtures/sql-watch-writer.ts", import.meta.url));

interface Engine {
  name: "sqlite" | "postgres";
  url(root: string): string;
  cleanup(root: string): Promise<void>;
  /** Rows of the store's change table, with the root in their prefix. */
  changes(root: string): Promise<Array<{ prefix: string; name: string | null; op: string; at: number }>>;
}

const ENGINES: Engine[] = [
  {
    name: "sqlite",
    url: (root) => `sqlite:${sqliteFile(root)}`,
    cleanup: async (root) => removeSqlite(sqliteFile(root)),
    changes: (root) =>
      sqliteQuery(
        sqliteFile(root),
        "SELECT prefix, name, op, at FROM kvws_changes WHERE instr(prefix, ?) > 0 ORDER BY id",
        [root],
      ),
  },
  {
    name: "postgres",
    url: pgUrl,
    cleanup: (root) => dropPgTables(pgTable(root)),
    changes: (root) =>
      pgQuery(
        `SELECT prefix, name, op, at::float8 AS at FROM "${pgTable(root)}_changes" WHERE strpos(prefix, $1) > 0 ORDER BY id`,
        [root],
      ),
  },
];

const opened: WorkspaceStorage[] = [];
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function newRoot(engine: Engine, tag = "sqlw"): string {
  const root = randomRoot(tag);
  cleanups.push(() => engine.cleanup(root));
  return root;
}

async function open(url: string, root: string, workspaceId: string | null): Promise<WorkspaceStorage> {
  const s = await openStorage({ url, root, workspaceId });
  opened.push(s);
  return s;
}

/** Events until `stop` says enough, failing after `ms` instead of hanging. */
async function collect(
  it: AsyncIterator<ChangeEvent>,
  stop: (events: ChangeEvent[]) => boolean,
  ms = 20_000,
): Promise<ChangeEvent[]> {
  const out: ChangeEvent[] = [];
  const deadline = Date.now() + ms;
  while (!stop(out)) {
    const next = await Promise.race([
      it.next(),
      new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now()))),
    ]);
    if (next === "timeout") throw new Error(`timed out with ${JSON.stringify(out.slice(-5))} (${out.length} events)`);
    if (next.done) break;
    out.push(next.value);
  }
  return out;
}

const isReset = (e: ChangeEvent) => e.op === "reset";

describe.each(ENGINES)("watch() on $name across processes", (engine) => {
  it("reports another process's set, delete and clear in workspace A, in order, with versions, never B's", async () => {
    const root = newRoot(engine);
    const url = engine.url(root);
    const watcher = await open(url, root, "a");
    const events = watcher.watch();
    // The settle reset: every writer that asked before this watcher registered has asked again.
    expect(await collect(events, (got) => got.length === 1)).toEqual([{ collection: "*", name: null, op: "reset" }]);
    const args = (ws: string, tag: string, n: number) => ["--import", "tsx", writer, url, root, ws, tag, String(n)];
    const [mine, other] = await Promise.all([
      run(process.execPath, args("a", "p", 12), { timeout: 60_000 }),
      run(process.execPath, args("b", "x", 6), { timeout: 60_000 }),
    ]);
    const versions = JSON.parse(mine.stdout) as Record<string, string>;
    expect(Object.keys(JSON.parse(other.stdout))).toHaveLength(5);
    const got = (await collect(events, (all) => all.some((e) => e.op === "clear"))).filter((e) => !isReset(e));
    expect(got.every((e) => e.name === null || e.name.startsWith("p-") || e.name === "k")).toBe(true);
    // 12 names, the even ones saved twice: 18 sets; then notes/k, the delete of p-0, the clear.
    expect(got.filter((e) => e.collection === "artifacts" && e.op === "set")).toHaveLength(18);
    expect(got.filter((e) => e.name === "p-0").map((e) => e.op)).toEqual(["set", "set", "delete"]);
    expect(got.slice(-3)).toEqual([
      { collection: "notes", name: "k", op: "set" },
      { collection: "artifacts", name: "p-0", op: "delete" },
      { collection: "notes", name: null, op: "clear" },
    ]);
    for (const [name, version] of Object.entries(versions)) {
      expect(got.filter((e) => e.name === name).at(-1)?.version).toBe(version);
    }
    await events.return?.();
  }, 60_000);

  it("a writer nobody watches logs nothing and asks whether anyone watches once a second per scope", async () => {
    const root = newRoot(engine);
    const url = engine.url(root);
    const s = await open(url, root, "w"); // makes the tables
    const real: SqlClient =
      engine.name === "sqlite" ? await openSqliteClient(sqliteFile(root)) : await openPostgresClient(url);
    const sent: string[] = [];
    const spy: SqlClient = {
      ...real,
      query: (text, params) => {
        sent.push(text);
        return real.query(text, params);
      },
      transaction: (work) => {
        sent.push("BEGIN");
        return real.transaction(work);
      },
    };
    const table = engine.name === "sqlite" ? "kvws" : pgTable(root);
    try {
      await ensureSchema(spy, table);
      sent.length = 0;
      const changes = new ChangeWriter(spy, tables(table), table, `spy-${root}`);
      const store = sqlDriver(spy, table, { changes }).scope(`${root}:ws:w:notes`);
      for (let i = 0; i < 50; i++) await store.set(`k${i}`, "v");
      await store.delete("k0");
      expect(sent.filter((q) => q.includes("_watchers"))).toHaveLength(1);
      expect(sent.filter((q) => q.includes("_changes") || q === "BEGIN")).toEqual([]);
      expect(sent).toHaveLength(52); // one statement a write, and the one question
      expect(await engine.changes(root)).toEqual([]);
    } finally {
      await real.close();
      await s.close();
    }
  });

  it("writers log while a registration is alive (WATCHER_TTL_MS after its heartbeat), not after", async () => {
    const root = newRoot(engine);
    const url = engine.url(root);
    const watchers = engine.name === "sqlite" ? "kvws_watchers" : `"${pgTable(root)}_watchers"`;
    const query = (text: string, params: unknown[]) =>
      engine.name === "sqlite"
        ? sqliteQuery(sqliteFile(root), text.replace(/\$(\d)/g, "?$1"), params)
        : pgQuery(text, params);
    const watcher = await open(url, root, "a");
    const events = watcher.watch();
    await collect(events, (got) => got.length === 1); // registered by now
    const [own] = await query(`SELECT expires_at FROM ${watchers} WHERE base = $1`, [`${root}:ws:a`]);
    const left = Number(own?.expires_at) - Date.now();
    expect(left).toBeGreaterThan(WATCHER_TTL_MS - 5000);
    expect(left).toBeLessThanOrEqual(WATCHER_TTL_MS + 1000);
    // Another process's registrations, as rows: one that stopped beating, one alive.
    await query(`INSERT INTO ${watchers} (base, id, expires_at) VALUES ($1, 'dead', $2), ($3, 'alive', $4)`, [
      `${root}:ws:b`,
      Date.now() - 1,
      `${root}:ws:c`,
      Date.now() + 60_000,
    ]);
    const b = await open(url, root, "b");
    const c = await open(url, root, "c");
    await b.collection("notes").set("nobody", 1);
    await c.collection("notes").set("someone", 1);
    const logged = (await engine.changes(root)).filter((r) => r.prefix.endsWith(":notes"));
    expect(logged.map((r) => [r.prefix, r.name])).toEqual([[`${root}:ws:c:notes`, "someone"]]);
    await events.return?.();
    // A watcher that ends removes its registration.
    await watcher.close();
    expect(await query(`SELECT id FROM ${watchers} WHERE base = $1`, [`${root}:ws:a`])).toEqual([]);
  });

  it("prunes change rows older than CHANGE_KEEP_MS every PRUNE_EVERY logged writes", async () => {
    const root = newRoot(engine);
    const s = await open(engine.url(root), root, "w");
    const events = s.watch({ collections: ["notes"] });
    const notes = s.collection("notes");
    await notes.set("first", 1);
    await collect(events, (got) => got.some((e) => e.name === "first"));
    const old = Date.now() - CHANGE_KEEP_MS - 5000;
    const text = `INSERT INTO ${engine.name === "sqlite" ? "kvws_changes" : `"${pgTable(root)}_changes"`} (base, prefix, name, op, at) VALUES ($1, $2, 'old', 'set', ${old})`;
    const params = [`${root}:ws:w`, `${root}:ws:w:notes`];
    if (engine.name === "sqlite") await sqliteQuery(sqliteFile(root), text.replace(/\$(\d)/g, "?$1"), params);
    else await pgQuery(text, params);
    expect((await engine.changes(root)).map((r) => r.name)).toContain("old");
    for (let i = 1; i < PRUNE_EVERY; i++) await notes.set(`n${i}`, i);
    const left = await engine.changes(root);
    expect(left.map((r) => r.name)).not.toContain("old");
    // Everything recent stays (the library's own bookkeeping writes in the scope are logged too).
    const names = new Set(left.map((r) => r.name));
    expect(
      ["first", ...Array.from({ length: PRUNE_EVERY - 1 }, (_, i) => `n${i + 1}`)].every((n) => names.has(n)),
    ).toBe(true);
    await events.return?.();
  });
});

describe("a watched SQLite writer", () => {
  it("logs by its connection's triggers: one statement a write, one change for a clear, none once unwatched", async () => {
    const engine = ENGINES[0] as Engine;
    const root = newRoot(engine);
    const s = await open(engine.url(root), root, "w"); // makes the tables
    const real = await openSqliteClient(sqliteFile(root));
    const sent: string[] = [];
    const spy: SqlClient = {
      ...real,
      query: (text, params) => {
        sent.push(text);
        return real.query(text, params);
      },
    };
    const base = `${root}:ws:w`;
    try {
      await sqliteQuery(
        sqliteFile(root),
        "INSERT INTO kvws_watchers (base, id, expires_at) VALUES (?, 'elsewhere', ?)",
        [base, Date.now() + 60_000],
      );
      const store = sqlDriver(spy, "kvws", {
        changes: new ChangeWriter(spy, tables("kvws"), "kvws", `spy-${root}`),
      }).scope(`${base}:notes`);
      await store.set("k0", "v");
      sent.length = 0;
      for (let i = 1; i <= 10; i++) await store.set(`k${i}`, "v");
      await store.delete("k1");
      expect(sent).toHaveLength(11);
      await store.clear();
      const logged = (await engine.changes(root)).map((r) => [r.name, r.op]);
      expect(logged).toEqual([
        ...Array.from({ length: 11 }, (_, i) => [`k${i}`, "set"]),
        ["k1", "delete"],
        [null, "clear"],
      ]);
      // The registration goes; a second later the writer stops logging, and keeps no listed prefix.
      await sqliteQuery(sqliteFile(root), "DELETE FROM kvws_watchers WHERE base = ?", [base]);
      await new Promise((resolve) => setTimeout(resolve, WATCH_RECHECK_MS + 50));
      await store.set("late", "v");
      expect((await engine.changes(root)).map((r) => r.name)).not.toContain("late");
      expect(await real.query('SELECT prefix FROM "kvws_watched"')).toEqual([]);
    } finally {
      await real.close();
      await s.close();
    }
  });
});

describe("watch() on sqlite::memory:", () => {
  it("reports the storage's own writes (a private database: no other process can write it)", async () => {
    const s = await open("sqlite::memory:", "mem", "w");
    const events = s.watch({ collections: ["artifacts"] });
    const saved = await s.artifacts.save("a", 1);
    expect((await collect(events, (got) => got.some((e) => e.name === "a"))).filter((e) => !isReset(e))).toEqual([
      { collection: "artifacts", name: "a", op: "set", version: saved.version },
    ]);
    await s.close();
    expect(await events.next()).toEqual({ value: undefined, done: true });
  });
});

describe("watch() on PostgreSQL", () => {
  it("reports a change whose transaction commits after a later one was read (ids are not commit order)", async () => {
    const engine = ENGINES[1] as Engine;
    const root = newRoot(engine);
    const url = engine.url(root);
    const table = pgTable(root);
    const watcher = await open(url, root, "a");
    const writer = await open(url, root, "a");
    const events = watcher.watch({ collections: ["notes"] });
    await writer.collection("notes").set("ready", 1);
    await collect(events, (got) => got.some((e) => e.name === "ready"));
    // A writer of another process that took its change id and has not committed yet.
    const slow = new pg.Client({ connectionString: PG_URL });
    await slow.connect();
    try {
      await slow.query("BEGIN");
      await slow.query(
        `INSERT INTO "${table}_changes" (base, prefix, name, op, at) VALUES ($1, $2, 'slow', 'set', 0)`,
        [`${root}:ws:a`, `${root}:ws:a:notes`],
      );
      await slow.query("SELECT pg_notify($1, '')", [channelOf(table, `${root}:ws:a`)]);
      await writer.collection("notes").set("fast", 1); // a larger id, committed first
      expect((await collect(events, (got) => got.some((e) => e.name === "fast"))).map((e) => e.name)).not.toContain(
        "slow",
      );
      await slow.query("COMMIT");
      const got = await collect(events, (all) => all.some((e) => e.name === "slow"));
      expect(got.filter((e) => !isReset(e))).toEqual([{ collection: "notes", name: "slow", op: "set" }]);
    } finally {
      await slow.end();
    }
    await writer.collection("notes").set("last", 1);
    const rest = await collect(events, (all) => all.some((e) => e.name === "last"));
    expect(rest.filter((e) => !isReset(e)).map((e) => e.name)).toEqual(["last"]); // each reported once
    await events.return?.();
  });

  it("after a lost connection yields a reset, connects again and reports what was written meanwhile and after", async () => {
    const engine = ENGINES[1] as Engine;
    const root = newRoot(engine);
    const url = engine.url(root);
    const watcher = await open(url, root, "a");
    const writer = await open(url, root, "a");
    const warnings = captureWarnings("KVWS_WATCH_LOST");
    cleanups.push(async () => {
      warnings.stop();
    });
    const events = watcher.watch({ collections: ["artifacts"] });
    await writer.artifacts.save("before", 1);
    await collect(events, (got) => got.some((e) => e.name === "before"));
    const killed = await pgQuery<{ ok: boolean }>(
      "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'kvws-watch' AND strpos(query, $1) > 0",
      [pgTable(root)],
    );
    expect(killed).toEqual([{ ok: true }]);
    const during = await writer.artifacts.save("during", 1);
    const got = await collect(events, (all) => all.some(isReset) && all.some((e) => e.name === "during"));
    expect(got.filter((e) => e.name === "during")).toEqual([
      { collection: "artifacts", name: "during", op: "set", version: during.version },
    ]);
    const after = await writer.artifacts.save("after", 2);
    const later = await collect(events, (all) => all.some((e) => e.name === "after"));
    expect(later.filter((e) => !isReset(e))).toEqual([
      { collection: "artifacts", name: "after", op: "set", version: after.version },
    ]);
    expect((await warnings.all()).map((w) => w.message)).toEqual([expect.stringMatching(/administrator command/)]);
    await events.return?.();
  }, 30_000);
});

describe("a PostgreSQL workspace role's change feed", () => {
  it("watches its own workspace and sees nothing of another's, in the feed or in the table", async () => {
    const engine = ENGINES[1] as Engine;
    const root = newRoot(engine, "rlsw");
    const adminUrl = engine.url(root);
    const table = pgTable(root);
    const admin = await open(adminUrl, root, "a");
    const { role, url } = await provisionWorkspaceRole(adminUrl, keyspace({ root, workspaceId: "a" }), {
      password: "pw-watch",
    });
    cleanups.push(async () => {
      await pgQuery(`DROP OWNED BY "${role}"`);
      await pgQuery(`DROP ROLE IF EXISTS "${role}"`);
      await pgQuery(`DROP ROLE IF EXISTS "${table}_ws"`);
    });
    const tenant = await open(url, root, "a");
    const warnings = captureWarnings("KVWS_WATCH_REGISTER");
    try {
      const own = tenant.watch();
      const foreign = tenant.withWorkspace("b").watch();
      // The admin watches b too, so b's changes are logged: the tenant still must not see them.
      const adminB = admin.withWorkspace("b").watch({ collections: ["artifacts"] });
      await collect(own, (got) => got.length === 1); // the settle reset
      await admin.withWorkspace("b").artifacts.save("secret", 1);
      const hello = await admin.artifacts.save("hello", 1);
      const got = await collect(own, (all) => all.some((e) => e.name === "hello"));
      expect(got.filter((e) => !isReset(e))).toEqual([
        { collection: "artifacts", name: "hello", op: "set", version: hello.version },
      ]);
      expect((await collect(adminB, (all) => all.some((e) => e.name === "secret"))).at(-1)?.name).toBe("secret");
      const rows = await pgQuery<{ n: number }>(`SELECT count(*)::int AS n FROM "${table}_changes" WHERE base = $1`, [
        `${root}:ws:b`,
      ]);
      expect(rows[0]?.n).toBeGreaterThan(0);
      // As the role: no row of b, and no planted row for b's watchers.
      const raw = new pg.Client({ connectionString: url.replace(/\?.*$/, "") });
      await raw.connect();
      try {
        const seen = await raw.query(`SELECT base, name FROM "${table}_changes"`);
        expect(seen.rows.every((r: { base: string }) => r.base === `${root}:ws:a`)).toBe(true);
        expect(seen.rows.length).toBeGreaterThan(0);
        await expect(
          raw.query(`INSERT INTO "${table}_changes" (base, prefix, name, op, at) VALUES ($1, $2, 'x', 'set', 0)`, [
            `${root}:ws:b`,
            `${root}:ws:a:artifacts`,
          ]),
        ).rejects.toMatchObject({ code: "42501" });
        await expect(
          raw.query(`INSERT INTO "${table}_watchers" (base, id, expires_at) VALUES ($1, 'x', 0)`, [`${root}:ws:b`]),
        ).rejects.toMatchObject({ code: "42501" });
      } finally {
        await raw.end();
      }
      // The tenant's watcher of b may not register there (told once) and reads nothing of b.
      expect((await warnings.all()).some((w) => w.message.includes(`${root}:ws:b`))).toBe(true);
      await foreign.return?.();
      const next = await Promise.race([foreign.next(), Promise.resolve("pending")]);
      expect(next).toEqual({ value: undefined, done: true });
    } finally {
      warnings.stop();
    }
  }, 30_000);
});

describe("docs/collaboration.md on the SQL change feed", () => {
  it("states the figures the code uses", () => {
    const doc = readFileSync(fileURLToPath(new URL("../../docs/collaboration.md", import.meta.url)), "utf8");
    const section = doc.slice(doc.indexOf("### The change feed on SQL"));
    const figure = (pattern: RegExp) => Number(pattern.exec(section)?.[1]);
    expect(WATCH_RECHECK_MS).toBe(1000);
    expect(section).toContain("at most once a second per scope");
    expect(figure(/alive every (\d+) s/) * 1000).toBe(HEARTBEAT_MS);
    expect(figure(/costing writers (\d+) s\s/) * 1000).toBe(WATCHER_TTL_MS);
    expect(figure(/every (\d+) ms \(it/)).toBe(SQLITE_POLL_MS);
    expect(figure(/older than (\d+) s are pruned/) * 1000).toBe(CHANGE_KEEP_MS);
    expect(figure(/every (\d+) logged writes/)).toBe(PRUNE_EVERY);
  });
});
