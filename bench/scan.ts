/**
 * Does listing one workspace grow with everybody else's data? One workspace holds 100
 * artifacts; other workspaces of the same root hold 10k, 100k (and with --full 1M) keys.
 * We list (and clear) the one workspace two ways:
 *   (a) SCAN MATCH <prefix>:* over the database, then MGET: what Keyv's iterator/clear and
 *       most prefix-namespacing libraries do. COUNT 1000 is the kind setting; Keyv's own
 *       iterator uses Redis's default COUNT 10, which costs ~10× more round trips.
 *   (b) the library: artifacts.list() / collection clear() through the per-prefix sorted-set index.
 * The memory backend's list() is measured at the same sizes; SQLite and PostgreSQL rows
 * (library engine, adapter range, LIKE, adapter iterator) come from scan-sql.ts, the first
 * page of a big workspace from scan-page.ts.
 */
import { createStorage, openBackend, openStorage, type WorkspaceStorage } from "../lib/index.js";
import { SCAN_SERIES, scanRowName } from "./report.js";
import {
  type BenchRow,
  growth,
  interleaved,
  progress,
  REDIS_URL,
  type RoundOptions,
  ratios,
  row,
  type SuiteOptions,
  samples,
  type Task,
} from "./rows.js";
import { pageRows } from "./scan-page.js";
import { sqlScanRows } from "./scan-sql.js";
import { benchRoot, type RawRedis, withRedisRoot } from "./support.js";

const GROUP = "scan";
const ENTRIES = 100;
const OTHER_WORKSPACES = 1000;
const PAYLOAD = { text: "z".repeat(80) };

function sizes(opts: SuiteOptions): number[] {
  if (opts.tiny) return [1000, 3000];
  return opts.full ? [10_000, 100_000, 1_000_000] : [10_000, 100_000];
}

function rounds(opts: SuiteOptions): RoundOptions {
  return opts.tiny ? { rounds: 2, time: 5, iterations: 2 } : { rounds: 4, time: 250, iterations: 5 };
}

const otherKey = (root: string, i: number) => `${root}:ws:o${i % OTHER_WORKSPACES}:artifacts:n${i}`;

/** Adds raw keys [from, to) under other workspaces: MSET batches, many in flight (node-redis pipelines them). */
async function loadOthers(client: RawRedis, root: string, from: number, to: number): Promise<void> {
  const BATCH = 1000;
  const IN_FLIGHT = 16;
  const value = JSON.stringify({ value: PAYLOAD });
  let inFlight: Array<Promise<unknown>> = [];
  for (let start = from; start < to; start += BATCH) {
    const pairs: Record<string, string> = {};
    for (let i = start; i < Math.min(to, start + BATCH); i++) pairs[otherKey(root, i)] = value;
    inFlight.push(client.mSet(pairs));
    if (inFlight.length >= IN_FLIGHT) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
}

/** (a): every key of the database passes through SCAN; MATCH keeps this prefix's. */
async function scanKeys(client: RawRedis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) keys.push(...batch);
  return keys;
}

async function scanList(client: RawRedis, prefix: string): Promise<unknown[]> {
  const keys = await scanKeys(client, prefix);
  const out: unknown[] = [];
  for (let i = 0; i < keys.length; i += 500) {
    const values = await client.mGet(keys.slice(i, i + 500));
    for (const value of values) if (value !== null) out.push(JSON.parse(value));
  }
  if (out.length !== ENTRIES) throw new Error(`SCAN listing found ${out.length} entries, expected ${ENTRIES}`);
  return out;
}

