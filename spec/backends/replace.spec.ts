import { afterAll, describe, expect, it } from "vitest";
import type { Backend } from "../../lib/backends/driver.js";
import { openBackend } from "../../lib/index.js";
import { deleteUnder, REDIS_URL, randomRoot, rawRedis, tempDir } from "../support/env.js";
import { listNames } from "../support/prefix-store.js";

const dir = tempDir();
const root = randomRoot("replace");
const backends: Backend[] = [];
afterAll(async () => {
  for (const backend of backends) await backend.close();
  const raw = await rawRedis();
  await deleteUnder(raw, root);
  await raw.quit();
  dir.remove();
});

// Drivers where one step can do it; the others leave replace out and artifacts.save reads first.
const urls = [
  ["memory", "memory:"],
  ["file", `file:${dir.path}/replace.kv`],
  ["redis (key layout)", REDIS_URL],
] as const;

for (const [name, url] of urls) {
  describe(`PrefixStore.replace (${name})`, () => {
    it("overwrites a name that holds a value and returns that value; writes nothing for a missing one", async () => {
      const backend = await openBackend(url);
      backends.push(backend);
      const store = backend.driver.scope(`${root}:ws:a:things`);
      expect(store.replace).toBeTypeOf("function");
      const replace = store.replace?.bind(store) as NonNullable<typeof store.replace>;
      expect(await replace("a", "1")).toBeUndefined();
      expect(await store.get("a")).toBeUndefined();
      expect(await listNames(store)).toEqual([]);
      await store.set("a", "1");
      expect(await replace("a", "2")).toBe("1");
      expect(await replace("a", "3")).toBe("2");
      expect(await store.get("a")).toBe("3");
      expect(await listNames(store)).toEqual(["a"]);
      await store.delete("a");
      expect(await replace("a", "4")).toBeUndefined();
      expect(await store.has("a")).toBe(false);
    });
  });
}

describe("PrefixStore.replace (redis, hash layout)", () => {
  it("writes in one MULTI and says null where the name held no live value, since HSET cannot refuse", async () => {
    const backend = await openBackend(REDIS_URL, { redisLayout: "hash" });
    backends.push(backend);
    const store = backend.driver.scope(`${root}:ws:h:things`);
    const replace = store.replace?.bind(store) as NonNullable<typeof store.replace>;
    expect(await replace("a", "1")).toBeNull();
    expect(await store.get("a")).toBe("1");
    expect(await replace("a", "2")).toBe("1");
    expect(await store.get("a")).toBe("2");
    // An expired value is no value: null again, and the new one has no expiry.
    await store.set("t", "old", 30);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await replace("t", "new")).toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await store.get("t")).toBe("new");
    expect(await listNames(store)).toEqual(["a", "t"]);
  });
});
