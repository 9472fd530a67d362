/**
 * Redis pages: a range read on an index whose members all score 0, and correct listings of an
 * index still in the layout before 0.3 (members scored by expiry), migrated by rebuildIndex.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PrefixStore } from "../../lib/backends/driver.js";
import { redisDriver } from "../../lib/backends/redis/driver.js";
import { connectRedis, type RedisConnection } from "../../lib/backends/redis/open.js";
import { rebuildIndex } from "../../lib/backends/redis/rebuild.js";
import type { RedisCommander } from "../../lib/backends/redis/tx.js";
import { listNamesWith, listValues } from "../../lib/collections/list.js";
import { deleteUnder, type RawRedis, REDIS_URL, randomRoot, rawRedis } from "../support/env.js";

let raw: RawRedis;
let connection: RedisConnection;
const roots: string[] = [];
const newPrefix = () => {
  const root = randomRoot("rpage");
  roots.push(root);
  return `${root}:ws:w:artifacts`;
};

beforeAll(async () => {
  raw = await rawRedis();
  connection = await connectRedis(REDIS_URL);
});
afterAll(async () => {
  for (const root of roots) await deleteUnder(raw, root);
  await connection.close();
  await raw.quit();
});

/** A scope whose commands are recorded (command name and its first arguments). */
function recorded(prefix: string): { store: PrefixStore; sent: string[][] } {
  const sent: string[][] = [];
  const commander: RedisCommander = {
    sendCommand: (args) => {
      sent.push(args);
      return connection.commander.sendCommand(args);
    },
  };
  return { store: redisDriver(async () => commander).scope(prefix), sent };
}

const page = (store: PrefixStore, after: string | undefined, limit: number, startsWith?: string) =>
  listNamesWith(store, { after, limit, startsWith });

/** Writes a prefix the way the driver before 0.3 did: index members scored by expiry, +inf without one. */
async function writeOldLayout(prefix: string, now: number): Promise<void> {
  await raw.set(`${prefix}:plain`, '{"value":1}');
  await raw.set(`${prefix}:b`, '{"value":2}');
  await raw.set(`${prefix}:later`, '{"value":3}', { PX: 600_000 });
  await raw.set(`${prefix}:a:1`, '{"value":4}');
  // "expired": its value is gone, its member (scored in the past) not yet pruned.
  await raw.sendCommand([
    "ZADD",
    `${prefix}#index`,
    "+inf",
    "plain",
    "+inf",
    "b",
    String(now + 600_000),
    "later",
    "+inf",
    "a:1",
    String(now - 1000),
    "expired",
  ]);
}

