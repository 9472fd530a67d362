import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  keyspace,
  openStorage,
  PermissionDeniedError,
  provisionWorkspaceUser,
  redisAcl,
  revokeWorkspaceUser,
} from "../../lib/index.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { randomRoot } from "../support/env.js";

describe("workspace ACL users on a Redis Cluster", () => {
  const state: { cluster?: TestCluster } = {};
  const root = randomRoot("clacl");
  beforeAll(async () => {
    state.cluster = await startCluster();
  });
  afterAll(async () => {
    await state.cluster?.stop();
  });

  it("uses the tagged pattern, and lets the user connect as a cluster client", () => {
    const rules = redisAcl(keyspace({ root: "app", workspaceId: "a", hashTags: true }));
    expect(rules.filter((rule) => rule.includes("~"))).toEqual([
      "~app:ws:{a}:*",
      // The registry is one tag: its own entry and the index, write-only.
      "%W~{app#workspaces}:a",
      "%W~{app#workspaces}#index",
      "%W~{app#workspaces}#ttl",
      // Its quota's limit, read-only, in the workspace's slot (one MULTI checks it and writes).
      "%R~app#quota:{a}",
      "%R~app:{deps}:*",
      "%R~app:{deps}#*",
    ]);
    for (const command of ["+cluster|slots", "+cluster|shards", "+readonly", "+asking"])
      expect(rules).toContain(command);
  });

  it("exists on every master, works in its own workspace only, and is revoked everywhere", async () => {
    const cluster = state.cluster as TestCluster;
    const admin = await openStorage({ url: cluster.url, root, workspaceId: "b", cluster: true });
    const ks = keyspace({ root, workspaceId: "a", hashTags: true });
    try {
      await admin.artifacts.save("b-secret", 1);
      await admin.deps.add("lodash@^4.17.0");
      const { username, url } = await provisionWorkspaceUser(cluster.url, ks, { password: "pw-a" });
      for (const master of cluster.masters) {
        expect(await cluster.command(master.port, ["ACL", "GETUSER", username])).not.toBeNull();
      }
      const user = await openStorage({ url, root, workspaceId: "a", cluster: true }, { commandTimeoutMs: 2000 });
      try {
        await user.artifacts.save("report", { ok: true });
        await user.collection("notes").set("n", "x", 60_000);
        await user.vectors.upsert("v", [1, 0]);
        await user.workflows.add({ name: "w", source: "s", description: "a workflow" });
        expect(await user.artifacts.load("report")).toEqual({ ok: true });
        expect((await user.workflows.search("a workflow")).map((w) => w.name)).toEqual(["w"]);
        expect(await user.deps.list()).toEqual(["lodash@^4.17.0"]);
        await expect(user.withWorkspace("b").artifacts.load("b-secret")).rejects.toBeInstanceOf(PermissionDeniedError);
        await expect(user.deps.add("evil@1")).rejects.toBeInstanceOf(PermissionDeniedError);
      } finally {
        await user.close();
      }
      expect(await revokeWorkspaceUser(cluster.url, username)).toBe(true);
      for (const master of cluster.masters) {
        expect(await cluster.command(master.port, ["ACL", "GETUSER", username])).toBeNull();
      }
    } finally {
      await admin.close();
    }
  });
});
