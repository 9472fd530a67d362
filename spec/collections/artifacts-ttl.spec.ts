/** Expiring artifacts (contract §8): `save(name, data, { ttl })` on every backend. */
import { describe, expect, it } from "vitest";
import { mapDriver } from "../../lib/backends/map-scope.js";
import { ArtifactNotFoundError, InvalidArgumentError, openStorage, type WorkspaceStorage } from "../../lib/index.js";
import { BACKENDS, perTest } from "../support/backends.js";
import { deleteUnder, randomRoot, rawRedis } from "../support/env.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` holds, for at most `ms`: expiry is "gone after it passed", never a timing claim. */
async function eventually(check: () => Promise<boolean>, ms = 3000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await sleep(25);
  }
}

for (const backend of BACKENDS) {
  describe(`expiring artifacts on ${backend.name}`, () => {
    const { newRoot, track } = perTest(backend, "ttl");
    const open = (root: string): Promise<WorkspaceStorage> =>
      track(openStorage({ url: backend.url(root), root, workspaceId: "w" }));

    it("vanishes from load, info, has and list (paged too) once its ttl has passed", async () => {
      const s = await open(newRoot());
      await s.artifacts.save("keep", { k: 1 });
      const info = await s.artifacts.save("brief", { b: 1 }, { ttl: 100, description: "short-lived" });
      await s.artifacts.save("brief-bytes", Uint8Array.from([1, 2]), { ttl: 100 });
      await s.artifacts.save("later", 2, { ttl: 600_000 });
      expect(await s.artifacts.load("brief")).toEqual({ b: 1 });
      expect(await s.artifacts.info("brief")).toEqual(info);
      expect(await s.artifacts.has("brief")).toBe(true);
      expect((await s.artifacts.list()).map((i) => i.name)).toEqual(["brief", "brief-bytes", "keep", "later"]);

      const gone = await eventually(async () => !(await s.artifacts.has("brief")));
      expect(gone).toBe(true);
      await sleep(20); // "brief-bytes" was saved after "brief"
      await expect(s.artifacts.load("brief")).rejects.toBeInstanceOf(ArtifactNotFoundError);
      await expect(s.artifacts.load("brief-bytes")).rejects.toBeInstanceOf(ArtifactNotFoundError);
      expect(await s.artifacts.info("brief")).toBeUndefined();
      expect(await s.artifacts.has("brief-bytes")).toBe(false);
      expect((await s.artifacts.list()).map((i) => i.name)).toEqual(["keep", "later"]);
      // A page never comes back short because of expired names in its range.
      expect((await s.artifacts.list({ limit: 1 })).map((i) => i.name)).toEqual(["keep"]);
      expect((await s.artifacts.list({ prefix: "b", limit: 5 })).map((i) => i.name)).toEqual([]);
      expect(await s.artifacts.load("later")).toBe(2);
    });

    it("a save without ttl makes an expiring artifact permanent again", async () => {
      const s = await open(newRoot());
      await s.artifacts.save("x", 1, { ttl: 100 });
      await s.artifacts.save("x", 2);
      await sleep(250);
      expect(await s.artifacts.load("x")).toBe(2);
      expect((await s.artifacts.list()).map((i) => i.name)).toEqual(["x"]);
      expect((await s.artifacts.list({ limit: 5 })).map((i) => i.name)).toEqual(["x"]);
    });

    it("rejects a ttl that is not a positive integer with InvalidArgumentError and stores nothing", async () => {
      const s = await open(newRoot());
      await s.artifacts.save("x", "before");
      for (const ttl of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "100", null]) {
        await expect(s.artifacts.save("x", "after", { ttl: ttl as never }), String(ttl)).rejects.toMatchObject({
          code: "ERR_INVALID_ARGUMENT",
        });
        await expect(s.artifacts.save("y", "after", { ttl: ttl as never })).rejects.toBeInstanceOf(
          InvalidArgumentError,
        );
      }
      expect(await s.artifacts.load("x")).toBe("before");
      expect(await s.artifacts.has("y")).toBe(false);
    });
  });
}

describe("expired artifacts are pruned by the next ttl write", () => {
  it("on a Map (memory and file keep the same bookkeeping)", async () => {
    const map = new Map<unknown, unknown>();
    const driver = mapDriver(map);
    const store = driver.scope("app:ws:w:artifacts");
    await store.set("a", '{"value":1}', 50);
    await store.set("b", '{"value":1}');
    const before = await store.version!();
    await sleep(120);
    expect(map.has("app:ws:w:artifacts:a")).toBe(true); // expiry alone writes nothing
    await store.set("c", '{"value":1}', 600_000);
    expect(map.has("app:ws:w:artifacts:a")).toBe(false);
    expect([...driver.core.names("app:ws:w:artifacts")].sort()).toEqual(["b", "c"]);
    // Pruning is logged like a delete, so vector caches drop the name.
    expect(await store.changedSince!(before)).toEqual(expect.arrayContaining(["a", "c"]));
  });

  it("on Redis: both the index member and the #ttl member go", async () => {
    const root = randomRoot("ttlprune");
    const s = await openStorage({ url: BACKENDS[2]!.url(root), root, workspaceId: "w" });
    const raw = await rawRedis();
    const prefix = `${root}:ws:w:artifacts`;
    try {
      await s.artifacts.save("a", 1, { ttl: 60 });
      await s.artifacts.save("b", 1);
      expect(await raw.zScore(`${prefix}#ttl`, "a")).not.toBeNull();
      await sleep(150);
      expect(await raw.zScore(`${prefix}#index`, "a")).toBe(0); // listing hides it; nothing wrote yet
      await s.artifacts.save("c", 1, { ttl: 600_000 });
      expect(await raw.zScore(`${prefix}#index`, "a")).toBeNull();
      expect(await raw.zScore(`${prefix}#ttl`, "a")).toBeNull();
      expect((await raw.zRange(`${prefix}#index`, 0, -1)).sort()).toEqual(["b", "c"]);
    } finally {
      await s.close();
      await deleteUnder(raw, root);
      await raw.quit();
    }
  });
});
