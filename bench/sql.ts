/**
 * Writes on the library's SQL engines (sqlite: file, postgres://): a conditional save (ifVersion,
 * one transaction with its lock) next to a plain save of the same artifact, awaited one by one;
 * and batch ingest (artifacts.saveMany, vectors.upsertMany) in rows per second; a save and a
 * collection().set while nobody watches the workspace and while a watcher (a storage of this
 * process, reading every change as it comes) does; and the SQLite watcher's poll. A fresh file or
 * table per round, rounds interleaved across engines so drift hits both alike. Then, from
 * sql-flight.ts, collection().set/get at 1, 8 and 32 in flight next to raw Keyv over
 * @keyv/sqlite and @keyv/postgres.
 */
import { ChangeWriter } from "../lib/backends/sql/changes.js";
import { sqlDriver } from "../lib/backends/sql/driver.js";
import { tables } from "../lib/backends/sql/schema.js";
import { openSqliteClient } from "../lib/backends/sql/sqlite.js";
import { openStorage, type WorkspaceStorage } from "../lib/index.js";
import { pgQuery, pgTable, sqliteFile, sqliteQuery } from "../spec/support/sql.js";
import { type BenchRow, progress, ratios, row, type SuiteOptions } from "./rows.js";
import { ENGINES, type Engine } from "./sql-engines.js";
import { flightRows } from "./sql-flight.js";
import { benchRoot } from "./support.js";

const GROUP = "sql";
const D = 64;

interface Sizes {
  saves: number;
  batches: number;
  saveBatch: number;
  vectorBatch: number;
}

interface Round {
  plainUs: number;
  conditionalUs: number | undefined;
  saveManyRate: number;
  upsertManyRate: number;
  setUs: number;
  watchedSaveUs: number;
  watchedSetUs: number;
  /** A watcher registered by another process: the writer logs each change, nobody here reads them. */
  loggedSetUs: number;
  /** The same, interleaved with it, in a workspace nobody watches. */
  unloggedSetUs: number;
  /** SQLite only: plain, trigger-logged and transaction-logged sets on one connection. */
  logging: [number, number, number] | undefined;
  /** SQLite only: one `PRAGMA data_version`, what a watcher asks every SQLITE_POLL_MS. */
  pollUs: number | undefined;
}

