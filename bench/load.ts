/**
 * Load: what a multi-tenant service pays on the Redis server, which is where it is bound.
 * For raw Keyv over @keyv/redis and for the driver's PrefixStore (what collection() is wired
 * to), at 1, 16 and 128 operations in flight: throughput, and the server's CPU per operation
 * (INFO cpu deltas ÷ operations — robust to client-side noise). Then Redis memory per stored
 * entry, raw keys against scoped ones (value + index member), in one prefix and across 1,000
 * workspaces. The first write of each new workspace (registry entries included) is load-first.ts.
 * Everything runs on a private redis-server this suite starts and stops itself.
 *
 * unstorage's prefixStorage is not measured: the package is not installed here.
 */
import KeyvRedis from "@keyv/redis";
import { createClient } from "@redis/client";
import { Keyv } from "keyv";
import type { PrefixStore } from "../lib/backends/driver.js";
import { redisDriver } from "../lib/backends/redis/driver.js";
import { connectRedis } from "../lib/backends/redis/open.js";
import { openStorage } from "../lib/index.js";
import { tempDir } from "../spec/support/env.js";
import { freePort, PrivateRedis } from "../spec/support/servers.js";
import { firstWrites } from "./load-first.js";
import { retainedPerWorkspace } from "./load-retained.js";
import { type BenchRow, median, progress, ratios, row, type SuiteOptions } from "./rows.js";
import { drive, type Op } from "./server-cpu.js";

const GROUP = "load";
const VALUE = { n: 1, text: "x".repeat(100), tags: ["a", "b"] };
/** Distinct names written: the index holds this many members, as a busy collection would. */
const NAMES = 20_000;
const FLIGHTS = [1, 16, 128] as const;

type Admin = ReturnType<typeof createClient>;

/** Empties the private server key by key (never FLUSHDB, by house rule, even here). */
async function wipe(admin: Admin): Promise<void> {
  for await (const keys of admin.scanIterator({ MATCH: "app:*", COUNT: 5000 })) {
    if (keys.length > 0) await admin.del(keys); // DEL, not UNLINK: freed before the next reading
  }
}

async function usedMemory(admin: Admin): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(String(await admin.info("memory")))?.[1]);
}

/**
 * used_memory once it has stopped moving: after big deletes Redis shrinks the keyspace's hash
 * table in its cron, freeing megabytes meanwhile, which once made a fill that ran during it read
 * 94 bytes per entry instead of ~270. Readings 100 ms apart, until three agree within 64 KiB (5 s at most).
 */
async function settledMemory(admin: Admin): Promise<number> {
  const readings = [await usedMemory(admin)];
  for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    readings.push(await usedMemory(admin));
    const last = readings.slice(-3);
    if (last.length === 3 && Math.max(...last) - Math.min(...last) < 64 * 1024) break;
  }
  return readings.at(-1) as number;
}

interface Variant {
  name: string;
  op: Op;
}

