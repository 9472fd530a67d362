/**
 * Server states that only a private redis-server may be put in: memory full, read-only
 * replica, a script hogging the server. Each test starts its own on a loopback port.
 */
import { createClient } from "@redis/client";
import { afterEach, describe, expect, it } from "vitest";
import type { PrefixStore } from "../../lib/backends/driver.js";
import { redisDriver } from "../../lib/backends/redis/driver.js";
import { connectRedis, type RedisConnection } from "../../lib/backends/redis/open.js";
import { listNames } from "../support/prefix-store.js";
import { freePort, startPrivateRedis } from "../support/servers.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function open(url: string, commandTimeoutMs = 5000): Promise<RedisConnection> {
  const connection = await connectRedis(url, { connectTimeoutMs: 2000, commandTimeoutMs });
  cleanups.push(() => connection.close());
  return connection;
}

const store = (connection: RedisConnection, prefix: string): PrefixStore =>
  redisDriver(async () => connection.commander).scope(prefix);

type Admin = Awaited<ReturnType<typeof startPrivateRedis>>["admin"];

async function usedMemory(admin: Admin): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(String(await admin.info("memory")))?.[1]);
}

describe("redis at maxmemory with noeviction", () => {
  it("refuses writes with ERR_STORAGE_FULL, while deletes and clears work and free memory", async () => {
    const { server, admin } = await startPrivateRedis(cleanups, [
      "--maxmemory",
      "4mb",
      "--maxmemory-policy",
      "noeviction",
    ]);
    const connection = await open(server.url);
    const files = store(connection, "app:ws:a:artifacts");
    const vectors = store(connection, "app:ws:a:vectors");
    await vectors.setMany(Array.from({ length: 20 }, (_, i) => ({ name: `v${i}`, value: "x".repeat(20_000) })));
    const big = "y".repeat(50_000);
    let full: unknown;
    for (let i = 0; i < 400 && full === undefined; i++) {
      await files.set(`f${i}`, big).catch((error: unknown) => {
        full = error;
      });
    }
    expect(full).toMatchObject({ code: "ERR_STORAGE_FULL" });
    expect(String((full as { cause: Error }).cause?.message)).toMatch(/^OOM/);
    await expect(vectors.set("more", big)).rejects.toMatchObject({ code: "ERR_STORAGE_FULL" });

    // A tracked delete whose log entry is refused (XADD at OOM) still deletes, and readers reload.
    const before = await vectors.version!();
    expect(await vectors.delete("v0")).toBe(true);
    expect(await vectors.has("v0")).toBe(false);
    expect(await vectors.version!()).not.toBe(before);
    // Whether Redis refused the MULTI depends on how far over the limit it still is (the refused
    // write's buffers are freed meanwhile); either way a reader holding `before` learns of v0.
    expect([undefined, ["v0"]]).toContainEqual(await vectors.changedSince!(before));
    expect(await vectors.deleteMany(["v1", "v2"])).toBe(2);
    await vectors.clear();
    expect(await listNames(vectors)).toEqual([]);

    const atLimit = await usedMemory(admin);
    expect(await files.delete("f0")).toBe(true);
    await files.clear();
    expect(await usedMemory(admin)).toBeLessThan(atLimit - 1_000_000);
    expect(await admin.keys("*")).toEqual([]);
    await files.set("again", "fits");
    expect(await files.get("again")).toBe("fits");
  });
});

describe("redis hash layout at maxmemory", () => {
  it("clears a collection though Redis refuses every MULTI", async () => {
    const { server, admin } = await startPrivateRedis(cleanups, ["--maxmemory-policy", "noeviction"]);
    const connection = await open(server.url);
    const files = redisDriver(async () => connection.commander, { layout: "hash" }).scope("app:ws:a:artifacts");
    await files.setMany(
      Array.from({ length: 40 }, (_, i) => ({ name: `f${i}`, value: "y".repeat(50_000), ttl: 60_000 })),
    );
    // Over the limit from here on, whatever gets freed meanwhile: Redis refuses whatever a MULTI queues.
    await admin.sendCommand(["CONFIG", "SET", "maxmemory", String(Math.floor((await usedMemory(admin)) / 2))]);
    await expect(files.set("more", "z")).rejects.toMatchObject({ code: "ERR_STORAGE_FULL" });
    await files.clear();
    expect(await listNames(files)).toEqual([]);
    expect(await admin.keys("*")).toEqual([]);
  });
});

describe("redis replica (read-only)", () => {
  it("refuses writes with ERR_READ_ONLY and still serves reads", async () => {
    const { server, admin } = await startPrivateRedis(cleanups, []);
    const connection = await open(server.url);
    const files = store(connection, "app:ws:a:artifacts");
    await files.set("kept", "v");
    // A replica of a master that is not there: it keeps its data and refuses writes.
    await admin.sendCommand(["REPLICAOF", "127.0.0.1", String(await freePort())]);
    const error = await files.set("x", "v").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ERR_READ_ONLY" });
    expect(String((error as { cause: Error }).cause?.message)).toMatch(/^READONLY/);
    await expect(files.delete("kept")).rejects.toMatchObject({ code: "ERR_READ_ONLY" });
    expect(await files.get("kept")).toBe("v");
    expect(await listNames(files)).toEqual(["kept"]);
    await admin.sendCommand(["REPLICAOF", "NO", "ONE"]);
  });
});

describe("redis busy with a script", () => {
  const hog = async (admin: Admin) => {
    // Another client's runaway script; the server answers BUSY to everyone else until it is killed.
    const running = admin.sendCommand(["EVAL", "local i = 0 while true do i = i + 1 end", "0"]);
    running.catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 150));
  };
  const kill = async (url: string) => {
    const killer = createClient({ url });
    killer.on("error", () => {});
    await killer.connect();
    await killer.sendCommand(["SCRIPT", "KILL"]);
    killer.destroy();
  };

  it("retries BUSY within commandTimeoutMs and succeeds once the server serves again", async () => {
    const { server, admin } = await startPrivateRedis(cleanups, ["--busy-reply-threshold", "50"]);
    const connection = await open(server.url, 5000);
    const files = store(connection, "app:ws:a:artifacts");
    await hog(admin);
    const writing = files.set("x", "v");
    setTimeout(() => void kill(server.url), 400);
    await writing;
    expect(await files.get("x")).toBe("v");
  });

  it("gives up with ERR_CONNECTION, the BUSY reply as cause, once commandTimeoutMs is spent", async () => {
    const { server, admin } = await startPrivateRedis(cleanups, ["--busy-reply-threshold", "50"]);
    const connection = await open(server.url, 600);
    const files = store(connection, "app:ws:a:artifacts");
    await hog(admin);
    const started = Date.now();
    const error = await files.get("x").catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error).toMatchObject({ code: "ERR_CONNECTION" });
    expect(String((error as { cause: Error }).cause?.message)).toMatch(/^BUSY/);
    await kill(server.url);
  });
});