/** Saves and sets while a watcher of this process reads every change; waits until it has seen them all. */
async function watched(engine: Engine, root: string, s: WorkspaceStorage, n: number) {
  const watcher = await openStorage({ url: engine.url(root), root, workspaceId: "w" });
  const stop = new AbortController();
  let seen = 0;
  const reading = (async () => {
    for await (const event of watcher.watch({ signal: stop.signal })) if (event.op !== "reset") seen++;
  })();
  try {
    const notes = s.collection("notes");
    await s.artifacts.save("watched", { step: 0 });
    const watchedSaveUs = await timeUs(n, (i) => s.artifacts.save("watched", { step: i }));
    const watchedSetUs = await timeUs(n, (i) => notes.set(`k${i % 50}`, i));
    const deadline = Date.now() + 30_000;
    while (seen < 2 * n + 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    if (seen < 2 * n + 1) throw new Error(`the watcher saw ${seen} of ${2 * n + 1} changes`);
    return { watchedSaveUs, watchedSetUs };
  } finally {
    stop.abort();
    await reading;
    await watcher.close();
  }
}

/**
 * One storage writes a workspace that another process's watcher has registered for (a row, as
 * that watcher makes it: the writer cannot tell the difference), so it logs every change that
 * nobody here reads; the other writes a workspace nobody watches, over the same connection kind.
 * They alternate in blocks, so load that comes and goes hits both alike.
 */
async function loggedOnly(engine: Engine, root: string, n: number): Promise<{ loggedUs: number; unloggedUs: number }> {
  const text = `INSERT INTO ${engine.name === "sqlite" ? "kvws_watchers" : `"${pgTable(root)}_watchers"`} (base, id, expires_at) VALUES ($1, 'bench', $2)`;
  const params = [`${root}:ws:logged`, Date.now() + 3_600_000];
  if (engine.name === "sqlite") await sqliteQuery(sqliteFile(root), text.replace(/\$(\d)/g, "?$1"), params);
  else await pgQuery(text, params);
  const logged = await openStorage({ url: engine.url(root), root, workspaceId: "logged" });
  const unlogged = await openStorage({ url: engine.url(root), root, workspaceId: "unlogged" });
  try {
    const a = logged.collection("notes");
    const b = unlogged.collection("notes");
    await a.set("k0", 0);
    await b.set("k0", 0);
    const block = Math.max(1, Math.floor(n / 10));
    let loggedUs = 0;
    let unloggedUs = 0;
    for (let done = 0; done < n; done += block) {
      loggedUs += await timeUs(block, (i) => a.set(`k${(done + i) % 50}`, i));
      unloggedUs += await timeUs(block, (i) => b.set(`k${(done + i) % 50}`, i));
    }
    const blocks = Math.ceil(n / block);
    return { loggedUs: loggedUs / blocks, unloggedUs: unloggedUs / blocks };
  } finally {
    await logged.close();
    await unlogged.close();
  }
}

/** A writer that logs every write in a transaction of its own, as SQLite did before its triggers. */
class TransactionLogging extends ChangeWriter {
  override get logsByTrigger(): boolean {
    return false;
  }
  override watched(): boolean {
    return true;
  }
}

/**
 * SQLite, one connection: a plain set, a set logged by the TEMP trigger, and one logged in a
 * BEGIN IMMEDIATE … COMMIT of four statements, in interleaved blocks (µs each).
 */
async function triggerVsTransaction(root: string, n: number): Promise<[number, number, number]> {
  const client = await openSqliteClient(sqliteFile(root));
  try {
    const t = tables("kvws");
    await client.query("INSERT INTO kvws_watchers (base, id, expires_at) VALUES ($1, 'bench', $2)", [
      `${root}:ws:trigger`,
      Date.now() + 3_600_000,
    ]);
    const scope = (ws: string, changes?: ChangeWriter) =>
      sqlDriver(client, "kvws", { changes }).scope(`${root}:ws:${ws}:notes`);
    const stores = [
      scope("plain"),
      scope("trigger", new ChangeWriter(client, t, "kvws", `bench-${root}-a`)),
      scope("transaction", new TransactionLogging(client, t, "kvws", `bench-${root}-b`)),
    ];
    const sums = [0, 0, 0];
    const block = Math.max(1, Math.floor(n / 10));
    for (const store of stores) await store.set("k0", "v");
    for (let done = 0; done < n; done += block) {
      for (const [i, store] of stores.entries()) {
        sums[i] = (sums[i] as number) + (await timeUs(block, (j) => store.set(`k${(done + j) % 50}`, "v".repeat(100))));
      }
    }
    const blocks = Math.ceil(n / block);
    return sums.map((sum) => sum / blocks) as [number, number, number];
  } finally {
    await client.close();
  }
}

async function pollUs(engine: Engine, root: string, n: number): Promise<number | undefined> {
  if (engine.name !== "sqlite") return undefined;
  const client = await openSqliteClient(sqliteFile(root));
  try {
    return await timeUs(n, () => client.query("PRAGMA data_version"));
  } finally {
    await client.close();
  }
}

async function timeUs(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  return ((performance.now() - t0) * 1000) / n;
}

async function conditional(s: WorkspaceStorage, n: number): Promise<number | undefined> {
  let version: string | null = null;
  try {
    return await timeUs(n, async (i) => {
      version = (await s.artifacts.save("cond", { step: i }, { ifVersion: version })).version;
    });
  } catch (error) {
    // A build without transact on SQL refuses conditional writes: reported as missing, not as a number.
    if ((error as { code?: unknown }).code === "ERR_UNSUPPORTED_STORE") return undefined;
    throw error;
  }
}

async function round(engine: Engine, sizes: Sizes): Promise<Round> {
  const root = benchRoot(`sql${engine.name}`);
  const s = await openStorage({ url: engine.url(root), root, workspaceId: "w" });
  try {
    await s.artifacts.save("plain", { step: 0 });
    const plainUs = await timeUs(sizes.saves, (i) => s.artifacts.save("plain", { step: i }));
    const conditionalUs = await conditional(s, sizes.saves);
    const notes = s.collection("notes");
    await notes.set("k0", 0);
    const setUs = await timeUs(sizes.saves, (i) => notes.set(`k${i % 50}`, i));
    const { watchedSaveUs, watchedSetUs } = await watched(engine, root, s, sizes.saves);
    const { loggedUs: loggedSetUs, unloggedUs: unloggedSetUs } = await loggedOnly(engine, root, sizes.saves);
    const payload = { text: "z".repeat(200) };
    let t0 = performance.now();
    for (let b = 0; b < sizes.batches; b++) {
      await s.artifacts.saveMany(
        Array.from({ length: sizes.saveBatch }, (_, i) => ({ name: `m${b}-${i}`, data: { ...payload, i } })),
      );
    }
    const saveManyRate = (sizes.batches * sizes.saveBatch * 1000) / (performance.now() - t0);
    const vector = Float32Array.from({ length: D }, (_, i) => Math.sin(i));
    t0 = performance.now();
    for (let b = 0; b < sizes.batches; b++) {
      await s.vectors.upsertMany(
        Array.from({ length: sizes.vectorBatch }, (_, i) => ({ id: `v${b}-${i}`, vector, metadata: { b } })),
      );
    }
    const upsertManyRate = (sizes.batches * sizes.vectorBatch * 1000) / (performance.now() - t0);
    return {
      plainUs,
      conditionalUs,
      saveManyRate,
      upsertManyRate,
      setUs,
      watchedSaveUs,
      watchedSetUs,
      loggedSetUs,
      unloggedSetUs,
      pollUs: await pollUs(engine, root, 10 * sizes.saves),
      logging: engine.name === "sqlite" ? await triggerVsTransaction(root, sizes.saves) : undefined,
    };
  } finally {
    await s.close();
    await engine.cleanup(root);
  }
}

export async function run(opts: SuiteOptions): Promise<BenchRow[]> {
  const rounds = opts.tiny ? 1 : 5;
  const sizes: Sizes = opts.tiny
    ? { saves: 10, batches: 2, saveBatch: 20, vectorBatch: 20 }
    : { saves: 300, batches: 10, saveBatch: 500, vectorBatch: 1000 };
  const results = new Map<string, Round[]>(ENGINES.map((e) => [e.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const engine of r % 2 === 0 ? ENGINES : [...ENGINES].reverse()) {
      progress(`sql: ${engine.name} round ${r + 1}/${rounds}`);
      results.get(engine.name)!.push(await round(engine, sizes));
    }
  }
  const out: BenchRow[] = [];
  for (const engine of ENGINES) {
    const rs = results.get(engine.name)!;
    const plain = rs.map((x) => x.plainUs);
    out.push(row(GROUP, `${engine.name} save, plain (awaited one by one)`, "µs", plain));
    const cond = rs.map((x) => x.conditionalUs);
    if (cond.every((x) => x !== undefined)) {
      out.push(
        row(GROUP, `${engine.name} save, ifVersion (awaited one by one)`, "µs", cond),
        row(GROUP, `${engine.name} save, ifVersion/plain`, "×", ratios(cond, plain)),
      );
    }
    const set = rs.map((x) => x.setUs);
    const watchedSave = rs.map((x) => x.watchedSaveUs);
    const watchedSet = rs.map((x) => x.watchedSetUs);
    out.push(
      row(GROUP, `${engine.name} save, watched (a watcher in this process reads each change)`, "µs", watchedSave),
      row(GROUP, `${engine.name} save, watched/unwatched`, "×", ratios(watchedSave, plain)),
      row(GROUP, `${engine.name} collection().set, unwatched (awaited one by one)`, "µs", set),
      row(GROUP, `${engine.name} collection().set, watched in this process`, "µs", watchedSet),
      row(GROUP, `${engine.name} collection().set, watched/unwatched`, "×", ratios(watchedSet, set)),
      row(
        GROUP,
        `${engine.name} collection().set, watched by another process (logging only)`,
        "µs",
        rs.map((x) => x.loggedSetUs),
      ),
      row(
        GROUP,
        `${engine.name} collection().set, watched by another process (logging only)/unwatched, interleaved`,
        "×",
        ratios(
          rs.map((x) => x.loggedSetUs),
          rs.map((x) => x.unloggedSetUs),
        ),
      ),
    );
    const logging = rs.map((x) => x.logging);
    if (logging.every((x) => x !== undefined)) {
      const plainSets = logging.map((x) => x[0]);
      out.push(
        row(
          GROUP,
          `${engine.name} set logged by TEMP trigger/plain`,
          "×",
          ratios(
            logging.map((x) => x[1]),
            plainSets,
          ),
        ),
        row(
          GROUP,
          `${engine.name} set logged by a transaction/plain`,
          "×",
          ratios(
            logging.map((x) => x[2]),
            plainSets,
          ),
        ),
      );
    }
    const poll = rs.map((x) => x.pollUs);
    if (poll.every((x) => x !== undefined)) {
      out.push(row(GROUP, `${engine.name} watcher's poll (PRAGMA data_version)`, "µs", poll));
    }
    out.push(
      row(
        GROUP,
        `${engine.name} artifacts.saveMany (batches of ${sizes.saveBatch})`,
        "rows/s",
        rs.map((x) => x.saveManyRate),
      ),
      row(
        GROUP,
        `${engine.name} vectors.upsertMany (d=${D}, batches of ${sizes.vectorBatch})`,
        "rows/s",
        rs.map((x) => x.upsertManyRate),
      ),
    );
  }
  out.push(...(await flightRows(opts)));
  return out;
}