describe("redis pages", () => {
  it("reads a page with one ZRANGE BYLEX, never the whole index", async () => {
    const prefix = newPrefix();
    const { store, sent } = recorded(prefix);
    await store.setMany(Array.from({ length: 500 }, (_, i) => ({ name: `n${i}`, value: "v" })));
    sent.length = 0;
    const names = await page(store, "n100", 3);
    expect(names).toEqual(["n101", "n102", "n103"]);
    const used = sent.map((command) => command[0]);
    expect(used).not.toContain("ZSCAN");
    expect(sent).toContainEqual(["ZRANGE", `${prefix}#index`, "(n100", "+", "BYLEX", "LIMIT", "0", "3"]);
    // No #ttl: no ZMSCORE either.
    expect(used).not.toContain("ZMSCORE");
  });

  it("skips names whose ttl passed and fills the page from further on", async () => {
    const prefix = newPrefix();
    const { store } = recorded(prefix);
    await store.setMany([
      { name: "a", value: '{"value":1}', ttl: 30 },
      { name: "b", value: '{"value":1}', ttl: 30 },
      { name: "c", value: '{"value":1}' },
      { name: "d", value: '{"value":1}', ttl: 600_000 },
      { name: "e", value: '{"value":1}' },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(await page(store, undefined, 2)).toEqual(["c", "d"]);
    expect(await page(store, "c", 5)).toEqual(["d", "e"]);
  });

  it("lists and pages an index of the old layout correctly, and rebuildIndex migrates it", async () => {
    const prefix = newPrefix();
    const [sec] = (await raw.sendCommand(["TIME"])) as [string];
    await writeOldLayout(prefix, Number(sec) * 1000);
    const { store, sent } = recorded(prefix);
    const all = ["a:1", "b", "later", "plain"];
    const pages: string[] = [];
    for (let after: string | undefined; ; ) {
      const got = await page(store, after, 2);
      pages.push(...got);
      if (got.length < 2) break;
      after = got[got.length - 1];
    }
    expect(pages).toEqual(all);
    expect(await page(store, undefined, 10, "a:")).toEqual(["a:1"]);
    expect((await listValues(store, { after: "b", limit: 1, startsWith: undefined })).map(([n]) => n)).toEqual([
      "later",
    ]);
    // A new write next to old members: still listed right.
    await store.set("aa", '{"value":5}');
    expect(await page(store, "a:1", 2)).toEqual(["aa", "b"]);

    expect((await rebuildIndex(REDIS_URL, prefix)).removed).toBe(1);
    expect(await raw.zRangeWithScores(`${prefix}#index`, 0, -1)).toEqual(
      ["a:1", "aa", "b", "later", "plain"].map((value) => ({ value, score: 0 })),
    );
    expect(await raw.zRange(`${prefix}#ttl`, 0, -1)).toEqual(["later"]);
    sent.length = 0;
    expect(await page(store, "b", 10)).toEqual(["later", "plain"]);
    expect(sent.map((command) => command[0])).not.toContain("ZSCAN");
  });

  it("a name written again while a ttl write prunes it keeps its index member (index ⊇ values)", async () => {
    const prefix = newPrefix();
    const other = redisDriver(async () => connection.commander).scope(prefix);
    let raced = false;
    const commander: RedisCommander = {
      async sendCommand(args) {
        const reply = await connection.commander.sendCommand(args);
        // Another writer lands between the prune's read of expired names and its MULTI.
        if (!raced && args[0] === "ZRANGEBYSCORE" && args[1] === `${prefix}#ttl`) {
          raced = true;
          await other.set("x", '{"value":"again"}');
        }
        return reply;
      },
    };
    const store = redisDriver(async () => commander).scope(prefix);
    await other.set("x", '{"value":1}', 30);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await store.set("y", '{"value":1}', 600_000);
    expect(raced).toBe(true);
    expect(await raw.get(`${prefix}:x`)).toBe('{"value":"again"}');
    expect(await raw.zScore(`${prefix}#index`, "x")).toBe(0);
    expect(await listNamesWith(store, { after: undefined, startsWith: undefined, limit: undefined })).toEqual([
      "x",
      "y",
    ]);
  });

  it("a ttl write prunes old-layout members whose expiry passed", async () => {
    const prefix = newPrefix();
    const [sec] = (await raw.sendCommand(["TIME"])) as [string];
    await writeOldLayout(prefix, Number(sec) * 1000);
    const { store } = recorded(prefix);
    await store.set("new", '{"value":1}', 600_000);
    expect(await raw.zScore(`${prefix}#index`, "expired")).toBeNull();
    expect(await raw.zScore(`${prefix}#index`, "plain")).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("redis walks and stats read both sets", () => {
  it("scan() and stats() skip names whose ttl passed, in the new layout and the old", async () => {
    const prefix = newPrefix();
    const [sec] = (await raw.sendCommand(["TIME"])) as [string];
    await writeOldLayout(prefix, Number(sec) * 1000);
    const { store } = recorded(prefix);
    await store.setMany([
      { name: "t-gone", value: "xx", ttl: 30 },
      { name: "t-live", value: "xyz", ttl: 600_000 },
      { name: "p", value: "x" },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const walked: string[] = [];
    for await (const batch of store.scan!()) walked.push(...batch);
    const live = ["a:1", "b", "later", "p", "plain", "t-live"];
    expect(walked.sort()).toEqual(live);
    const stats = await store.stats!();
    expect(stats.entries).toBe(live.length);
    // Values: '{"value":N}' (11 bytes) × 4 old-layout names, then "x" and "xyz".
    expect(stats.bytes).toBe(4 * 11 + 1 + 3);
  });
});
