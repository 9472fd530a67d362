/**
 * Writes while a workspace's slot is resharded (issue 21): 16 writers saving new names (and, in
 * the key layout, overwriting existing ones: one SET XX, no index command; TTL writes and
 * deletes, and vector upserts, whose transactions name two keys or more; new names in a workspace
 * under a quota, which wait for the slot; and reads, getMany of 10 names: one MGET) into one workspace, first for a quiet window, then while migrateSlot() (the redis-cli --cluster reshard
 * procedure: SETSLOT IMPORTING/MIGRATING, MIGRATE key by key, SETSLOT NODE) moves the slot to
 * the next master, paced to last about MIGRATION_MS whatever the number of keys. Both Redis
 * layouts: "keys" (a write is MULTI [ZADD #index, SET key]; refused with TRYAGAIN mid-migration,
 * then sent as steps of one key each, apart.ts) and "hash" (one HSET on #data).
 * Each round moves the slot on to the next master.
 */
import { keySlot } from "../lib/backends/redis/cluster-watch.js";
import { openStorage } from "../lib/index.js";
import { metaKey } from "../lib/keys.js";
import { migrateSlot, ownerOf, type TestCluster } from "../spec/support/cluster.js";
import { type BenchRow, progress, ratios, row, type SuiteOptions } from "./rows.js";
import { benchRoot } from "./support.js";

const GROUP = "cluster";
const WRITERS = 16;
const COLLECTIONS = 20;
const NAMES = 50;
const VALUE = { text: "r".repeat(80) };

