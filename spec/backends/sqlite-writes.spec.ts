/**
 * A SQLite file under many operations in flight (sqlite-writes.ts, sqlite-connection.ts): writes
 * that queue up commit together, each failure reaching only its own caller; reads run beside the
 * writer; statements stay prepared.
 */
import sqlite3 from "sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import type { Backend } from "../../lib/backends/driver.js";
import type { SqlStore } from "../../lib/backends/sql/store.js";
import { ConflictError, openBackend, openStorage, StoreCommandError } from "../../lib/index.js";
import { BACKENDS, perTest } from "../support/backends.js";
import { sqliteFile, sqliteQuery } from "../support/sql.js";
import { collect } from "../support/watch.js";

const sqlite = BACKENDS.find((b) => b.name === "sqlite")!;
const N = 50;

type Method = (...args: unknown[]) => unknown;

/** Records what every node-sqlite3 statement of this process runs and finalizes, until restored. */
function spy() {
  const statement = sqlite3.Statement.prototype as unknown as { all: Method; finalize: Method };
  const { all, finalize } = statement;
  const seen = { ran: [] as string[], finalized: [] as string[] };
  statement.all = function (this: { sql: string }, ...args: unknown[]) {
    seen.ran.push(this.sql);
    return all.apply(this, args);
  };
  statement.finalize = function (this: { sql: string }, ...args: unknown[]) {
    seen.finalized.push(this.sql);
    return finalize.apply(this, args);
  };
  return {
    seen,
    restore() {
      statement.all = all;
      statement.finalize = finalize;
    },
  };
}

