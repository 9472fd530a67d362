// storage.watch() on Redis (lib/backends/redis/notify.ts, watch.ts): other processes' writes, the
// settle reset, what an unwatched writer sends, and a tenant's channel permissions.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createClient } from "@redis/client";
import { describe, expect, it } from "vitest";
import { redisDriver } from "../../lib/backends/redis/driver.js";
import { Publisher, WATCH_RECHECK_MS } from "../../lib/backends/redis/notify.js";
import { connectRedis } from "../../lib/backends/redis/open.js";
import type { RedisCommander } from "../../lib/backends/redis/tx.js";
import { keyspace, openStorage, provisionWorkspaceUser, revokeWorkspaceUser } from "../../lib/index.js";
import { REDIS_URL } from "../support/env.js";
import { redisRoots } from "../support/redis-roots.js";
import { collect, expectDepsWatchRefused } from "../support/watch.js";

const run = promisify(execFile);
const writer = fileURLToPath(new URL("../fixtures/redis-writer.ts", import.meta.url));
const newRoot = redisRoots("rwatch");

describe.each(["keys", "hash"] as const)("watch() on Redis, %s layout", (redisLayout) => {
  it("reports every save another process makes after the settle reset, with versions, and nothing of other workspaces", async () => {
    const root = newRoot();
    const watcher = await openStorage({ url: REDIS_URL, root, workspaceId: "shared", redisLayout });
    try {
      const events = watcher.watch({ collections: ["artifacts"] });
      const started = Date.now();
      const [reset] = await collect(events, (got) => got.length === 1);
      expect(reset).toEqual({ collection: "*", name: null, op: "reset" });
      expect(Date.now() - started).toBeGreaterThanOrEqual(WATCH_RECHECK_MS);
      const env = { ...process.env, KVWS_REDIS_LAYOUT: redisLayout };
      const child = run(process.execPath, ["--import", "tsx", writer, REDIS_URL, root, "shared", "p", "20"], {
        timeout: 60_000,
        env,
      });
      const other = run(process.execPath, ["--import", "tsx", writer, REDIS_URL, root, "elsewhere", "x", "5"], {
        timeout: 60_000,
      });
      // 20 names, half of them saved twice: 30 sets.
      const got = await collect(events, (all) => all.filter((e) => e.op === "set").length >= 30);
      await Promise.all([child, other]);
      expect(got.every((e) => e.collection === "artifacts" && e.name?.startsWith("p-"))).toBe(true);
      expect(new Set(got.map((e) => e.name)).size).toBe(20);
      const last = await watcher.artifacts.info("p-19");
      expect(got.filter((e) => e.name === "p-19").at(-1)?.version).toBe(last?.version);
      await events.return?.();
    } finally {
      await watcher.close();
    }
  }, 60_000);
});

describe("a Redis writer nobody watches", () => {
  it("asks for listeners at most once a second and publishes nothing", async () => {
    const connection = await connectRedis(REDIS_URL);
    try {
      const sent: string[] = [];
      const commander: RedisCommander = {
        ...connection.commander,
        sendCommand: (args) => {
          sent.push(String(args[0]));
          return connection.commander.sendCommand(args);
        },
      };
      const prefix = `${newRoot()}:ws:w:notes`;
      const store = redisDriver(async () => commander, { publisher: new Publisher() }).scope(prefix);
      for (let i = 0; i < 50; i++) await store.set(`k${i}`, "v");
      for (let i = 0; i < 50; i++) await store.set(`k${i}`, "w");
      expect(sent.filter((c) => c === "PUBSUB")).toHaveLength(1);
      expect(sent).not.toContain("PUBLISH");
      // Besides the once-per-prefix layout check (driver.ts), the writes went as MULTIs, or as the
      // overwrite probe (SET XX: strings.ts).
      expect(sent.filter((c) => c !== "PUBSUB" && c !== "SET")).toEqual(["EXISTS"]);
    } finally {
      await connection.close();
    }
  });
});

describe("a workspace ACL user's change feed", () => {
  it("may listen to its own workspace's channel only", async () => {
    const root = newRoot();
    const ks = keyspace({ root, workspaceId: "a" });
    const user = await provisionWorkspaceUser(REDIS_URL, ks, { password: `pw${Date.now()}` });
    try {
      const tenant = await openStorage({ url: user.url, root, workspaceId: "a" });
      const admin = await openStorage({ url: REDIS_URL, root, workspaceId: "a" });
      try {
        const events = tenant.watch();
        await collect(events, (got) => got.length === 1); // the settle reset: subscribed by now
        await admin.artifacts.save("hello", 1);
        const [saved] = await collect(events, (got) => got.length === 1);
        expect(saved).toMatchObject({ collection: "artifacts", name: "hello", op: "set" });
        await events.return?.();
        // The root's channel (deps) is not the tenant's: told once, and a reset, never silence.
        await expectDepsWatchRefused(tenant);
      } finally {
        await tenant.close();
        await admin.close();
      }
      const raw = createClient({ url: user.url });
      raw.on("error", () => {});
      await raw.connect();
      try {
        await expect(raw.subscribe(`${root}:ws:b#changes`, () => {})).rejects.toThrow(/NOPERM/);
        await expect(raw.sendCommand(["PUBLISH", `${root}#changes`, "x"])).rejects.toThrow(/NOPERM/);
        expect(await raw.sendCommand(["PUBLISH", `${root}:ws:a#changes`, "{}"])).toBe(0);
      } finally {
        raw.destroy();
      }
    } finally {
      await revokeWorkspaceUser(REDIS_URL, user.username);
    }
  });
});