export async function reshard(cluster: TestCluster, opts: SuiteOptions): Promise<BenchRow[]> {
  const windowMs = opts.tiny ? 300 : 2000;
  const rounds = opts.tiny ? 1 : 3;
  const out: BenchRow[] = [];
  const modes = [
    ["keys", "new names", ""],
    ["keys", "overwrites", ", overwrites"],
    ["keys", "TTL writes and deletes", ", TTL writes and deletes"],
    ["keys", "vector upserts", ", vector upserts"],
    ["hash", "new names", ""],
    ["hash", "TTL writes and deletes", ", TTL writes and deletes"],
    // Reads: getMany of 10 names is one MGET, refused while its keys are on both sides (then key by key).
    ["keys", "getMany(10) reads", ", getMany(10) reads"],
    // Under a quota every write is one WATCH … MULTI, which waits for the slot (docs/cluster.md).
    ["keys", "new names under a quota", ", under a quota"],
    ["hash", "new names under a quota", ", under a quota"],
  ] as const;
  for (const [m, [layout, writes, label]] of modes.entries()) {
    progress(`cluster: writes during a slot migration, ${layout} layout, ${writes}`);
    const root = benchRoot(`reshard-${layout}-${writes.replace(/\W+/g, "-")}`);
    const storage = await openStorage({
      url: cluster.url,
      root,
      // A slot of its own per mode: otherwise each would migrate the names the modes before it wrote.
      workspaceId: `moving${m}`,
      cluster: true,
      redisLayout: layout,
    });
    try {
      if (writes === "new names under a quota") {
        const admin = await openStorage({ url: cluster.url, root, cluster: true, redisLayout: layout });
        await admin.setQuota(`moving${m}`, { maxEntries: 10_000_000 });
        await admin.close();
      }
      // Something to move: 20 collections of 50 names (1,000+ keys in the key layout, 20 in the hash one).
      for (let c = 0; c < COLLECTIONS; c++) {
        const col = storage.collection(`c${c}`);
        await Promise.all(Array.from({ length: NAMES }, (_, i) => col.set(`n${i}`, VALUE)));
      }
      const notes = storage.collection("c0");
      // One operation of writer w: every other one of "TTL writes and deletes" deletes the name before.
      const op = (round: number, w: number, i: number): Promise<unknown> => {
        const name = `r${round}-w${w}-${i}`;
        if (writes === "overwrites") return notes.set(`n${(w * 7 + i) % NAMES}`, VALUE);
        if (writes === "vector upserts") return storage.vectors.upsert(name, [1, w, i % 97]);
        if (writes === "getMany(10) reads") {
          return notes.getMany(Array.from({ length: 10 }, (_, k) => `n${(w * 13 + i + k * 5) % NAMES}`));
        }
        if (writes === "TTL writes and deletes") {
          return i % 2 === 0 ? notes.set(name, VALUE, 600_000) : notes.delete(`r${round}-w${w}-${i - 1}`);
        }
        return notes.set(name, VALUE);
      };
      const prefix = storage.keyspace.prefix("c0");
      const slot = keySlot(prefix);
      const before: number[] = [];
      const during: number[] = [];
      const longest: number[] = [];
      let failed = 0;
      for (let round = 0; round < rounds; round++) {
        const done: { start: number; at: number }[] = [];
        const refused: { start: number; at: number }[] = [];
        let writing = true;
        const writer = async (w: number) => {
          for (let i = 0; writing; i++) {
            const start = Date.now();
            try {
              await op(round, w, i);
              done.push({ start, at: Date.now() });
            } catch {
              refused.push({ start, at: Date.now() });
              failed++;
            }
          }
        };
        const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
        const quiet = Date.now();
        await new Promise((resolve) => setTimeout(resolve, windowMs));
        const start = Date.now();
        const from = await ownerOf(cluster, slot);
        const masters = cluster.masters.map((m) => m.port);
        const to = masters[(masters.indexOf(from) + 1) % masters.length] as number;
        const keys = Number(await cluster.command(from, ["CLUSTER", "COUNTKEYSINSLOT", String(slot)]));
        // At most ~100 MIGRATEs whatever the key count, each followed by a pause.
        const batch = Math.max(1, Math.ceil(keys / 100));
        await migrateSlot(cluster, slot, to, {
          batch,
          pauseMs: windowMs / Math.ceil(keys / batch),
          middle: metaKey(prefix, layout === "hash" ? "data" : "index"),
        });
        const end = Date.now();
        writing = false;
        await Promise.all(writers);
        const inWindow = (a: number, b: number) => done.filter((d) => d.at >= a && d.at < b);
        before.push(inWindow(quiet, start).length / ((start - quiet) / 1000));
        const moving = inWindow(start, end);
        during.push(moving.length / ((end - start) / 1000));
        // The longest wait of a write started during the migration (answered after it, or refused).
        const started = [...done, ...refused].filter((d) => d.start >= start && d.start < end);
        longest.push(started.reduce((most, d) => Math.max(most, d.at - d.start), 0));
      }
      const [ops, one] = writes.endsWith("reads") ? ["reads", "read"] : ["writes", "write"];
      const note = `${WRITERS} clients, ${writes}, one workspace; ~100 MIGRATEs paced over ~${windowMs} ms`;
      out.push(
        row(GROUP, `reshard ${layout} layout${label}: ${ops} before migration`, "ops/s", before, note),
        row(GROUP, `reshard ${layout} layout${label}: ${ops} during migration`, "ops/s", during, note),
        row(GROUP, `reshard ${layout} layout${label}: during/before`, "×", ratios(during, before)),
        row(
          GROUP,
          `reshard ${layout} layout${label}: longest ${one} during migration`,
          "ms",
          longest,
          `started during it; ${failed} ${ops} refused after commandTimeoutMs`,
        ),
      );
      progress(
        `cluster: reshard ${layout}${label}: before ${before.map((v) => v | 0).join("/")}/s, during ${during.map((v) => v | 0).join("/")}/s, longest ${longest.join("/")} ms, failed ${failed}`,
      );
    } finally {
      // The suite's private cluster goes away with its data: nothing else to clean.
      await storage.close();
    }
  }
  return out;
}