async function redisSuite(opts: SuiteOptions): Promise<BenchRow[]> {
  const root = benchRoot("scan");
  const r = rounds(opts);
  return withRedisRoot(root, async (client) => {
    const storage = await openStorage({ url: REDIS_URL, root, workspaceId: "target" });
    const out: BenchRow[] = [];
    const listSamples = new Map<number, Record<string, number[]>>();
    try {
      const prefix = storage.keyspace.prefix("artifacts");
      const collection = storage.collection("artifacts");
      const refill = async () => {
        for (let i = 0; i < ENTRIES; i++) await storage.artifacts.save(`a${i}`, { i, ...PAYLOAD });
      };
      await refill();
      // Before each timed clear: the same 100 entries back in one setMany (one script call), outside the timing.
      const saved = await collection.getMany(Array.from({ length: ENTRIES }, (_, i) => `a${i}`));
      const entries = saved.map((value, i) => ({ key: `a${i}`, value }));
      const restore = async () => void (await collection.setMany(entries));
      let loaded = 0;
      for (const size of sizes(opts)) {
        progress(`scan: loading other keys up to ${size}`);
        await loadOthers(client, root, loaded, size);
        progress(`scan: redis list at ${size}`);
        loaded = size;
        const dbsize = Number(await client.dbSize());
        const tasks: Task[] = [
          { name: "scan list", fn: () => scanList(client, prefix) },
          {
            name: "index list",
            fn: async () => {
              const list = await storage.artifacts.list();
              if (list.length !== ENTRIES) throw new Error(`list() found ${list.length} entries, expected ${ENTRIES}`);
            },
          },
        ];
        const list = await interleaved(tasks, r);
        const scan = samples(list, "scan list");
        const index = samples(list, "index list");
        listSamples.set(size, { [SCAN_SERIES.scan]: scan, [SCAN_SERIES.index]: index });
        const note = `database held ${dbsize} keys`;
        out.push(row(GROUP, scanRowName("scan", size), "ms", scan, note));
        out.push(row(GROUP, scanRowName("index", size), "ms", index, note));
        out.push(row(GROUP, `redis list 100: SCAN / index, ${size} other keys`, "×", ratios(scan, index)));

        progress(`scan: redis clear at ${size}`);
        // Clearing: the 100 entries are written back before every timed call (outside the timing).
        const clearTasks: Task[] = [
          {
            name: "scan clear",
            beforeEach: restore,
            fn: async () => {
              const keys = await scanKeys(client, prefix);
              if (keys.length > 0) await client.unlink(keys);
            },
          },
          { name: "index clear", beforeEach: restore, fn: () => collection.clear() },
        ];
        // Iteration-bound, not time-bound: the untimed restore dominates the wall time of a fast clear.
        const clear = await interleaved(clearTasks, {
          ...r,
          rounds: opts.tiny ? 1 : 3,
          time: 0,
          iterations: opts.tiny ? 2 : 10,
        });
        const sc = samples(clear, "scan clear");
        const ic = samples(clear, "index clear");
        out.push(row(GROUP, `redis clear 100: SCAN MATCH+UNLINK, ${size} other keys`, "ms", sc, note));
        out.push(row(GROUP, `redis clear 100: library clear() (index), ${size} other keys`, "ms", ic, note));
        out.push(row(GROUP, `redis clear 100: SCAN / index, ${size} other keys`, "×", ratios(sc, ic)));
        await refill();
      }
      out.push(...growth(GROUP, "redis list 100", listSamples));
    } finally {
      await storage.close();
    }
    return out;
  });
}

async function memorySuite(opts: SuiteOptions): Promise<BenchRow[]> {
  const root = benchRoot("scan");
  const backend = await openBackend("memory:");
  // Everything shares the backend's Map, as tenants of one process do.
  const base = createStorage(backend.store, { root });
  const target: WorkspaceStorage = base.withWorkspace("target");
  const r = rounds(opts);
  const out: BenchRow[] = [];
  const bySize = new Map<number, Record<string, number[]>>();
  for (let i = 0; i < ENTRIES; i++) await target.artifacts.save(`a${i}`, { i, ...PAYLOAD });
  let loaded = 0;
  for (const size of sizes(opts)) {
    // Other tenants write through the library too (setMany per workspace), as they would in an app.
    const perWorkspace = new Map<number, Array<{ key: string; value: unknown }>>();
    for (let i = loaded; i < size; i++) {
      const ws = i % OTHER_WORKSPACES;
      const batch = perWorkspace.get(ws) ?? [];
      batch.push({ key: `n${i}`, value: PAYLOAD });
      perWorkspace.set(ws, batch);
    }
    for (const [ws, batch] of perWorkspace) await base.withWorkspace(`o${ws}`).collection("artifacts").setMany(batch);
    loaded = size;
    progress(`scan: memory list at ${size}`);
    const results = await interleaved(
      [
        {
          name: "memory list",
          fn: async () => {
            const list = await target.artifacts.list();
            if (list.length !== ENTRIES) throw new Error(`list() found ${list.length} entries, expected ${ENTRIES}`);
          },
        },
      ],
      r,
    );
    const list = samples(results, "memory list");
    bySize.set(size, { "library list()": list });
    out.push(
      row(
        GROUP,
        `memory list 100, ${size} other keys`,
        "ms",
        list,
        "the name index is built on a prefix's first listing (warm-up), then kept by writes",
      ),
    );
  }
  out.push(...growth(GROUP, "memory list 100", bySize));
  await base.close();
  await backend.close();
  return out;
}

export async function run(opts: { full: boolean; tiny: boolean }): Promise<BenchRow[]> {
  return [
    ...(await redisSuite(opts)),
    ...(await pageRows(opts)),
    ...(await memorySuite(opts)),
    ...(await sqlScanRows(opts)),
  ];
}
