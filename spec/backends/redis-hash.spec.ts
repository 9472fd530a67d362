// The hash layout (lib/backends/redis/hash.ts): what each operation sends, expiry and its sweep,
// the races it must survive, and data of the string layout read through it.

import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOG_LIMIT } from "../../lib/backends/change-log.js";
import type { PrefixStore } from "../../lib/backends/driver.js";
import { ServerClock } from "../../lib/backends/redis/common.js";
import { redisDriver } from "../../lib/backends/redis/driver.js";
import { SWEEP_EVERY_MS, SWEEP_LIMIT } from "../../lib/backends/redis/hash.js";
import { Nonces } from "../../lib/backends/redis/log.js";
import { WATCH_RECHECK_MS } from "../../lib/backends/redis/notify.js";
import { connectRedis, type RedisConnection } from "../../lib/backends/redis/open.js";
import { TRANSACT_ATTEMPTS } from "../../lib/backends/redis/optimistic.js";
import { rebuildIndex } from "../../lib/backends/redis/rebuild.js";
import { stringScope } from "../../lib/backends/redis/strings.js";
import type { RedisCommander } from "../../lib/backends/redis/tx.js";
import { configFromEnv, openStorage } from "../../lib/index.js";
import { deleteUnder, keysUnder, type RawRedis, REDIS_URL, randomRoot, rawRedis } from "../support/env.js";
import { listNames } from "../support/prefix-store.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let raw: RawRedis;
let connection: RedisConnection;
const roots: string[] = [];
const prefixOf = (collection = "artifacts") => {
  const r = randomRoot("rhash");
  roots.push(r);
  return `${r}:ws:a:${collection}`;
};

/** The commands a commander is asked to send, MULTI bodies included, by name. */
function counting(inner: RedisCommander): { commander: RedisCommander; sent: string[] } {
  const sent: string[] = [];
  const commander: RedisCommander = {
    sendCommand: (args) => {
      // Asked at most once a second per workspace, not per write (spec/backends/redis-watch.spec.ts).
      if (args[0] !== "PUBSUB") sent.push(String(args[0]));
      return inner.sendCommand(args);
    },
    transaction: (commands) => {
      sent.push("MULTI", ...commands.map((c) => String(c[0])), "EXEC");
      return (inner.transaction as NonNullable<RedisCommander["transaction"]>)(commands);
    },
    ...(inner.optimistic && { optimistic: inner.optimistic }),
  };
  return { commander, sent };
}

const scope = (prefix: string, commander: () => RedisCommander = () => connection.commander): PrefixStore =>
  redisDriver(async () => commander(), { layout: "hash" }).scope(prefix);

beforeAll(async () => {
  raw = await rawRedis();
  connection = await connectRedis(REDIS_URL);
});

afterAll(async () => {
  for (const r of roots) await deleteUnder(raw, r);
  await connection.close();
  await raw.quit();
});

