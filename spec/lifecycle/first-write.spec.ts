import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DRIVER } from "../../lib/backends/driver.js";
import { redisDriver } from "../../lib/backends/redis/driver.js";
import { connectRedis } from "../../lib/backends/redis/open.js";
import type { RedisCommander } from "../../lib/backends/redis/tx.js";
import { createStorage, openStorage } from "../../lib/index.js";
import { keysUnder, REDIS_URL, rawRedis } from "../support/env.js";
import { redisRoots } from "../support/redis-roots.js";

const newRoot = redisRoots("first");
const LAYOUTS = ["keys", "hash"] as const;

/** A commander that records what is sent: each transaction as one list of commands, a plain command alone. */
function recording(inner: RedisCommander, failNext: { transactions: number }) {
  const sent: string[][][] = [];
  const commander: RedisCommander = {
    sendCommand: (args) => {
      sent.push([args]);
      return inner.sendCommand(args);
    },
    transaction: (commands) => {
      sent.push(commands.map((command) => [...command]));
      if (failNext.transactions > 0) {
        failNext.transactions--;
        return Promise.reject(new Error("connection lost"));
      }
      return (inner.transaction as NonNullable<RedisCommander["transaction"]>)(commands);
    },
  };
  return { commander, sent };
}

const nonStore = { get() {}, set() {}, delete() {}, clear() {} };

describe.each(LAYOUTS)("a workspace's first write on Redis (%s layout)", (layout) => {
  it("is one transaction that carries both registry entries, so its data is never stored unlisted", async () => {
    const root = newRoot();
    const connection = await connectRedis(REDIS_URL);
    const failNext = { transactions: 0 };
    const { commander, sent } = recording(connection.commander, failNext);
    try {
      const driver = redisDriver(async () => commander, { layout });
      const storage = createStorage({ ...nonStore, [DRIVER]: driver } as never, { root });
      const notes = storage.withWorkspace("a").collection("notes");
      await notes.set("k1", 1);
      const multis = sent.filter((unit) => unit.length > 1);
      expect(multis).toHaveLength(1);
      const keys = multis[0]!.map((command) => command[1]);
      // The root's registry and the workspace's collection registry, before the data: each one
      // index member (ZADD, or HSET into the hash layout's #data), no value key of its own.
      expect(multis[0]![0]).toEqual(["ZADD", `${root}#workspaces#index`, "0", "a"]);
      expect(keys).not.toContain(`${root}#workspaces:a`);
      expect(keys).not.toContain(`${root}:ws:a:#collections:notes`);
      expect(keys.join(" ")).toContain(`${root}:ws:a:#collections`);
      // At most one first-use check (one EXISTS, however many prefixes), then nothing but the write.
      expect(sent.filter((unit) => unit[0]![0] === "EXISTS").length).toBeLessThanOrEqual(1);
      sent.length = 0;
      await notes.set("k2", 2);
      expect(sent.flat().some((command) => command.some((arg) => String(arg).includes("#workspaces")))).toBe(false);
      expect(await storage.listWorkspaces()).toEqual(["a"]);
      expect(await storage.withWorkspace("a").stats()).toMatchObject({ notes: { entries: 2 } });
    } finally {
      await connection.close();
    }
  });

  it("lists and drops registry entries of the earlier form (member and value key) beside the new (member alone)", async () => {
    const root = newRoot();
    const storage = await openStorage({ url: REDIS_URL, root, redisLayout: layout });
    const raw = await rawRedis();
    try {
      await storage.withWorkspace("fresh").collection("notes").set("k", 1);
      expect(await raw.exists(`${root}#workspaces:fresh`)).toBe(0);
      // What a first write of 0.9 left: the member and a value key "1".
      await raw.zAdd(`${root}#workspaces#index`, { score: 0, value: "older" });
      await raw.set(`${root}#workspaces:older`, "1");
      await storage.withWorkspace("older").collection("notes").set("k", 2);
      expect(await storage.listWorkspaces()).toEqual(["fresh", "older"]);
      await storage.withWorkspace("older").dropWorkspace();
      await storage.withWorkspace("fresh").dropWorkspace();
      expect(await storage.listWorkspaces()).toEqual([]);
      expect(await keysUnder(raw, `${root}#workspaces`)).toEqual([]);
    } finally {
      await raw.quit();
      await storage.close();
    }
  });

  it("registers again on the next write when the first one failed", async () => {
    const root = newRoot();
    const connection = await connectRedis(REDIS_URL);
    const failNext = { transactions: 1 };
    const { commander } = recording(connection.commander, failNext);
    try {
      const driver = redisDriver(async () => commander, { layout });
      const storage = createStorage({ ...nonStore, [DRIVER]: driver } as never, { root });
      const notes = storage.withWorkspace("b").collection("notes");
      await expect(notes.set("k", 1)).rejects.toThrow();
      expect(await storage.listWorkspaces()).toEqual([]);
      await notes.set("k", 2);
      expect(await storage.listWorkspaces()).toEqual(["b"]);
      expect(Object.keys(await storage.withWorkspace("b").stats())).toEqual(["notes"]);
    } finally {
      await connection.close();
    }
  });

  it("lists every workspace that holds data after the writer is killed mid-stream", async () => {
    const root = newRoot();
    const fixture = fileURLToPath(new URL("../fixtures/first-writes.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", fixture, REDIS_URL, root, layout], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const [chunk] = (await once(child.stdout, "data")) as [Buffer];
    expect(String(chunk)).toContain("writing");
    await new Promise((resolve) => setTimeout(resolve, 150));
    child.kill("SIGKILL");
    await once(child, "exit");
    const raw = await rawRedis();
    const storage = await openStorage({ url: REDIS_URL, root, redisLayout: layout });
    try {
      const holding = new Set<string>();
      const data = layout === "hash" ? /^.+:ws:([^:]+):notes#data$/ : /^.+:ws:([^:]+):notes:k$/;
      for (const key of await keysUnder(raw, `${root}:ws:`)) {
        const id = data.exec(key)?.[1];
        if (id !== undefined) holding.add(id);
      }
      expect(holding.size).toBeGreaterThan(10);
      const listed = new Set(await storage.listWorkspaces());
      expect([...holding].filter((id) => !listed.has(id))).toEqual([]);
      // And nothing is listed whose collection is not registered with it (one MULTI: all or nothing).
      for (const id of [...listed].slice(0, 20)) {
        expect(Object.keys(await storage.withWorkspace(id).stats())).toEqual(["notes"]);
      }
    } finally {
      await storage.close();
      await raw.quit();
    }
  });
});
