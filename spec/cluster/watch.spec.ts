// storage.watch() on a Redis Cluster (lib/backends/redis/cluster-subscribe.ts, notify.ts sharded):
// other storages' and processes' changes, never another workspace's, the channel on the
// workspace's own shard, a moved slot and a dropped connection, a tenant's channel rights, and
// the end of the iterator. Clients an app brings, and kvws: watch-clients.spec.ts.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createClient } from "@redis/client";
import { describe, expect, it } from "vitest";
import { keySlot } from "../../lib/backends/redis/cluster-watch.js";
import { keyspace, openStorage, provisionWorkspaceUser, revokeWorkspaceUser } from "../../lib/index.js";
import { ownerOf } from "../support/cluster.js";
import { randomRoot } from "../support/env.js";
import { useCluster } from "../support/use-cluster.js";
import { collect, expectDepsWatchRefused, RESET } from "../support/watch.js";

const run = promisify(execFile);
const writer = fileURLToPath(new URL("../fixtures/redis-writer.ts", import.meta.url));

describe("watch() on a 3-master Redis Cluster", () => {
  const cluster = useCluster();
  // Another seed node: its storages share no Publisher with the watcher's, so changes go through Redis.
  const otherSeed = () => cluster().masters[1]!.url;

  it("keeps a workspace's channel on the shard of its keys, subscribed there only", async () => {
    const root = randomRoot("clw");
    const channel = `${root}:ws:{a}#changes`;
    const slot = keySlot(channel);
    expect(slot).toBe(keySlot(`${root}:ws:{a}:artifacts:x`));
    expect(Number(await cluster().command(cluster().masters[0]!.port, ["CLUSTER", "KEYSLOT", channel]))).toBe(slot);
    const owner = await ownerOf(cluster(), slot);
    const watcher = await openStorage({ url: cluster().url, root, workspaceId: "a", cluster: true });
    try {
      const events = watcher.watch();
      expect(await collect(events, (got) => got.length === 1)).toEqual([RESET]);
      for (const master of cluster().masters) {
        const [, count] = (await cluster().command(master.port, ["PUBSUB", "SHARDNUMSUB", channel])) as unknown[];
        expect([master.port, Number(count)]).toEqual([master.port, master.port === owner ? 1 : 0]);
        // Nothing on the classic (cluster-wide) channel.
        const [, classic] = (await cluster().command(master.port, ["PUBSUB", "NUMSUB", channel])) as unknown[];
        expect(Number(classic)).toBe(0);
      }
      await events.return?.();
    } finally {
      await watcher.close();
    }
  });

  it("reports another storage's set, delete and clear with versions, and nothing of another workspace", async () => {
    const root = randomRoot("clw");
    const watcher = await openStorage({ url: cluster().url, root, workspaceId: "a", cluster: true });
    const other = await openStorage({ url: otherSeed(), root, workspaceId: "a", cluster: true });
    try {
      const events = watcher.watch();
      expect(await collect(events, (got) => got.length === 1)).toEqual([RESET]);
      await other.withWorkspace("b").artifacts.save("secret", 1);
      await other.withWorkspace("b").collection("notes").set("n", 1);
      const saved = await other.artifacts.save("plan", { step: 1 });
      await other.collection("notes").set("todo", "x");
      await other.artifacts.delete("plan");
      await other.collection("notes").clear();
      const got = await collect(events, (all) => all.some((e) => e.op === "clear"));
      expect(got).toEqual([
        { collection: "artifacts", name: "plan", op: "set", version: saved.version },
        { collection: "notes", name: "todo", op: "set" },
        { collection: "artifacts", name: "plan", op: "delete" },
        { collection: "notes", name: null, op: "clear" },
      ]);
      await events.return?.();
    } finally {
      await watcher.close();
      await other.close();
    }
  }, 30_000);

  it("reports another process's saves, in order per name, with the version stored last", async () => {
    const root = randomRoot("clw");
    const watcher = await openStorage({ url: cluster().url, root, workspaceId: "shared", cluster: true });
    try {
      const events = watcher.watch({ collections: ["artifacts"] });
      expect(await collect(events, (got) => got.length === 1)).toEqual([RESET]);
      const env = { ...process.env, KVWS_CLUSTER: "1" };
      const args = ["--import", "tsx", writer, otherSeed(), root];
      const child = run(process.execPath, [...args, "shared", "p", "6"], { timeout: 60_000, env });
      const elsewhere = run(process.execPath, [...args, "elsewhere", "x", "4"], { timeout: 60_000, env });
      // 6 names, half of them saved twice: 9 sets.
      const got = await collect(events, (all) => all.filter((e) => e.op === "set").length >= 9);
      await Promise.all([child, elsewhere]);
      expect(got.every((e) => e.collection === "artifacts" && e.name?.startsWith("p-"))).toBe(true);
      expect(got.map((e) => e.name)).toEqual(["p-0", "p-0", "p-1", "p-2", "p-2", "p-3", "p-4", "p-4", "p-5"]);
      const last = await watcher.artifacts.info("p-4");
      expect(got.filter((e) => e.name === "p-4").at(-1)?.version).toBe(last?.version);
      await events.return?.();
    } finally {
      await watcher.close();
    }
  }, 60_000);

  it("follows its workspace's slot to another master: a reset, a second once writers can know, then changes again", async () => {
    const root = randomRoot("clw");
    const channel = `${root}:ws:{moving}#changes`;
    const slot = keySlot(channel);
    const from = await ownerOf(cluster(), slot);
    const to = cluster().masters.find((m) => m.port !== from)!.port;
    const id = async (port: number) => String(await cluster().command(port, ["CLUSTER", "MYID"]));
    const [fromId, toId] = [await id(from), await id(to)];
    const watcher = await openStorage({ url: cluster().url, root, workspaceId: "moving", cluster: true });
    const other = await openStorage({ url: otherSeed(), root, workspaceId: "moving", cluster: true });
    try {
      const events = watcher.watch({ collections: ["artifacts"] });
      expect(await collect(events, (got) => got.length === 1)).toEqual([RESET]);
      const before = await other.artifacts.save("before", 1);
      expect(await collect(events, (got) => got.length === 1)).toEqual([
        { collection: "artifacts", name: "before", op: "set", version: before.version },
      ]);
      await cluster().command(to, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", fromId]);
      await cluster().command(from, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", toId]);
      for (;;) {
        const keys = (await cluster().command(from, ["CLUSTER", "GETKEYSINSLOT", String(slot), "100"])) as string[];
        if (keys.length === 0) break;
        await cluster().command(from, [
          "MIGRATE",
          "127.0.0.1",
          String(to),
          "",
          "0",
          "5000",
          "KEYS",
          ...keys.map(String),
        ]);
      }
      for (const master of cluster().masters) {
        await cluster().command(master.port, ["CLUSTER", "SETSLOT", String(slot), "NODE", toId]);
      }
      expect(await collect(events, (got) => got.length === 2)).toEqual([RESET, RESET]);
      const shard = async (port: number) =>
        Number(((await cluster().command(port, ["PUBSUB", "SHARDNUMSUB", channel])) as unknown[])[1]);
      expect([await shard(from), await shard(to)]).toEqual([0, 1]);
      const after = await other.artifacts.save("after", 2);
      expect(await collect(events, (got) => got.length === 1)).toEqual([
        { collection: "artifacts", name: "after", op: "set", version: after.version },
      ]);
      await events.return?.();
    } finally {
      await watcher.close();
      await other.close();
    }
  }, 30_000);

  it("gets a reset when its shard connection is dropped and back, then changes again", async () => {
    const root = randomRoot("clw");
    const channel = `${root}:ws:{a}#changes`;
    const owner = await ownerOf(cluster(), keySlot(channel));
    const watcher = await openStorage({ url: cluster().url, root, workspaceId: "a", cluster: true });
    const other = await openStorage({ url: otherSeed(), root, workspaceId: "a", cluster: true });
    try {
      const events = watcher.watch({ collections: ["artifacts"] });
      expect(await collect(events, (got) => got.length === 1)).toEqual([RESET]);
      // This private cluster's only subscriber on that master is the watcher.
      expect(Number(await cluster().command(owner, ["CLIENT", "KILL", "TYPE", "pubsub"]))).toBe(1);
      expect(await collect(events, (got) => got.length === 1)).toEqual([RESET]);
      const saved = await other.artifacts.save("after", 1);
      expect(await collect(events, (got) => got.length === 1)).toEqual([
        { collection: "artifacts", name: "after", op: "set", version: saved.version },
      ]);
      await events.return?.();
    } finally {
      await watcher.close();
      await other.close();
    }
  }, 20_000);

  it("reports the root's shared collections to an operator watching them (a channel with no hash tag)", async () => {
    const root = randomRoot("clw");
    const operator = await openStorage({ url: cluster().url, root, workspaceId: null, cluster: true });
    const other = await openStorage({ url: otherSeed(), root, workspaceId: "a", cluster: true });
    try {
      const events = operator.watch({ collections: ["deps"] });
      expect(await collect(events, (got) => got.length === 1)).toEqual([RESET]);
      await other.artifacts.save("not-shared", 1);
      await other.deps.add("lodash@^4.17.0");
      const [added] = await collect(events, (got) => got.length === 1);
      expect(added).toMatchObject({ collection: "deps", op: "set" });
      await events.return?.();
    } finally {
      await operator.close();
      await other.close();
    }
  });

  it("ends the iterator when its signal aborts or its storage closes", async () => {
    const root = randomRoot("clw");
    const watcher = await openStorage({ url: cluster().url, root, workspaceId: "a", cluster: true });
    const stop = new AbortController();
    const aborted = watcher.watch({ signal: stop.signal });
    const closed = watcher.watch();
    stop.abort();
    expect(await aborted.next()).toEqual({ value: undefined, done: true });
    const pending = closed.next();
    await watcher.close();
    expect(await pending).toEqual({ value: undefined, done: true });
    // Nobody left subscribed on any node.
    for (const master of cluster().masters) {
      const [, count] = (await cluster().command(master.port, [
        "PUBSUB",
        "SHARDNUMSUB",
        `${root}:ws:{a}#changes`,
      ])) as unknown[];
      expect(Number(count)).toBe(0);
    }
  });

  it("lets a workspace's ACL user watch its own workspace and refuses it another's channel", async () => {
    const root = randomRoot("clw");
    const ks = keyspace({ root, workspaceId: "a", hashTags: true });
    const user = await provisionWorkspaceUser(cluster().url, ks, { password: `pw${Date.now()}` });
    try {
      const tenant = await openStorage({ url: user.url, root, workspaceId: "a", cluster: true });
      const admin = await openStorage({ url: otherSeed(), root, workspaceId: "a", cluster: true });
      try {
        const events = tenant.watch();
        expect(await collect(events, (got) => got.length === 1)).toEqual([RESET]);
        await admin.withWorkspace("b").artifacts.save("secret", 1);
        const saved = await admin.artifacts.save("hello", 1);
        await tenant.artifacts.save("mine", 2); // a tenant's own write is published on its shard too
        // One heard through Redis, one in this process: their order across names is not promised.
        const got = await collect(events, (all) => all.length === 2);
        expect(got.sort((x, y) => String(x.name).localeCompare(String(y.name)))).toEqual([
          { collection: "artifacts", name: "hello", op: "set", version: saved.version },
          { collection: "artifacts", name: "mine", op: "set", version: expect.any(String) },
        ]);
        await events.return?.();
        await expectDepsWatchRefused(tenant);
      } finally {
        await tenant.close();
        await admin.close();
      }
      // On the very node that serves the other workspace's slot: refused by the ACL, not redirected.
      const mine = `${root}:ws:{a}#changes`;
      const theirs = `${root}:ws:{b}#changes`;
      type Raw = {
        sSubscribe(channel: string, listener: () => void): Promise<unknown>;
        sendCommand(args: string[]): Promise<unknown>;
      };
      const onNode = async (channel: string, body: (raw: Raw) => Promise<void>) => {
        const port = await ownerOf(cluster(), keySlot(channel));
        const url = new URL(user.url);
        url.port = String(port);
        const raw = createClient({ url: url.href });
        raw.on("error", () => {});
        await raw.connect();
        try {
          await body(raw as unknown as Raw);
        } finally {
          raw.destroy();
        }
      };
      await onNode(theirs, async (raw) => {
        await expect(raw.sSubscribe(theirs, () => {})).rejects.toThrow(/NOPERM/);
      });
      await onNode(theirs, async (raw) => {
        await expect(raw.sendCommand(["SPUBLISH", theirs, "x"])).rejects.toThrow(/NOPERM/);
        await expect(raw.sendCommand(["PUBLISH", theirs, "x"])).rejects.toThrow(/NOPERM/);
      });
      await onNode(mine, async (raw) => {
        expect(await raw.sendCommand(["SPUBLISH", mine, "{}"])).toBe(0);
      });
    } finally {
      await revokeWorkspaceUser(cluster().url, user.username);
    }
  }, 30_000);
});