describe("redis hash layout", () => {
  it("keeps a collection in one hash, and sends one command per plain write and per read", async () => {
    const prefix = prefixOf();
    const { commander, sent } = counting(connection.commander);
    const s = scope(prefix, () => commander);
    await s.get("warm-up"); // the first use checks once for data of the string layout
    sent.length = 0;
    await s.set("a", "1");
    expect(sent).toEqual(["HSET"]);
    await s.setMany([
      { name: "b", value: "2" },
      { name: "c:*", value: "\u0001starts with the marker" },
    ]);
    expect(sent).toEqual(["HSET", "HSET"]);
    sent.length = 0;
    expect(await s.get("a")).toBe("1");
    expect(await s.getMany(["a", "missing", "c:*"])).toEqual(["1", undefined, "\u0001starts with the marker"]);
    expect(sent).toEqual(["HGET", "HMGET"]);
    expect(await keysUnder(raw, prefix)).toEqual([`${prefix}#data`]);
    expect(await listNames(s)).toEqual(["a", "b", "c:*"]);
    expect(await s.page!({ after: "a", limit: 1 })).toEqual(["b"]);
    expect(await s.stats!()).toEqual({ entries: 3, bytes: 1 + 1 + Buffer.byteLength("\u0001starts with the marker") });
    expect(await s.has("b")).toBe(true);
    expect(await s.delete("b")).toBe(true);
    expect(await s.delete("b")).toBe(false);
    expect(await s.deleteMany(["a", "c:*", "nope"])).toBe(2);
    expect(await keysUnder(raw, prefix)).toEqual([]);
  });

  it("hides an expired field at once, and a later timed write sweeps it but keeps one rewritten without a TTL", async () => {
    const prefix = prefixOf();
    const s = scope(prefix);
    await s.set("keep", "v");
    await s.setMany([
      { name: "short", value: "v", ttl: 50 },
      { name: "rewritten", value: "v", ttl: 50 },
      { name: "long", value: "v", ttl: 600_000 },
    ]);
    // Scored on the server's clock: within a second of TIME + ttl.
    const [sec] = (await raw.sendCommand(["TIME"])) as [string];
    expect(Math.abs(Number(await raw.zScore(`${prefix}#ttl`, "long")) - (Number(sec) * 1000 + 600_000))).toBeLessThan(
      2000,
    );
    await s.set("rewritten", "plain now");
    await sleep(150);
    expect(await s.get("short")).toBeUndefined();
    expect(await s.has("short")).toBe(false);
    expect(await s.getMany(["short", "rewritten"])).toEqual([undefined, "plain now"]);
    expect(await listNames(s)).toEqual(["keep", "long", "rewritten"]);
    expect(await s.page!({ limit: 10 })).toEqual(["keep", "long", "rewritten"]);
    expect(await s.stats!()).toMatchObject({ entries: 3 });
    expect(await s.delete("short")).toBe(false);
    await s.set("short", "again", 50);
    await sleep(100);
    // Reads never write: the expired field is still there until a timed write sweeps.
    expect(Number(await raw.hExists(`${prefix}#data`, "short"))).toBe(1);
    await sleep(SWEEP_EVERY_MS);
    await s.set("trigger", "v", 600_000);
    expect((await raw.hKeys(`${prefix}#data`)).sort()).toEqual(["keep", "long", "rewritten", "trigger"]);
    expect((await raw.zRange(`${prefix}#ttl`, 0, -1)).sort()).toEqual(["long", "trigger"]);
  });

  it("never sweeps a field that another connection rewrote meanwhile", async () => {
    const prefix = prefixOf();
    const other = await connectRedis(REDIS_URL);
    try {
      const a = scope(prefix);
      const b = scope(prefix, () => other.commander);
      const names = Array.from({ length: 200 }, (_, i) => `n${i}`);
      for (let round = 0; round < 3; round++) {
        await a.setMany(names.map((name) => ({ name, value: "old", ttl: 20 })));
        await sleep(SWEEP_EVERY_MS + 50);
        // The sweep (triggered by a's timed write) races b's plain rewrites of every expired name.
        await Promise.all([a.set(`t${round}`, "v", 600_000), ...names.map((name) => b.set(name, `new${round}`))]);
        expect(await a.getMany(names)).toEqual(names.map(() => `new${round}`));
      }
    } finally {
      await other.close();
    }
  });

  it("lists exactly what has a value, whatever writers, deletes and clears interleave", async () => {
    const prefix = prefixOf();
    const other = await connectRedis(REDIS_URL);
    try {
      const a = scope(prefix);
      const b = scope(prefix, () => other.commander);
      const names = ["x", "y", "z"];
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 600; i++) {
        const s = i % 2 ? a : b;
        const name = names[i % 3] as string;
        const pick = (i * 7) % 5;
        if (pick === 0) ops.push(s.clear());
        else if (pick === 1) ops.push(s.deleteMany([name, names[(i + 1) % 3] as string]));
        else if (pick === 2) ops.push(s.set(name, String(i), i % 4 === 0 ? 600_000 : undefined));
        else ops.push(s.setMany(names.map((n) => ({ name: n, value: String(i) }))));
      }
      await Promise.all(ops);
      const fields = (await raw.hKeys(`${prefix}#data`)).sort();
      expect(await listNames(a)).toEqual(fields);
      expect((await a.getMany(fields)).every((value) => value !== undefined)).toBe(true);
    } finally {
      await other.close();
    }
  });

  it("moves a prefix written in the string layout into its hash on first use, expiries included", async () => {
    const prefix = prefixOf("vectors");
    const old = stringScope(
      prefix,
      async () => connection.commander,
      String(LOG_LIMIT),
      new ServerClock(),
      new Nonces(),
    );
    await old.setMany([
      { name: "a", value: "1" },
      { name: "b", value: "2", ttl: 600_000 },
      { name: "gone", value: "3", ttl: 30 },
    ]);
    await sleep(80);
    const s = scope(prefix);
    expect(await s.get("a")).toBe("1");
    expect(await listNames(s)).toEqual(["a", "b"]);
    const keys = await keysUnder(raw, prefix);
    expect(keys).not.toContain(`${prefix}#index`);
    expect(keys.filter((key) => key.startsWith(`${prefix}:`))).toEqual([]);
    expect(await raw.pTTL(`${prefix}#data`)).toBe(-1);
    const [sec] = (await raw.sendCommand(["TIME"])) as [string];
    expect(Math.abs(Number(await raw.zScore(`${prefix}#ttl`, "b")) - (Number(sec) * 1000 + 600_000))).toBeLessThan(
      2000,
    );
    // The log carried over: a cache that followed the old layout sees every later write.
    const before = await s.version!();
    await s.set("c", "4");
    expect(await s.changedSince!(before)).toEqual(["c"]);
  });

  it("lets exactly one of many racing conditional writes win, on separate connections", async () => {
    const prefix = prefixOf();
    const connections = await Promise.all(Array.from({ length: 4 }, () => connectRedis(REDIS_URL)));
    try {
      const stores = connections.map((c) => scope(prefix, () => c.commander));
      const attempts = stores.flatMap((s, i) =>
        Array.from({ length: 5 }, (_, j) =>
          s.transact!(["slot"], ([current]) => {
            if (current !== undefined) throw new Error("taken");
            return [{ value: `${i}.${j}` }];
          }),
        ),
      );
      const results = await Promise.allSettled(attempts);
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      expect(
        results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason.message),
      ).toEqual(Array(19).fill("taken"));
    } finally {
      await Promise.all(connections.map((c) => c.close()));
    }
  });

  it("moves keys written behind the driver's back into the hash when rebuildIndex is told the layout", async () => {
    const prefix = prefixOf();
    const s = scope(prefix);
    await s.set("live", "v");
    await raw.set(`${prefix}:old`, "v");
    await raw.set(`${prefix}:ttl`, "v", { PX: 600_000 });
    await raw.set(`${prefix}x:other`, "v");
    expect(await listNames(s)).toEqual(["live"]);
    expect(await rebuildIndex(REDIS_URL, prefix, { layout: "hash" })).toEqual({
      prefix,
      scanned: 2,
      added: 2,
      removed: 0,
      moved: 2,
    });
    expect(await listNames(s)).toEqual(["live", "old", "ttl"]);
    expect(await keysUnder(raw, prefix)).toEqual([`${prefix}#data`, `${prefix}#ttl`, `${prefix}x:other`]);
    // Without the option too: a prefix that has a hash is taken for one, and its #ttl is left to the sweep.
    await raw.set(`${prefix}:late`, "v");
    expect(await rebuildIndex(REDIS_URL, prefix)).toEqual({ prefix, scanned: 1, added: 1, removed: 0, moved: 1 });
    expect(await raw.zRange(`${prefix}#ttl`, 0, -1)).toEqual(["ttl"]);
  });
});