describe("a sqlite: file with many operations in flight", () => {
  const { newRoot, track } = perTest(sqlite, "sqlw");
  const backends: Backend[] = [];
  let restore: (() => void) | undefined;
  afterEach(async () => {
    restore?.();
    restore = undefined;
    for (const b of backends.splice(0)) await b.close();
  });
  const backend = async (root: string) => {
    const b = await openBackend(sqlite.url(root));
    backends.push(b);
    return b;
  };

  it("commits writes issued together in one transaction, in the order issued, each visible once acknowledged", async () => {
    const root = newRoot();
    const b = await backend(root);
    const scope = b.driver.scope(`${root}:ws:w:notes`);
    await scope.set("warm", "up");
    const s = spy();
    restore = s.restore;
    // One name written N times and N names once, all in flight at once.
    const writes = Array.from({ length: N }, (_, i) => [scope.set("same", `v${i}`), scope.set(`n${i}`, `v${i}`)]);
    const acknowledged = await Promise.all(
      writes.flat().map(async (write, i) => {
        await write;
        if (i % 2 === 1) {
          // Another connection sees an acknowledged write at once: it is committed.
          const [row] = await sqliteQuery(sqliteFile(root), "SELECT value FROM kvws WHERE key = ?", [
            `${root}:ws:w:notes:n${(i - 1) / 2}`,
          ]);
          expect(row?.value).toBe(`v${(i - 1) / 2}`);
        }
        return i;
      }),
    );
    s.restore();
    expect(acknowledged).toHaveLength(2 * N);
    expect(await scope.get("same")).toBe(`v${N - 1}`);
    // The first write found the connection idle and ran alone; the others queued behind it.
    const commits = s.seen.ran.filter((text) => text === "COMMIT").length;
    expect(commits).toBeGreaterThan(0);
    expect(commits).toBeLessThanOrEqual(3);
  });

  it("merges plain sets of one prefix issued together into one statement, a repeated name starting the next", async () => {
    const root = newRoot();
    const b = await backend(root);
    const scope = b.driver.scope(`${root}:ws:w:notes`);
    const other = b.driver.scope(`${root}:ws:w:other`);
    await scope.set("warm", "up");
    const s = spy();
    restore = s.restore;
    await Promise.all([
      ...Array.from({ length: N }, (_, i) => scope.set(`n${i}`, `v${i}`)),
      other.set("o", "v"),
      scope.set("n0", "again"),
    ]);
    s.restore();
    const inserts = s.seen.ran.filter((text) => text.startsWith("INSERT"));
    // The first set alone; the others of `notes` in one statement, up to the repeated n0; `other` apart.
    expect(inserts.length).toBeGreaterThanOrEqual(3);
    expect(inserts.length).toBeLessThanOrEqual(5);
    expect(await scope.get("n0")).toBe("again");
    expect(await scope.getMany(Array.from({ length: N - 1 }, (_, i) => `n${i + 1}`))).toEqual(
      Array.from({ length: N - 1 }, (_, i) => `v${i + 1}`),
    );
    expect(await other.get("o")).toBe("v");
  });

  it("reports every set of a name written many times at once to a watcher, in order", async () => {
    const root = newRoot();
    const s = await track(openStorage({ url: sqlite.url(root), root, workspaceId: "w" }));
    const notes = s.collection("notes");
    await notes.set("warm", 0);
    const events = s.watch({ collections: ["notes"] })[Symbol.asyncIterator]();
    const first = events.next();
    await notes.set("start", 0);
    expect((await first).value).toMatchObject({ name: "start", op: "set" });
    await Promise.all(Array.from({ length: 20 }, (_, i) => [notes.set("x", i), notes.set(`y${i}`, i)]).flat());
    const seen = await collect(events, (got) => got.filter((e) => e.name === "x").length >= 20);
    expect(seen.filter((e) => e.name === "x").map((e) => e.op)).toEqual(Array.from({ length: 20 }, () => "set"));
    expect(await notes.get("x")).toBe(19);
    await events.return?.();
  });

  it("keeps its statements prepared: a thousand reads and writes finalize none", async () => {
    const root = newRoot();
    const b = await backend(root);
    const scope = b.driver.scope(`${root}:ws:w:notes`);
    await scope.set("k", "v");
    expect(await scope.get("k")).toBe("v");
    const s = spy();
    restore = s.restore;
    for (let i = 0; i < 500; i++) {
      await scope.set(`k${i % 7}`, `v${i}`);
      await scope.get(`k${i % 7}`);
    }
    s.restore();
    expect(s.seen.ran.length).toBeGreaterThanOrEqual(1000);
    expect(s.seen.finalized).toEqual([]);
  });

  it("fails only the write that failed when it was committed with others", async () => {
    const root = newRoot();
    const b = await backend(root);
    const scope = b.driver.scope(`${root}:ws:w:notes`);
    await scope.set("warm", "up");
    const client = (b.store as SqlStore).sqlClient;
    for (const when of ["INSERT", "UPDATE"]) {
      await client.query(
        `CREATE TRIGGER refuse_${when.toLowerCase()} BEFORE ${when} ON kvws WHEN NEW.value = 'refused' ` +
          "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END",
      );
    }
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => scope.set(`n${i}`, i === 7 ? "refused" : `v${i}`)),
    );
    expect(results.map((r) => r.status)).toEqual(
      Array.from({ length: 20 }, (_, i) => (i === 7 ? "rejected" : "fulfilled")),
    );
    const failed = results[7] as PromiseRejectedResult;
    expect(failed.reason).toBeInstanceOf(StoreCommandError);
    expect(String(failed.reason.message)).toContain("refused by a trigger");
    expect(await scope.getMany(Array.from({ length: 20 }, (_, i) => `n${i}`))).toEqual(
      Array.from({ length: 20 }, (_, i) => (i === 7 ? undefined : `v${i}`)),
    );
  });

  it("lets exactly one of many conditional saves in flight win, and commits the plain writes among them", async () => {
    const root = newRoot();
    const s = await track(openStorage({ url: sqlite.url(root), root, workspaceId: "w" }));
    const notes = s.collection("notes");
    await s.artifacts.save("warm", 0);
    const saves = Array.from({ length: 20 }, (_, i) => [
      s.artifacts.save("x", { by: i }, { ifVersion: null }),
      notes.set(`plain${i}`, i),
    ]);
    const results = await Promise.allSettled(saves.flat());
    const conditional = results.filter((_, i) => i % 2 === 0);
    const won = conditional.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of conditional) {
      if (r.status === "rejected") expect(r.reason).toBeInstanceOf(ConflictError);
    }
    expect(results.filter((_, i) => i % 2 === 1).every((r) => r.status === "fulfilled")).toBe(true);
    expect(await s.artifacts.load("x")).toEqual({ by: won[0] });
    expect(await Promise.all(Array.from({ length: 20 }, (_, i) => notes.get(`plain${i}`)))).toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
    // Chained on the version each save returned, every one of them wins.
    let version = (await s.artifacts.save("chain", 0)).version;
    for (let i = 1; i <= 10; i++) {
      const [saved] = await Promise.all([
        s.artifacts.save("chain", i, { ifVersion: version }),
        notes.set("beside", i),
        s.artifacts.save(`other${i}`, i, { ifVersion: null }),
      ]);
      version = saved.version;
    }
    expect(await s.artifacts.load("chain")).toBe(10);
  });

  it("answers a read while a write transaction is open, with what was committed before it", async () => {
    const root = newRoot();
    const b = await backend(root);
    const scope = b.driver.scope(`${root}:ws:w:notes`);
    await scope.set("k", "committed");
    expect(await scope.get("k")).toBe("committed");
    const client = (b.store as SqlStore).sqlClient;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let inside!: () => void;
    const started = new Promise<void>((resolve) => {
      inside = resolve;
    });
    const open = client.transaction(async (query) => {
      await query("UPDATE kvws SET value = 'uncommitted' WHERE key = $1", [`${root}:ws:w:notes:k`]);
      inside();
      await gate;
    });
    await started;
    // Through the writer's queue this would wait for the gate, which only opens after it.
    expect(await scope.get("k")).toBe("committed");
    expect(await scope.has("k")).toBe(true);
    release();
    await open;
    expect(await scope.get("k")).toBe("uncommitted");
  });

  it("runs reads that queue up on the writer without taking the write lock", async () => {
    const root = newRoot();
    const b = await backend(root);
    const scope = b.driver.scope(`${root}:ws:w:notes`);
    await scope.set("k", "v");
    // Another connection holds the write lock for as long as the reads take.
    const other = await new Promise<sqlite3.Database>((resolve, reject) => {
      const db: sqlite3.Database = new sqlite3.Database(sqliteFile(root), (error) =>
        error ? reject(error) : resolve(db),
      );
    });
    const exec = (sql: string) =>
      new Promise<void>((resolve, reject) => other.exec(sql, (error) => (error ? reject(error) : resolve())));
    await exec("BEGIN IMMEDIATE");
    try {
      const client = (b.store as SqlStore).sqlClient;
      const reads = await Promise.all(
        Array.from({ length: 10 }, () =>
          client.query("SELECT value FROM kvws WHERE key = $1", [`${root}:ws:w:notes:k`]),
        ),
      );
      expect(reads.map((rows) => rows[0]?.value)).toEqual(Array.from({ length: 10 }, () => "v"));
    } finally {
      await exec("ROLLBACK");
      await new Promise((resolve) => other.close(resolve));
    }
  });

  it("finishes the writes in flight before it closes", async () => {
    const root = newRoot();
    const b = await openBackend(sqlite.url(root));
    const scope = b.driver.scope(`${root}:ws:w:notes`);
    await scope.set("warm", "up");
    const writes = Array.from({ length: N }, (_, i) => scope.set(`n${i}`, `v${i}`));
    await Promise.all([b.close(), ...writes]);
    const again = await backend(root);
    const names = Array.from({ length: N }, (_, i) => `n${i}`);
    expect(await again.driver.scope(`${root}:ws:w:notes`).getMany(names)).toEqual(names.map((_, i) => `v${i}`));
  });
});
