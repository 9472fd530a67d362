// Conditional writes and batches on the library's SQL engines (sqlite:, postgres://): atomic
// across processes (absent names included), all-or-nothing batches, multi-row statements.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import pg from "pg";
import sqlite3 from "sqlite3";
import { describe, expect, it } from "vitest";
import type { Backend, Decision } from "../../lib/backends/driver.js";
import type { Query, SqlClient } from "../../lib/backends/sql/client.js";
import { sqlDriver } from "../../lib/backends/sql/driver.js";
import type { SqlStore } from "../../lib/backends/sql/store.js";
import { openBackend, openStorage } from "../../lib/index.js";
import { BACKENDS, perTest } from "../support/backends.js";
import { PG_URL, pgTable, sqlRows } from "../support/sql.js";

const writer = fileURLToPath(new URL("../fixtures/conditional-writer.mjs", import.meta.url));
const ENGINES = BACKENDS.filter((b) => b.name === "sqlite" || b.name === "postgres");

interface Race {
  won: string[];
  conflicts: number;
  other: string[];
}

/** Starts the writers, lets them all go at once when every one is open, and returns what each printed. */
async function raceFrom(processes: number, args: string[]): Promise<Array<{ fresh: Race; plan: Race }>> {
  const children = Array.from({ length: processes }, (_, i) =>
    spawn(process.execPath, [writer, ...args.map((a) => a.replace("{tag}", `p${i}`))], {
      stdio: ["pipe", "pipe", "inherit"],
    }),
  );
  const outputs = children.map((child) => {
    let out = "";
    const ready = new Promise<void>((resolve) => {
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes("ready\n")) resolve();
      });
    });
    const done = new Promise<string>((resolve, reject) => {
      child.on("error", reject);
      child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`writer exited ${code}: ${out}`))));
    });
    return { ready, done };
  });
  await Promise.all(outputs.map((o) => o.ready));
  for (const child of children) child.stdin.end("go\n");
  const printed = await Promise.all(outputs.map((o) => o.done));
  return printed.map((text) => JSON.parse(text.slice(text.indexOf("ready\n") + 6)));
}

const clientOf = (b: Backend) => (b.store as SqlStore).sqlClient;
const tableOf = (name: string, root: string) => (name === "postgres" ? pgTable(root) : "kvws");

/** The backend's client with a small parameter limit (batches span several statements) and a hook on each statement. */
function narrowed(client: SqlClient, maxParams: number, before?: (text: string) => Promise<void>): SqlClient {
  const hooked =
    (query: Query): Query =>
    async (text, params) => {
      await before?.(text);
      return query(text, params);
    };
  return {
    ...client,
    maxParams,
    query: hooked(client.query),
    transaction: (work) => client.transaction((q) => work(hooked(q))),
  };
}

