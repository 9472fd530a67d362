import { EventEmitter } from "node:events";
import { createCache } from "cache-manager";
import { Keyv, type KeyvStoreAdapter, type StoredData } from "keyv";
import { describe, expect, it } from "vitest";
import { createStorage, scopeStore, UnsupportedStoreError } from "../../lib/index.js";
import { randomRoot } from "../support/env.js";
import { captureWarnings } from "../support/warnings.js";

/** An adapter the library cannot list: point operations only (as @keyv/memcache would be). */
class KeyvPointOnly extends EventEmitter implements KeyvStoreAdapter {
  readonly data = new Map<string, unknown>();
  opts = { dialect: "point-only", url: "" };
  namespace?: string;
  async get<Value>(key: string): Promise<StoredData<Value>> {
    return this.data.get(key) as StoredData<Value>;
  }
  async set(key: string, value: unknown) {
    this.data.set(key, value);
    return true;
  }
  async delete(key: string) {
    return this.data.delete(key);
  }
  async clear() {
    this.data.clear();
  }
}

/** Says it is Redis (as keyv-file does) and even has getClient — but its client is no Redis client. */
class LooksLikeRedis extends KeyvPointOnly {
  override opts = { dialect: "redis", url: "redis://localhost:6379" };
  client = { connect: async () => {} };
  async getClient() {
    return this.client;
  }
}

const WARNING = "KVWS_UNSUPPORTED_STORE";

describe("an adapter the library cannot list", () => {
  it("warns once when wrapped, naming the adapter and the operations that will fail", async () => {
    const warnings = captureWarnings(WARNING);
    try {
      const store = new KeyvPointOnly();
      scopeStore(store, `${randomRoot("w")}:ws:a:things`);
      scopeStore(store, `${randomRoot("w")}:ws:b:things`);
      createStorage(new KeyvPointOnly(), { root: randomRoot("w"), workspaceId: "a" });
      const seen = await warnings.all();
      expect(seen).toHaveLength(1);
      expect(seen[0]!.message).toContain("KeyvPointOnly");
      expect(seen[0]!.message).toMatch(/iterator\(\), clear\(\) and listing \(list\(\)\)/);
      expect(seen[0]!.message).toContain("@keyv/redis");
    } finally {
      warnings.stop();
    }
  });

  it("rejects clear and iteration with UnsupportedStoreError naming the adapter and what works; get/set work", async () => {
    const store = new KeyvPointOnly();
    const scoped = scopeStore(store, `${randomRoot("u")}:ws:a:things`);
    await scoped.set("k", "v");
    expect(await scoped.get("k")).toBe("v");
    const refused = await scoped.clear().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UnsupportedStoreError);
    expect(refused).toMatchObject({ code: "ERR_UNSUPPORTED_STORE" });
    expect((refused as Error).message).toMatch(/the store adapter KeyvPointOnly .*What works: a Map, @keyv\/redis/);
    await expect(scoped.iterator().next()).rejects.toBeInstanceOf(UnsupportedStoreError);
    expect(await scoped.get("k")).toBe("v");
  });

  it("is not taken for Redis because it claims the dialect and has getClient", async () => {
    const warnings = captureWarnings(WARNING);
    try {
      const scoped = scopeStore(new LooksLikeRedis(), `${randomRoot("l")}:ws:a:things`);
      await scoped.set("k", "v");
      expect(await scoped.get("k")).toBe("v");
      await expect(scoped.clear()).rejects.toBeInstanceOf(UnsupportedStoreError);
      expect((await warnings.all()).map((w) => w.message).join()).toContain("LooksLikeRedis");
    } finally {
      warnings.stop();
    }
  });

  it("under a plain Keyv and cache-manager 7, whose clear() swallows the refusal, the warning is the signal", async () => {
    class KeyvSilentVictim extends KeyvPointOnly {}
    const warnings = captureWarnings(WARNING);
    try {
      const store = new KeyvSilentVictim();
      const keyv = new Keyv({ store: scopeStore(store, `${randomRoot("cm")}:ws:a:cache`) });
      const cache = createCache({ stores: [keyv] });
      await cache.set("k", "v");
      await cache.clear();
      // Keyv swallowed the UnsupportedStoreError: the data stays, and the process was told so.
      expect(await cache.get("k")).toBe("v");
      const told = await warnings.all();
      expect(told).toHaveLength(1);
      expect(told[0]!.message).toContain("KeyvSilentVictim");
      expect(told[0]!.message).toContain("clear() then deletes nothing");
    } finally {
      warnings.stop();
    }
  });
});
