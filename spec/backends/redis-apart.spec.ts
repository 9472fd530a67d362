// The steps a write or delete takes while its cluster slot is half-migrated (apart.ts), on a real
// Redis: a commander that answers every transaction the way a migrating slot does (TRYAGAIN, so
// the steps run instead), and a writer of the same name let in between two steps. Whatever lands
// in between, every value keeps its index member; the log gets an entry before and after.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PrefixStore } from "../../lib/backends/driver.js";
import { type RedisDriverOptions, redisDriver } from "../../lib/backends/redis/driver.js";
import { connectRedis, type RedisConnection } from "../../lib/backends/redis/open.js";
import { execOnce, type RedisCommander } from "../../lib/backends/redis/tx.js";
import { metaKey } from "../../lib/keys.js";
import { deleteUnder, keysUnder, type RawRedis, REDIS_URL, randomRoot, rawRedis } from "../support/env.js";

let raw: RawRedis;
let connection: RedisConnection;
const root = randomRoot("apart");

beforeAll(async () => {
  raw = await rawRedis();
  connection = await connectRedis(REDIS_URL);
});
afterAll(async () => {
  await deleteUnder(raw, root);
  await connection.close();
  await raw.quit();
});

interface Between {
  /** After the first step whose command line matches, before the next step. */
  after: RegExp;
  run: () => Promise<unknown>;
}

/** Every transaction that has steps runs them, as a migrating slot makes the cluster commander do. */
function migrating(between?: Between) {
  const sent: string[] = [];
  let fired = false;
  const inner = connection.commander;
  const commander: RedisCommander = {
    sendCommand: (args) => inner.sendCommand(args),
    transaction: async (commands, apart) => {
      if (!apart) return execOnce(inner, commands);
      return apart({
        send: async (command) => {
          sent.push(command.join(" "));
          const reply = await inner.sendCommand(command);
          if (between && !fired && between.after.test(command.join(" "))) {
            fired = true;
            await between.run();
          }
          return reply;
        },
        multi: (steps) => {
          sent.push(steps.map((command) => command.join(" ")).join(" | "));
          return execOnce(inner, steps);
        },
      });
    },
  };
  return {
    sent,
    scope: (prefix: string, options: RedisDriverOptions = {}) =>
      redisDriver(async () => commander, options).scope(prefix),
  };
}

const plain = (prefix: string, options: RedisDriverOptions = {}): PrefixStore =>
  redisDriver(async () => connection.commander, options).scope(prefix);

const members = async (prefix: string) => (await raw.zRange(metaKey(prefix, "index"), 0, -1)).sort();

