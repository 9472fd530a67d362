import { Readable, Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keySlot } from "../../lib/backends/redis/cluster-watch.js";
import { main } from "../../lib/cli/main.js";
import { ConnectionError, KeyvWorkspacesError, openStorage, type WorkspaceStorage } from "../../lib/index.js";
import { ownerOf, startCluster, type TestCluster } from "../support/cluster.js";
import { randomRoot } from "../support/env.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("storage on a 3-master Redis Cluster", () => {
  const state: { cluster?: TestCluster; storage?: WorkspaceStorage } = {};
  const root = randomRoot("cl");
  const cluster = () => state.cluster as TestCluster;
  const storage = () => state.storage as WorkspaceStorage;
  beforeAll(async () => {
    state.cluster = await startCluster();
    state.storage = await openStorage(
      { url: state.cluster.url, root, workspaceId: "a", cluster: true },
      { commandTimeoutMs: 1500, connectTimeoutMs: 1000 },
    );
  });
  afterAll(async () => {
    await state.storage?.close();
    await state.cluster?.stop();
  });
  const slotOf = async (key: string) =>
    Number(await cluster().command(cluster().masters[0]!.port, ["CLUSTER", "KEYSLOT", key]));
  const keysOn = async (port: number) =>
    ((await cluster().command(port, ["KEYS", `${root}*`])) as string[]).map(String);

  it("runs every collection, isolated per workspace, and writes a bootstrap config that reopens it", async () => {
    const a = storage();
    const b = a.withWorkspace("b");
    await a.artifacts.save("report", { from: "a" });
    await b.artifacts.save("report", { from: "b" });
    await a.collection("notes").set("n", "a-note", 60_000);
    await a.vectors.upsert("v", [1, 0]);
    await a.workflows.add({ name: "summarise", source: "print(1)", description: "summarise a report" });
    await a.deps.add("lodash@^4.17.0");
    expect(await a.artifacts.load("report")).toEqual({ from: "a" });
    expect(await b.artifacts.load("report")).toEqual({ from: "b" });
    expect(await b.collection("notes").get("n")).toBeUndefined();
    expect(await a.vectors.count()).toBe(1);
    expect(await b.vectors.count()).toBe(0);
    expect((await a.workflows.search("summarise a report")).map((w) => w.name)).toEqual(["summarise"]);
    expect(await b.workflows.list()).toEqual([]);
    expect(await b.deps.list()).toEqual(["lodash@^4.17.0"]);
    await a.collection("notes").clear();
    expect(await a.collection("notes").get("n")).toBeUndefined();

    const config = a.toBootstrapConfig();
    expect(config).toMatchObject({ cluster: true, hashTags: true, workspaceId: "a" });
    const other = await openStorage(config);
    try {
      expect(await other.artifacts.load("report")).toEqual({ from: "a" });
      expect(other.keyspace.prefix("artifacts")).toBe(`${root}:ws:{a}:artifacts`);
    } finally {
      await other.close();
    }
  });

  it("spreads 200 workspaces over all three masters, each workspace in one slot", async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `tenant_${i}`);
    for (let i = 0; i < ids.length; i += 50) {
      await Promise.all(
        ids.slice(i, i + 50).map(async (id) => {
          const ws = storage().withWorkspace(id);
          await ws.artifacts.save("doc", { id });
          await ws.vectors.upsert("v", [1, 2]);
        }),
      );
    }
    const owners = new Map<string, Set<number>>();
    const slots = new Map<string, Set<number>>();
    for (const master of cluster().masters) {
      const keys = (await keysOn(master.port)).filter((key) => key.includes(":ws:{tenant_"));
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) {
        const id = /:ws:\{([^}]+)\}:/.exec(key)?.[1] as string;
        if (!owners.has(id)) owners.set(id, new Set());
        owners.get(id)!.add(master.port);
        if (!slots.has(id)) slots.set(id, new Set());
        slots.get(id)!.add(await slotOf(key));
      }
    }
    expect(owners.size).toBe(200);
    for (const id of ids) {
      expect(owners.get(id)?.size, id).toBe(1);
      expect(slots.get(id)?.size, id).toBe(1);
    }
    const perMaster = cluster().masters.map((m) => [...owners.values()].filter((s) => s.has(m.port)).length);
    expect(perMaster.every((count) => count > 0)).toBe(true);
  });

  it("lists, measures, exports and drops workspaces across the masters, without SCAN of the data", async () => {
    const base = storage().withWorkspace("life0");
    const ids = Array.from({ length: 30 }, (_, i) => `life${i}`);
    for (const id of ids) await base.withWorkspace(id).artifacts.save("a", { id });
    await base.withWorkspace("life3").vectors.upsert("v", [1, 0]);
    const listed = await base.listWorkspaces();
    for (const id of ids) expect(listed).toContain(id);
    expect((await base.withWorkspace("life3").stats()).artifacts?.entries).toBe(1);
    const records = [];
    for await (const record of base.withWorkspace("life3").exportWorkspace()) records.push(record);
    expect(records.map((r) => r.collection).sort()).toEqual(["artifacts", "vectors"]);
    expect(await base.withWorkspace("life3").dropWorkspace()).toBe(2);
    for (const master of cluster().masters) {
      expect((await keysOn(master.port)).filter((key) => key.startsWith(`${root}:ws:{life3}:`))).toEqual([]);
    }
    expect(await base.listWorkspaces()).not.toContain("life3");
    expect(await base.withWorkspace("life4").artifacts.load("a")).toEqual({ id: "life4" });
    expect(await base.withWorkspace("life3").importWorkspace(records)).toBe(2);
    expect(await base.withWorkspace("life3").vectors.search([1, 0])).toEqual([{ id: "v", score: 1, metadata: {} }]);
  });

  it("kvws --cluster lists the workspaces of a cluster from its seed", async () => {
    await storage().withWorkspace("cli").artifacts.save("a", 1);
    const out: string[] = [];
    const err: string[] = [];
    const sink = (into: string[]) =>
      new Writable({ write: (chunk, _enc, done) => done(void into.push(String(chunk))) });
    const io = { stdin: Readable.from([]), stdout: sink(out), stderr: sink(err), env: {} };
    expect(await main(["--cluster", "--url", cluster().url, "--root", root, "ls"], io)).toBe(0);
    expect(out.join("").split("\n")).toContain("cli");
    expect(await main(["--url", cluster().url, "--root", root, "ls"], { ...io, env: { KVWS_CLUSTER: "maybe" } })).toBe(
      1,
    );
    expect(err.join("")).toMatch(/^ERR_INVALID_CONFIG: KVWS_CLUSTER must be true or false/);
  });

  it("computes each key's slot as the cluster does, so WATCH runs on the slot's master", async () => {
    const keys = [`${root}:ws:{a}:artifacts#data`, "plain", "{}", "a{b}c", "x{}{y}", "ü{ws}", "{{a}}"];
    for (const key of keys) expect(keySlot(key), key).toBe(await slotOf(key));
  });

  it("lets exactly one of many racing conditional saves win, and versions stay readable from another storage", async () => {
    const a = storage();
    const other = await openStorage(a.toBootstrapConfig());
    try {
      const first = await a.artifacts.save("plan", { steps: [] });
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) =>
          (i % 2 ? other : a).artifacts.save("plan", { steps: [i] }, { ifVersion: first.version }),
        ),
      );
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of results) if (r.status === "rejected") expect(r.reason).toMatchObject({ code: "ERR_CONFLICT" });
      const winner = (results.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<{ version: string }>)
        .value;
      expect((await other.artifacts.info("plan"))?.version).toBe(winner.version);
      await expect(a.artifacts.save("plan", 1, { ifVersion: null })).rejects.toMatchObject({ code: "ERR_CONFLICT" });
    } finally {
      await other.close();
    }
  });

  it("loses no acknowledged write while the workspace's slot migrates", async () => {
    const ws = storage().withWorkspace("moving");
    const notes = ws.collection("notes");
    await notes.set("before", "x");
    const slot = await slotOf(`${root}:ws:{moving}:notes`);
    const from = await ownerOf(cluster(), slot);
    const to = cluster().masters.find((m) => m.port !== from)!.port;
    const id = async (port: number) => String(await cluster().command(port, ["CLUSTER", "MYID"]));
    const [fromId, toId] = [await id(from), await id(to)];

    const acked = new Map<string, number>();
    let writing = true;
    const failures: unknown[] = [];
    const writer = async (w: number) => {
      for (let i = 0; writing; i++) {
        try {
          await notes.set(`w${w}-${i}`, i);
          acked.set(`w${w}-${i}`, i);
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const writers = [writer(0), writer(1), writer(2)];
    await sleep(50);
    await cluster().command(to, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", fromId]);
    await cluster().command(from, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", toId]);
    for (;;) {
      const keys = (await cluster().command(from, ["CLUSTER", "GETKEYSINSLOT", String(slot), "2"])) as string[];
      if (keys.length === 0) break;
      await cluster().command(from, ["MIGRATE", "127.0.0.1", String(to), "", "0", "5000", "KEYS", ...keys.map(String)]);
      await sleep(5); // let writes land mid-migration: some keys moved, some not
    }
    for (const master of cluster().masters) {
      await cluster().command(master.port, ["CLUSTER", "SETSLOT", String(slot), "NODE", toId]);
    }
    await sleep(100);
    writing = false;
    await Promise.all(writers);

    // A write the cluster kept refusing (TRYAGAIN) past commandTimeoutMs — on a loaded machine the
    // migration can take that long — fails typed and was not applied; nothing else may fail.
    for (const failure of failures) {
      expect(failure).toMatchObject({ code: "ERR_CONNECTION", cause: { message: expect.stringMatching(/^TRYAGAIN/) } });
    }
    expect(acked.size).toBeGreaterThan(10);
    expect(await ownerOf(cluster(), slot)).toBe(to);
    expect(await notes.get("before")).toBe("x");
    for (const [name, value] of acked) expect(await notes.get(name), name).toBe(value);
    const listed = new Set<string>();
    for await (const [name] of notes.iterator!(undefined)) listed.add(String(name));
    expect(listed.size).toBe(acked.size + 1);
  });

  it("gives typed errors while a master is down, and recovers once it is back", async () => {
    const ws = storage().withWorkspace("fragile");
    const notes = ws.collection("notes");
    await notes.set("kept", "durable");
    const port = await ownerOf(cluster(), await slotOf(`${root}:ws:{fragile}:notes`));
    const master = cluster().masters.find((m) => m.port === port)!;
    await master.kill();
    try {
      const started = Date.now();
      const error = await ws.artifacts.save("while-down", 1).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyvWorkspacesError);
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as ConnectionError).code).toBe("ERR_CONNECTION");
      expect(Date.now() - started).toBeLessThan(5000);
      const read = await ws.artifacts.load("kept").catch((e: unknown) => e);
      expect(read).toBeInstanceOf(ConnectionError);
    } finally {
      await master.start();
    }
    await cluster().ready();
    let value: unknown;
    for (let i = 0; i < 100; i++) {
      value = await notes.get("kept").catch(() => undefined);
      if (value !== undefined) break;
      await sleep(100);
    }
    expect(value).toBe("durable");
    await notes.set("after", "ok");
    expect(await notes.get("after")).toBe("ok");
  });

  it("rejects an unreachable seed with ConnectionError, in bounded time", async () => {
    const started = Date.now();
    const error = await openStorage(
      { url: "redis://127.0.0.1:1", root, workspaceId: "a", cluster: true },
      { connectTimeoutMs: 500 },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
