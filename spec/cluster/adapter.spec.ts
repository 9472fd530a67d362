import KeyvRedis, { createCluster } from "@keyv/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStorage, scopeStore } from "../../lib/index.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { randomRoot } from "../support/env.js";

// An app's own @keyv/redis over a cluster client: its sendCommand(firstKey, isReadonly, args) is routed by key.
describe("an app's @keyv/redis cluster adapter on a 3-master cluster", () => {
  const state: { cluster?: TestCluster; adapter?: KeyvRedis<unknown> } = {};
  beforeAll(async () => {
    state.cluster = await startCluster();
    const [host, port] = state.cluster.url.replace("redis://", "").split(":");
    // The adapter accepts a cluster client; its generic parameters differ from what its types name.
    state.adapter = new KeyvRedis(createCluster({ rootNodes: [{ url: `redis://${host}:${port}` }] }) as never);
  });
  afterAll(async () => {
    await state.adapter?.disconnect().catch(() => {});
    await state.cluster?.stop();
  });

  it("lists and clears exactly one workspace through createStorage with hash tags", async () => {
    const root = randomRoot("cla");
    const a = createStorage(state.adapter!, { root, workspaceId: "a", hashTags: true });
    const b = a.withWorkspace("b");
    for (let i = 0; i < 20; i++) await a.artifacts.save(`r${i}`, { i });
    await b.artifacts.save("r0", { other: true });
    await a.vectors.upsert("v", [1, 0]);
    expect((await a.artifacts.list()).map((x) => x.name)).toHaveLength(20);
    expect(await a.vectors.search([1, 0])).toEqual([{ id: "v", score: 1, metadata: {} }]);
    await a.collection("artifacts").clear();
    expect(await a.artifacts.list()).toEqual([]);
    expect(await b.artifacts.load("r0")).toEqual({ other: true });
    const scoped = scopeStore(state.adapter!, `${root}:ws:{c}:things`);
    await scoped.set("k", "v");
    expect(await scoped.get("k")).toBe("v");
  });
});