describe("key layout steps while a slot migrates", () => {
  it("writes a new name in steps, members before and after the value", async () => {
    const prefix = `${root}:ws:a:notes`;
    const { sent, scope } = migrating();
    await scope(prefix).setMany([
      { name: "n1", value: "1" },
      { name: "n1", value: "2" },
    ]);
    expect(sent).toEqual([
      `ZADD ${prefix}#index 0 n1 0 n1`,
      `SET ${prefix}:n1 1`,
      `SET ${prefix}:n1 2`,
      `ZADD ${prefix}#index 0 n1 0 n1`,
    ]);
    expect(await plain(prefix).get("n1")).toBe("2");
  });

  it("keeps a value listed when a delete lands between the first member and the value", async () => {
    const prefix = `${root}:ws:b:notes`;
    await plain(prefix).set("x", "old");
    const { scope } = migrating({ after: /^ZADD .*#index/, run: () => plain(prefix).delete("x") });
    // Two entries: one would first try SET … XX alone, which needs no member.
    await scope(prefix).setMany([
      { name: "x", value: "new" },
      { name: "y", value: "1" },
    ]);
    expect(await plain(prefix).get("x")).toBe("new");
    expect(await members(prefix)).toEqual(["x", "y"]);
  });

  it("writes a TTL in steps: #ttl before the value, the value with its expiry", async () => {
    const prefix = `${root}:ws:c:notes`;
    const { sent, scope } = migrating();
    await scope(prefix).set("t", "v", 60_000);
    expect(sent.map((line) => line.split(" ").slice(0, 2).join(" "))).toEqual([
      `ZADD ${prefix}#index`,
      `ZADD ${prefix}#ttl`,
      `SET ${prefix}:t`,
      `ZADD ${prefix}#index`,
    ]);
    const pttl = Number(await raw.pTTL(`${prefix}:t`));
    expect(pttl).toBeGreaterThan(50_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
    expect(await raw.zScore(metaKey(prefix, "ttl"), "t")).toBeGreaterThan(Date.now() + 50_000);
  });

  it("deletes in steps, counts what it removed, and lists again a value written in between", async () => {
    const prefix = `${root}:ws:d:notes`;
    await plain(prefix).setMany([
      { name: "a", value: "1" },
      { name: "b", value: "2" },
      { name: "keep", value: "3" },
    ]);
    // Another writer re-creates "a" right after its DEL, before the ZREM that removes its member.
    const { sent, scope } = migrating({
      after: new RegExp(`^DEL ${prefix}:a$`),
      run: () => plain(prefix).set("a", "again"),
    });
    expect(await scope(prefix).deleteMany(["a", "b", "never"])).toBe(2);
    // Values first, then members; the one re-created is listed again, last.
    const lastDel = Math.max(...["a", "b", "never"].map((name) => sent.indexOf(`DEL ${prefix}:${name}`)));
    expect(sent.indexOf(`ZREM ${prefix}#index a b never`)).toBeGreaterThan(lastDel);
    expect(sent.at(-1)).toBe(`ZADD ${prefix}#index 0 a`);
    expect(await plain(prefix).get("a")).toBe("again");
    expect(await plain(prefix).get("b")).toBeUndefined();
    expect(await members(prefix)).toEqual(["a", "keep"]);
  });

  it("clears in steps: no value, member or log left", async () => {
    const prefix = `${root}:ws:h:vectors`;
    await plain(prefix).setMany(Array.from({ length: 30 }, (_, i) => ({ name: `c${i}`, value: String(i) })));
    const { sent, scope } = migrating();
    await scope(prefix).clear();
    expect(sent).toContain(`UNLINK ${prefix}:c0`);
    expect(await keysUnder(raw, prefix)).toEqual([]);
  });

  it("logs a tracked prefix's change before and after its steps", async () => {
    const prefix = `${root}:ws:e:vectors`;
    const log = metaKey(prefix, "log");
    const { scope } = migrating();
    const store = scope(prefix);
    await store.set("v", "1");
    expect(await raw.xLen(log)).toBe(2);
    await store.delete("v");
    expect(await raw.xLen(log)).toBe(4);
    const entries = await raw.xRange(log, "-", "+");
    expect(entries.map((entry) => entry.message.n)).toEqual(["v", "v", "v", "v"]);
    // Each entry its own version: a reader that took the first one reads the change again.
    expect(new Set(entries.map((entry) => entry.message.v)).size).toBe(4);
    expect(await members(prefix)).toEqual([]);
  });
});

describe("hash layout steps while a slot migrates", () => {
  const hash = { layout: "hash" } as const;

  it("writes a TTL as #ttl, then the field", async () => {
    const prefix = `${root}:ws:f:notes`;
    const { sent, scope } = migrating();
    await scope(prefix, hash).set("t", "v", 60_000);
    expect(sent.map((line) => line.split(" ").slice(0, 2).join(" "))).toEqual([
      `ZADD ${prefix}#ttl`,
      `HSET ${prefix}#data`,
    ]);
    expect(await plain(prefix, hash).get("t")).toBe("v");
  });

  it("clears #ttl, then #data, then the log", async () => {
    const prefix = `${root}:ws:i:vectors`;
    await plain(prefix, hash).setMany([
      { name: "a", value: "1", ttl: 60_000 },
      { name: "b", value: "2" },
    ]);
    const { sent, scope } = migrating();
    await scope(prefix, hash).clear();
    expect(sent).toEqual([
      `UNLINK ${prefix}#ttl`,
      `UNLINK ${prefix}#data`,
      `UNLINK ${prefix}#log`,
      `UNLINK ${prefix}#version`,
    ]);
    expect(await keysUnder(raw, prefix)).toEqual([]);
  });

  it("deletes from a tracked prefix as one MULTI on #data between two log entries", async () => {
    const prefix = `${root}:ws:g:vectors`;
    await plain(prefix, hash).setMany([
      { name: "a", value: "1" },
      { name: "b", value: "2" },
    ]);
    const { sent, scope } = migrating();
    expect(await scope(prefix, hash).deleteMany(["a", "nope"])).toBe(1);
    expect(sent.map((line) => line.split(" ")[0])).toEqual(["XADD", "HMGET", "XADD"]);
    expect(await plain(prefix, hash).get("a")).toBeUndefined();
    expect(await plain(prefix, hash).get("b")).toBe("2");
  });
});