describe("redisLayout in the config", () => {
  it("opens the hash layout, carries it in the bootstrap config, and keeps the key layout by default", async () => {
    const root = randomRoot("rlayout");
    roots.push(root);
    const hashed = await openStorage({ url: REDIS_URL, root, workspaceId: "w", redisLayout: "hash" });
    const plain = await openStorage({ url: REDIS_URL, root, workspaceId: "k" });
    try {
      await hashed.collection("notes").set("n", 1);
      await plain.collection("notes").set("n", 2);
      expect(await keysUnder(raw, `${root}:ws:w:`)).toEqual([
        `${root}:ws:w:#collections#data`,
        `${root}:ws:w:notes#data`,
      ]);
      expect(await raw.exists(plain.keyspace.key("notes", "n"))).toBe(1);
      expect(hashed.toBootstrapConfig()).toMatchObject({ redisLayout: "hash" });
      expect(plain.toBootstrapConfig()).not.toHaveProperty("redisLayout");
      const again = await openStorage(hashed.toBootstrapConfig());
      try {
        expect(await again.collection("notes").get("n")).toBe(1);
      } finally {
        await again.close();
      }
    } finally {
      await hashed.close();
      await plain.close();
    }
    expect(configFromEnv({ KVWS_URL: REDIS_URL, KVWS_ROOT: "r", KVWS_REDIS_LAYOUT: "hash" })).toMatchObject({
      redisLayout: "hash",
    });
    expect(() => configFromEnv({ KVWS_URL: REDIS_URL, KVWS_ROOT: "r", KVWS_REDIS_LAYOUT: "rows" })).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_CONFIG", field: "redisLayout" }),
    );
    await expect(openStorage({ url: "memory:", root: "r", redisLayout: "hash" })).rejects.toMatchObject({
      code: "ERR_INVALID_CONFIG",
      field: "redisLayout",
    });
  });
});