async function throughput(admin: Admin, variants: Variant[], opts: SuiteOptions): Promise<BenchRow[]> {
  const rounds = opts.tiny ? 1 : 3;
  const count = (flight: number) => (opts.tiny ? 500 : flight === 1 ? 5_000 : 40_000);
  const rows: BenchRow[] = [];
  for (const flight of FLIGHTS) {
    const ops = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    const cpu = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    const commands = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const variant of order) {
        const result = await drive([admin], variant.op, count(flight), flight);
        ops.get(variant.name)?.push(result.opsPerSecond);
        cpu.get(variant.name)?.push(result.cpuMicros);
        commands.get(variant.name)?.push(result.commandsPerOp);
      }
    }
    progress(`load @${flight}: ${variants.map((v) => `${v.name} ${median(ops.get(v.name) ?? []) | 0}/s`).join(", ")}`);
    for (const variant of variants) {
      rows.push(row(GROUP, `${variant.name} @${flight} in flight`, "ops/s", ops.get(variant.name) ?? []));
      rows.push(row(GROUP, `${variant.name} @${flight} server CPU`, "µs/op", cpu.get(variant.name) ?? []));
      // Commands per operation do not depend on how many are in flight: given once.
      if (flight === FLIGHTS[FLIGHTS.length - 1]) {
        rows.push(
          row(
            GROUP,
            `${variant.name} commands per op`,
            "commands",
            commands.get(variant.name) ?? [],
            "MULTI and EXEC count one each",
          ),
        );
      }
    }
    const pairs: Array<[string, string, string]> = [
      ["collection set", "raw set", "goal ≤ 2 (stretch 1.5)"],
      ["collection get", "raw get", "goal ≤ 1.1"],
      ["artifacts save", "raw set", "goal ≤ 2; a name this handle knows: SET XX GET"],
      ["artifacts load", "raw get", ""],
      ["scoped set", "raw set", "the PrefixStore under collection()"],
      ["scoped get", "raw get", "the PrefixStore under collection()"],
      ["tracked set", "raw set", "vectors/workflow index: + change log"],
      ["watched collection set", "collection set", "a watcher on the workspace: + PUBLISH, one per channel and tick"],
      ["collection set, new name", "raw set, new name", "a name never written: SET XX answers nil, then the MULTI"],
      ["hash collection set", "raw set", "redisLayout hash; goal ≤ 1.5"],
      ["hash collection get", "raw get", "redisLayout hash; goal ≤ 1.1"],
      ["hash artifacts save", "raw set", "redisLayout hash; goal ≤ 2"],
      ["hash artifacts load", "raw get", "redisLayout hash"],
      ["hash tracked set", "raw set", "redisLayout hash, + change log"],
    ];
    for (const [a, b, note] of pairs) {
      const cpuA = cpu.get(a);
      const cpuB = cpu.get(b);
      if (!cpuA || !cpuB) continue;
      rows.push(row(GROUP, `${a} / ${b} server CPU @${flight}`, "×", ratios(cpuA, cpuB), note));
      const goal = flight === 128 && /^(hash )?collection (set|get)$/.test(a) ? "goal ≥ 0.7" : undefined;
      rows.push(row(GROUP, `${a} / ${b} ops/s @${flight}`, "×", ratios(ops.get(a) ?? [], ops.get(b) ?? []), goal));
    }
  }
  return rows;
}

async function memory(admin: Admin, layouts: Record<string, (prefix: string) => PrefixStore>, opts: SuiteOptions) {
  const entries = opts.tiny ? 2_000 : 100_000;
  const value = JSON.stringify({ value: VALUE, expires: null });
  const rows: BenchRow[] = [];
  const measure = async (fill: () => Promise<void>) => {
    await wipe(admin);
    const before = await settledMemory(admin);
    await fill();
    return (await settledMemory(admin)) - before;
  };
  const places: Array<[string, (i: number) => [string, string]]> = [
    ["one prefix", (i) => ["app:ws:w:things", `k${i}`]],
    ["1,000 workspaces", (i) => [`app:ws:w${i % 1000}:things`, `k${i}`]],
  ];
  for (const [label, place] of places) {
    const raw = await measure(async () => {
      for (let i = 0; i < entries; i += 1000) {
        const args: string[] = ["MSET"];
        for (let j = i; j < Math.min(entries, i + 1000); j++) {
          const [prefix, name] = place(j);
          args.push(`${prefix}:${name}`, value);
        }
        await admin.sendCommand(args);
      }
    });
    rows.push(row(GROUP, `memory per entry, raw, ${label}`, "bytes", [raw / entries]));
    for (const [layout, scopes] of Object.entries(layouts)) {
      const scoped = await measure(async () => {
        const batches = new Map<string, Array<{ name: string; value: string }>>();
        for (let i = 0; i < entries; i++) {
          const [prefix, name] = place(i);
          let batch = batches.get(prefix);
          if (!batch) batches.set(prefix, (batch = []));
          batch.push({ name, value });
        }
        for (const [prefix, batch] of batches) {
          for (let i = 0; i < batch.length; i += 1000) await scopes(prefix).setMany(batch.slice(i, i + 1000));
        }
      });
      rows.push(row(GROUP, `memory per entry, ${layout}, ${label}`, "bytes", [scoped / entries]));
      rows.push(row(GROUP, `memory ${layout} / raw, ${label}`, "×", [scoped / raw], `${entries} entries`));
    }
  }
  await wipe(admin);
  return rows;
}