describe.each(ENGINES)("conditional writes and batches on $name", (backend) => {
  const { newRoot, track } = perTest(backend, `tx${backend.name}`);
  const withBackend = async (root: string, work: (b: Backend) => Promise<void>) => {
    const opened = await openBackend(backend.url(root));
    try {
      await work(opened);
    } finally {
      await opened.close();
    }
  };

  it("of saves racing from 4 processes with one ifVersion (or null, absent), exactly one wins", async () => {
    const root = newRoot();
    const s = await track(openStorage({ url: backend.url(root), root, workspaceId: "shared" }));
    const base = await s.artifacts.save("plan", { by: "parent" });
    const results = await raceFrom(4, [backend.url(root), root, "{tag}", base.version, "5"]);
    for (const name of ["fresh", "plan"] as const) {
      const races = results.map((r) => r[name]);
      expect(races.flatMap((r) => r.other)).toEqual([]);
      const won = races.flatMap((r) => r.won);
      expect(won, name).toHaveLength(1);
      expect(races.reduce((n, r) => n + r.conflicts, 0)).toBe(19);
      expect((await s.artifacts.info(name))?.version).toBe(won[0]);
    }
  }, 60_000);

  it("writes no entry of a batch with one invalid entry", async () => {
    const root = newRoot();
    await withBackend(root, async (b) => {
      const scope = b.driver.scope(`${root}:ws:w:things`);
      await scope.set("kept", "old");
      for (const bad of [
        [
          { name: "a", value: "1" },
          { name: "b", value: 42 },
          { name: "kept", value: "new" },
        ],
        [
          { name: "a", value: "1" },
          { name: "\ud800", value: "2" },
          { name: "kept", value: "new" },
        ],
      ]) {
        await expect(scope.setMany(bad)).rejects.toMatchObject({ code: /^ERR_INVALID_(VALUE|NAME)$/ });
      }
      expect((await sqlRows(backend.name, backend.url(root), root)).map(([key, value]) => [key, value])).toEqual([
        [`${root}:ws:w:things:kept`, "old"],
      ]);
    });
  });

  it("writes a batch in one statement, no transaction: vectors (logged) too on PostgreSQL", async () => {
    const root = newRoot();
    await withBackend(root, async (b) => {
      const seen: string[] = [];
      const base = narrowed(clientOf(b), clientOf(b).maxParams, async (text) => void seen.push(text));
      const client = {
        ...base,
        transaction<T>(work: (q: Query) => Promise<T>) {
          seen.push("BEGIN");
          return base.transaction(work);
        },
      };
      const driver = sqlDriver(client, tableOf(backend.name, root));
      const batch = Array.from({ length: 50 }, (_, i) => ({ name: `n${i}`, value: `v${i}` }));
      await driver.scope(`${root}:ws:w:things`).setMany(batch);
      expect(seen).toHaveLength(1);
      const vectors = driver.scope(`${root}:ws:w:vectors`);
      await vectors.set("first", "0");
      const version = await vectors.version!();
      seen.length = 0;
      await vectors.setMany(batch);
      expect(seen.length === 1).toBe(backend.name === "postgres");
      expect((await vectors.changedSince!(version))?.length).toBe(50);
      expect(await vectors.getMany(["n0", "n49"])).toEqual(["v0", "v49"]);
    });
  });

  it("writes a batch of several statements in one transaction: refused part-way, none of it stays", async () => {
    const root = newRoot();
    await withBackend(root, async (b) => {
      const statements: string[] = [];
      const client = narrowed(clientOf(b), 9, async (text) => void statements.push(text));
      const scope = sqlDriver(client, tableOf(backend.name, root)).scope(`${root}:ws:w:things`);
      const entries = Array.from({ length: 7 }, (_, i) => ({ name: `n${i}`, value: `v${i}` }));
      await scope.setMany([...entries, { name: "n1", value: "last" }]);
      expect(statements.filter((s) => s.startsWith("INSERT"))).toHaveLength(4);
      expect(await scope.getMany(["n0", "n1", "n6"])).toEqual(["v0", "last", "v6"]);
      // The engine refuses the last statement: SQLite by a trigger, PostgreSQL a NUL in text.
      if (backend.name === "sqlite") {
        await clientOf(b).query(
          "CREATE TRIGGER refuse BEFORE INSERT ON kvws WHEN NEW.value = 'boom' BEGIN SELECT RAISE(ABORT, 'refused'); END",
        );
      }
      const refused = backend.name === "sqlite" ? "boom" : "bo\u0000om";
      const batch = [...entries.map((e) => ({ ...e, value: "new" })), { name: "z", value: refused }];
      await expect(scope.setMany(batch)).rejects.toMatchObject({ code: /^ERR_/ });
      expect(await scope.getMany(["n0", "n1", "n6", "z"])).toEqual(["v0", "last", "v6", undefined]);
    });
  });

  it("applies a transact over several names all or nothing: writes, deletes, TTL, a refusing decide", async () => {
    const root = newRoot();
    await withBackend(root, async (b) => {
      const scope = b.driver.scope(`${root}:ws:w:things`);
      const seen: Array<readonly unknown[]> = [];
      const run = (names: string[], decide: (current: readonly unknown[]) => Decision[]) =>
        scope.transact!(names, (current) => {
          seen.push(current);
          return decide(current);
        });
      await run(["a", "b"], () => [{ value: "1" }, { value: "2" }]);
      await expect(run(["a", "b"], () => [{ value: "x" }, { value: 3 }])).rejects.toMatchObject({
        code: "ERR_INVALID_VALUE",
      });
      await expect(
        run(["a", "c"], () => {
          throw new Error("no");
        }),
      ).rejects.toThrow("no");
      expect(await scope.getMany(["a", "b", "c"])).toEqual(["1", "2", undefined]);
      await run(["a", "b", "c"], () => ["delete", undefined, { value: "3", ttl: 40 }]);
      expect(await scope.getMany(["a", "b", "c"])).toEqual([undefined, "2", "3"]);
      await new Promise((resolve) => setTimeout(resolve, 90));
      await run(["c", "a"], () => [undefined, undefined]);
      expect(seen.at(-1)).toEqual([undefined, undefined]);
    });
  });

  it.runIf(backend.name === "sqlite")(
    "reads under the write lock: while another process's transaction is open it waits, then sees its commit",
    async () => {
      const root = newRoot();
      await withBackend(root, async (b) => {
        const prefix = `${root}:ws:w:things`;
        const scope = b.driver.scope(prefix);
        const other = await new Promise<sqlite3.Database>((resolve, reject) => {
          const db: sqlite3.Database = new sqlite3.Database(backend.url(root).slice("sqlite:".length), (e) =>
            e ? reject(e) : resolve(db),
          );
        });
        const exec = (sql: string) =>
          new Promise<void>((resolve, reject) => other.exec(sql, (e) => (e ? reject(e) : resolve())));
        try {
          await exec("BEGIN IMMEDIATE");
          await exec(`INSERT INTO kvws (key, prefix, value) VALUES ('${prefix}:x', '${prefix}', 'theirs')`);
          const seen: unknown[] = [];
          const done = scope.transact!(["x"], ([current]) => {
            seen.push(current);
            return [{ value: `${String(current)}+mine` }];
          });
          await new Promise((resolve) => setTimeout(resolve, 150));
          expect(seen).toEqual([]);
          await exec("COMMIT");
          await done;
          // A read before the lock would have seen nothing first (and been retried on SQLITE_BUSY).
          expect(seen).toEqual(["theirs"]);
          expect(await scope.get("x")).toBe("theirs+mine");
        } finally {
          await new Promise((resolve) => other.close(resolve));
        }
      });
    },
  );

  it.runIf(backend.name === "postgres")(
    "takes an advisory lock on an absent name: it waits for another holder, then reads its commit once",
    async () => {
      const root = newRoot();
      await withBackend(root, async (b) => {
        const prefix = `${root}:ws:w:things`;
        const scope = b.driver.scope(prefix);
        const other = new pg.Client({ connectionString: PG_URL });
        await other.connect();
        try {
          await other.query("BEGIN");
          await other.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
            `kvws:${pgTable(root)}:${prefix}:x`,
          ]);
          await other.query(`INSERT INTO "${pgTable(root)}" (key, prefix, value) VALUES ($1, $2, 'theirs')`, [
            `${prefix}:x`,
            prefix,
          ]);
          const seen: unknown[] = [];
          const done = scope.transact!(["x"], ([current]) => {
            seen.push(current);
            return [{ value: `${String(current)}+mine` }];
          });
          await new Promise((resolve) => setTimeout(resolve, 150));
          expect(seen).toEqual([]);
          await other.query("COMMIT");
          await done;
          // Without the lock it would have read nothing, lost the race at its insert and read again.
          expect(seen).toEqual(["theirs"]);
          expect(await scope.get("x")).toBe("theirs+mine");
        } finally {
          await other.end();
        }
      });
    },
  );

  it.runIf(backend.name === "postgres")(
    "never overwrites a row a plain writer inserted between its read and its write: it reads again",
    async () => {
      const root = newRoot();
      await withBackend(root, async (b) => {
        const prefix = `${root}:ws:w:things`;
        const other = await openBackend(backend.url(root));
        try {
          let interfered = false;
          // A plain write from another connection lands right before the transact's upsert.
          const client = narrowed(clientOf(b), clientOf(b).maxParams, async (text) => {
            if (!interfered && text.includes("ON CONFLICT (key) DO UPDATE")) {
              interfered = true;
              await other.driver.scope(prefix).set("x", "theirs");
            }
          });
          const scope = sqlDriver(client, pgTable(root)).scope(prefix);
          const seen: unknown[] = [];
          await scope.transact!(["x"], ([current]) => {
            seen.push(current);
            return [current === undefined ? { value: "mine" } : undefined];
          });
          expect(seen).toEqual([undefined, "theirs"]);
          expect(await scope.get("x")).toBe("theirs");
        } finally {
          await other.close();
        }
      });
    },
  );
});
