import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  InvalidArgumentError,
  migrateLayout,
  openStorage,
  rebuildIndex,
  rebuildIndexes,
  type WorkspaceStorage,
} from "../../lib/index.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { randomRoot, tempDir } from "../support/env.js";
import { freePort, PrivateRedis } from "../support/servers.js";

const run = promisify(execFile);
const kvwsBin = fileURLToPath(new URL("../../dist/cli/kvws.js", import.meta.url));

/** What the test wrote, read back through a storage of workspace "a" (and its views). */
async function snapshot(a: WorkspaceStorage) {
  const legacy = a.withWorkspace(null);
  const names = async (s: WorkspaceStorage) => (await s.artifacts.list()).map((i) => i.name);
  const notes: string[] = [];
  for await (const [name] of a.collection("notes").iterator!(undefined)) notes.push(String(name));
  return {
    report: await a.artifacts.load("report"),
    artifacts: await names(a),
    b: await a.withWorkspace("b").artifacts.load("report"),
    legacy: await names(legacy),
    notes: notes.sort(),
    note: await a.collection("notes").get("n1"),
    vectors: await a.vectors.ids(),
    search: (await a.workflows.search("summarise a report")).map((w) => w.name),
    deps: await a.deps.list(),
  };
}

describe("moving a deployment to a cluster: migrateLayout, then redis-cli --cluster import", () => {
  const state: { cluster?: TestCluster; source?: PrivateRedis } = {};
  const dir = tempDir();
  const root = randomRoot("mig");
  beforeAll(async () => {
    state.cluster = await startCluster();
    state.source = new PrivateRedis(await freePort(), dir.path, ["--appendonly", "no"]);
    await state.source.start();
  });
  afterAll(async () => {
    await state.source?.kill();
    await state.cluster?.stop();
    dir.remove();
  });

  it("re-keys atomically per prefix, keeps every entry, and the imported data works on the cluster", async () => {
    const source = state.source as PrivateRedis;
    const cluster = state.cluster as TestCluster;
    const old = await openStorage({ url: source.url, root, workspaceId: "a" });
    await old.artifacts.save("report", { from: "a" });
    await old.artifacts.save("blob", Buffer.from([1, 2, 3]));
    await old.withWorkspace("b").artifacts.save("report", { from: "b" });
    await old.withWorkspace(null).artifacts.save("legacy", 1);
    await old.collection("notes").set("n1", "one", 600_000);
    await old.collection("notes").set("n2", "two");
    await old.vectors.upsert("v", [1, 0]);
    await old.workflows.add({ name: "summarise", source: "print(1)", description: "summarise a report" });
    await old.deps.add("lodash@^4.17.0");
    const before = await snapshot(old);
    await old.close();

    const dry = await migrateLayout(source.url, { root, collections: ["notes"], dryRun: true });
    expect(dry.moved).toBeGreaterThan(10);
    expect(dry.rebuilt).toEqual([]);
    const keys = async () => ((await cluster.command(source.port, ["KEYS", "*"])) as string[]).map(String);
    expect((await keys()).some((key) => key.includes("{"))).toBe(false);

    const report = await migrateLayout(source.url, { root, collections: ["notes"] });
    expect(report.moved).toBe(dry.moved);
    expect(report.conflicts).toEqual([]);
    const after = await keys();
    expect(after.length).toBe(dry.moved);
    // Data under a tagged workspace or collection; the lifecycle registries each one tag of their own.
    for (const key of after)
      expect(key, key).toMatch(/^([^:{]+:(ws:\{[^}]+\}:|\{[a-z]+\})|\{[^}]+#(workspaces|collections)\})/);

    const tagged = await openStorage({ url: source.url, root, workspaceId: "a", hashTags: true });
    expect(await snapshot(tagged)).toEqual(before);
    await tagged.close();

    await run(
      "redis-cli",
      [
        "--cluster",
        "import",
        `127.0.0.1:${cluster.masters[0]!.port}`,
        "--cluster-from",
        `127.0.0.1:${source.port}`,
        "--cluster-copy",
      ],
      { timeout: 20_000 },
    );
    const moved = await openStorage({ url: cluster.url, root, workspaceId: "a", cluster: true });
    try {
      expect(await snapshot(moved)).toEqual(before);

      // rebuild-index per master: an index lost on the cluster comes back from the keys.
      const index = `${root}:ws:{a}:notes#index`;
      await moved.collection("notes").set("n3", "three");
      const { createCluster } = await import("@redis/client");
      const raw = createCluster({ rootNodes: [{ url: cluster.url }] });
      raw.on("error", () => {});
      await raw.connect();
      await raw.del(index);
      const listed = async () => {
        const names: string[] = [];
        for await (const [name] of moved.collection("notes").iterator!(undefined)) names.push(String(name));
        return names.sort();
      };
      expect(await listed()).toEqual([]);
      const reports = await rebuildIndexes(
        cluster.url,
        { root, allWorkspaces: true, collections: ["artifacts", "workflows", "vectors", "deps", "notes"] },
        { cluster: true },
      );
      expect(reports.find((r) => r.prefix === `${root}:ws:{a}:notes`)?.added).toBe(3);
      expect(await listed()).toEqual(["n1", "n2", "n3"]);

      // One prefix: found on whichever master holds it.
      await raw.del(index);
      expect(await listed()).toEqual([]);
      const one = await rebuildIndex(cluster.url, `${root}:ws:{a}:notes`, { cluster: true });
      expect(one.added).toBe(3);
      expect(await listed()).toEqual(["n1", "n2", "n3"]);

      // The same through kvws: --cluster walks every master with the hash-tag layout.
      await raw.del(index);
      expect(await listed()).toEqual([]);
      const args = ["--cluster", "--url", cluster.url, "--root", root, "rebuild-index", "a", "--collections", "notes"];
      const cli = await run(process.execPath, [kvwsBin, ...args], { timeout: 30_000 });
      expect(cli.stdout).toContain(`${root}:ws:{a}:notes: 3 keys scanned, 3 index entries added or fixed`);
      expect(await listed()).toEqual(["n1", "n2", "n3"]);
      await raw.destroy();
    } finally {
      await moved.close();
    }
  });

  it("refuses to migrate on a cluster node", async () => {
    const cluster = state.cluster as TestCluster;
    await expect(migrateLayout(cluster.url, { root })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