export async function run(opts: SuiteOptions): Promise<BenchRow[]> {
  const dir = tempDir();
  const server = new PrivateRedis(await freePort(), dir.path, ["--appendonly", "no"]);
  await server.start();
  const admin: Admin = createClient({ url: server.url });
  admin.on("error", () => {});
  await admin.connect();
  const adapter = new KeyvRedis(server.url);
  const raw = new Keyv({ store: adapter, namespace: "app:raw" });
  const connection = await connectRedis(server.url);
  const driver = redisDriver(async () => connection.commander);
  const storage = await openStorage({ url: server.url, root: "app", workspaceId: "s" });
  const hashed = await openStorage({ url: server.url, root: "app", workspaceId: "h", redisLayout: "hash" });
  const hashDriver = redisDriver(async () => connection.commander, { layout: "hash" });
  const watched = await openStorage({ url: server.url, root: "app", workspaceId: "ww" });
  // Roots of their own: their registries fill with the new workspaces of load-first.ts.
  const firstKeys = await openStorage({ url: server.url, root: "app:fk" });
  const firstHash = await openStorage({ url: server.url, root: "app:fh", redisLayout: "hash" });
  const stopWatching = new AbortController();
  const draining = (async () => {
    for await (const _ of watched.watch({ signal: stopWatching.signal })) {
      // drained as a real watcher would
    }
  })();
  try {
    const watchedCollection = watched.collection("things");
    const hashCollection = hashed.collection("things");
    const hashTracked = hashDriver.scope("app:ws:h:vectors");
    const collection = storage.collection("things");
    const scoped = driver.scope("app:ws:w:things");
    const tracked = driver.scope("app:ws:w:vectors");
    const name = (i: number) => `k${i % NAMES}`;
    const fresh = storage.collection("fresh");
    let born = 0;
    // Keyv serialises on both sides, as collection() will.
    const serialised = () => JSON.stringify({ value: VALUE, expires: null });
    for (let i = 0; i < NAMES; i += 1000) {
      const batch = Array.from({ length: 1000 }, (_, j) => ({ name: name(i + j), value: serialised() }));
      await scoped.setMany(batch);
      await tracked.setMany(batch);
      await hashTracked.setMany(batch);
      for (const entry of batch) {
        await raw.set(entry.name, VALUE);
        await collection.set(entry.name, VALUE);
        await storage.artifacts.save(entry.name, VALUE);
        await hashCollection.set(entry.name, VALUE);
        await watchedCollection.set(entry.name, VALUE);
        await hashed.artifacts.save(entry.name, VALUE);
      }
    }
    progress("load: filled");
    const rows = await throughput(
      admin,
      [
        { name: "raw set", op: (i) => raw.set(name(i), VALUE) },
        { name: "collection set", op: (i) => collection.set(name(i), VALUE) },
        { name: "artifacts save", op: (i) => storage.artifacts.save(name(i), VALUE) },
        { name: "scoped set", op: (i) => scoped.set(name(i), serialised()) },
        { name: "tracked set", op: (i) => tracked.set(name(i), serialised()) },
        { name: "raw get", op: (i) => raw.get(name(i)) },
        { name: "scoped get", op: async (i) => JSON.parse(String(await scoped.get(name(i)))) },
        { name: "collection get", op: (i) => collection.get(name(i)) },
        { name: "artifacts load", op: (i) => storage.artifacts.load(name(i)) },
        { name: "raw set, new name", op: () => raw.set(`n${born++}`, VALUE) },
        { name: "collection set, new name", op: () => fresh.set(`n${born++}`, VALUE) },
        { name: "watched collection set", op: (i) => watchedCollection.set(name(i), VALUE) },
        { name: "hash collection set", op: (i) => hashCollection.set(name(i), VALUE) },
        { name: "hash collection get", op: (i) => hashCollection.get(name(i)) },
        { name: "hash artifacts save", op: (i) => hashed.artifacts.save(name(i), VALUE) },
        { name: "hash artifacts load", op: (i) => hashed.artifacts.load(name(i)) },
        { name: "hash tracked set", op: (i) => hashTracked.set(name(i), serialised()) },
      ],
      opts,
    );
    rows.push(...(await firstWrites(admin, raw, { "key layout": firstKeys, "hash layout": firstHash }, VALUE, opts)));
    rows.push(...(await retainedPerWorkspace(server.url, opts)));
    rows.push(
      ...(await memory(
        admin,
        { "key layout": (prefix) => driver.scope(prefix), "hash layout": (prefix) => hashDriver.scope(prefix) },
        opts,
      )),
    );
    return rows;
  } finally {
    stopWatching.abort();
    await draining;
    await watched.close();
    await firstKeys.close();
    await firstHash.close();
    await hashed.close();
    await storage.close();
    await connection.close();
    await adapter.disconnect().catch(() => {});
    admin.destroy();
    await server.kill();
    dir.remove();
  }
}
