// storage.watch() on a Redis Cluster through the clients an app brings (createStorage over
// @keyv/redis's cluster client; @keyv/valkey's refuses) and through `kvws --cluster watch`.
import { createRequire } from "node:module";
import { PassThrough } from "node:stream";
import KeyvRedis, { createCluster } from "@keyv/redis";
import KeyvValkey from "@keyv/valkey";
import { describe, expect, it } from "vitest";
import { main } from "../../lib/cli/main.js";
import { createStorage, openStorage } from "../../lib/index.js";
import { randomRoot } from "../support/env.js";
import { useCluster } from "../support/use-cluster.js";
import { collect, RESET } from "../support/watch.js";

// iovalkey is @keyv/valkey's own dependency, not this package's: loaded from where that adapter finds it.
const { Cluster } = createRequire(createRequire(import.meta.url).resolve("@keyv/valkey"))("iovalkey") as {
  Cluster: new (nodes: Array<{ host: string; port: number }>) => object;
};

describe("watch() on a 3-master Redis Cluster, through an app's clients and kvws", () => {
  const cluster = useCluster();
  // Another seed node: its storages share no Publisher with the watcher's, so changes go through Redis.
  const otherSeed = () => cluster().masters[1]!.url;

  it("works through an app's @keyv/redis cluster adapter passed to createStorage, both ways", async () => {
    const root = randomRoot("clw");
    const adapter = new KeyvRedis(createCluster({ rootNodes: [{ url: otherSeed() }] }) as never);
    const byUrl = await openStorage({ url: cluster().url, root, workspaceId: "a", cluster: true });
    try {
      const app = createStorage(adapter, { root, workspaceId: "a", hashTags: true });
      const appEvents = app.watch({ collections: ["artifacts"] });
      const urlEvents = byUrl.watch({ collections: ["artifacts"] });
      expect(await collect(appEvents, (got) => got.length === 1)).toEqual([RESET]);
      expect(await collect(urlEvents, (got) => got.length === 1)).toEqual([RESET]);
      await byUrl.withWorkspace("b").artifacts.save("secret", 1);
      const fromUrl = await byUrl.artifacts.save("from-url", 1);
      const fromApp = await app.artifacts.save("from-app", 2);
      await app.artifacts.delete("from-url");
      const expected = [
        { collection: "artifacts", name: "from-url", op: "set", version: fromUrl.version },
        { collection: "artifacts", name: "from-app", op: "set", version: fromApp.version },
        { collection: "artifacts", name: "from-url", op: "delete" },
      ];
      expect(await collect(appEvents, (got) => got.length === 3)).toEqual(expected);
      expect(await collect(urlEvents, (got) => got.length === 3)).toEqual(expected);
      const stop = new AbortController();
      const aborted = app.watch({ signal: stop.signal });
      stop.abort();
      expect(await aborted.next()).toEqual({ value: undefined, done: true });
      await appEvents.return?.();
      await urlEvents.return?.();
    } finally {
      await byUrl.close();
      await adapter.disconnect().catch(() => {});
    }
  }, 30_000);

  it("refuses, typed, through an @keyv/valkey cluster client (ioredis routes no pub/sub command by slot)", async () => {
    const [host, port] = cluster().url.replace("redis://", "").split(":");
    const adapter = new KeyvValkey(new Cluster([{ host: host as string, port: Number(port) }]) as never);
    try {
      const app = createStorage(adapter as never, { root: randomRoot("clw"), workspaceId: "a", hashTags: true });
      expect(() => app.watch()).toThrow(
        expect.objectContaining({ code: "ERR_UNSUPPORTED_STORE", message: expect.stringContaining("cluster") }),
      );
    } finally {
      await adapter.disconnect();
    }
  });

  it("kvws --cluster watch prints the workspace's changes as NDJSON until interrupted", async () => {
    const root = randomRoot("clw");
    const stdout = new PassThrough();
    let out = "";
    stdout.on("data", (chunk) => {
      out += chunk;
    });
    const interrupt = new AbortController();
    const done = main(["--cluster", "--url", cluster().url, "--root", root, "watch", "acme"], {
      stdin: new PassThrough(),
      stdout,
      stderr: new PassThrough(),
      env: {},
      interrupt: () => interrupt.signal,
    });
    const s = await openStorage({ url: otherSeed(), root, workspaceId: "acme", cluster: true });
    try {
      // The command subscribes once it has opened the storage; its settle reset says it has.
      for (const deadline = Date.now() + 10_000; !out.includes('"reset"'); ) {
        if (Date.now() > deadline) throw new Error(`no reset line: ${out}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await s.withWorkspace("other").artifacts.save("secret", 1);
      const saved = await s.artifacts.save("report", { ok: true });
      for (const deadline = Date.now() + 10_000; !out.includes("report"); ) {
        if (Date.now() > deadline) throw new Error(`no report line: ${out}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      interrupt.abort();
      expect(await done).toBe(0);
      const lines = out
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line));
      expect(lines).toEqual([RESET, { collection: "artifacts", name: "report", op: "set", version: saved.version }]);
    } finally {
      interrupt.abort();
      await s.close();
    }
  }, 30_000);
});