describe("a key-layout storage on data kept in the hash layout", () => {
  it("refuses each hashed collection with a typed error and writes nothing beside it", async () => {
    const root = randomRoot("rmixed");
    roots.push(root);
    const hashed = await openStorage({ url: REDIS_URL, root, workspaceId: "w", redisLayout: "hash" });
    await hashed.artifacts.save("plan", { step: 1 });
    await hashed.close();
    const before = await keysUnder(raw, `${root}:`);

    const plain = await openStorage({ url: REDIS_URL, root, workspaceId: "w" });
    try {
      const refused = { code: "ERR_INVALID_CONFIG", field: "redisLayout" };
      await expect(plain.artifacts.list()).rejects.toMatchObject(refused);
      await expect(plain.artifacts.save("other", 1)).rejects.toMatchObject(refused);
      // Refused again, not only once: the check is not cached as passed.
      await expect(plain.collection("artifacts").get("plan")).rejects.toMatchObject(refused);
      // A workspace the hash layout never wrote is served as before.
      await plain.withWorkspace("k").collection("notes").set("n", 1);
      expect(await raw.exists(plain.keyspace.withWorkspace("k").key("notes", "n"))).toBe(1);
    } finally {
      await plain.close();
    }
    expect(await keysUnder(raw, `${root}:ws:w:`)).toEqual(before.filter((key) => key.startsWith(`${root}:ws:w:`)));
  });
});

describe("the numbers docs/redis-index.md and docs/collaboration.md give", () => {
  it("are the ones the driver uses", () => {
    const flat = (path: string) =>
      readFileSync(new URL(`../../docs/${path}`, import.meta.url), "utf8").replace(/\s+/g, " ");
    const index = flat("redis-index.md");
    expect(SWEEP_EVERY_MS).toBe(1000);
    expect(index).toContain(`sweep their prefix at most once a second per process: up to ${SWEEP_LIMIT} names`);
    expect(index).toContain(`a lost race reads again, up to ${TRANSACT_ATTEMPTS} times`);
    expect(WATCH_RECHECK_MS).toBe(1000);
    expect(flat("collaboration.md")).toContain("(`PUBSUB NUMSUB`) at most once a second per channel");
  });
});
