import KeyvRedis from "@keyv/redis";
import { Keyv } from "keyv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStorage, scopedKeyv, scopeStore } from "../lib/index.js";
import { deleteUnder, keysUnder, type RawRedis, REDIS_URL, randomRoot, rawRedis } from "./support/env.js";

describe("composing into an existing Keyv + Redis app", () => {
  let raw: RawRedis;
  let adapter: KeyvRedis<unknown>;
  const root = randomRoot("compose");

  beforeAll(async () => {
    raw = await rawRedis();
    adapter = new KeyvRedis(REDIS_URL);
  });
  afterAll(async () => {
    await deleteUnder(raw, root);
    await raw.quit();
    await adapter.disconnect();
  });

  it("stores collection key k at exactly keyspace.key(collection, k)", async () => {
    const s = createStorage(adapter, { root, workspaceId: "w", url: REDIS_URL });
    await s.collection("sessions").set("user:1", { id: 1 });
    const key = s.keyspace.key("sessions", "user:1");
    expect(key).toBe(`${root}:ws:w:sessions:user:1`);
    expect(JSON.parse((await raw.get(key)) ?? "null")).toEqual({ value: { id: 1 } });
    expect(s.toBootstrapConfig()).toEqual({ url: REDIS_URL, root, workspaceId: "w", unscoped: ["deps"] });
  });

  it("ignores foreign keys in the same Redis: not listed, not cleared, not fatal", async () => {
    const s = createStorage(adapter, { root, workspaceId: "f" });
    const prefix = s.keyspace.prefix("artifacts");
    await raw.set(`${prefix}:planted-not-json`, "{{{not json");
    await raw.hSet(`${prefix}:planted-hash`, { a: "1" });
    await raw.set(`${prefix}x:beside`, "x");
    await raw.set(`${root}:ws:f:artifacts*`, "glob-looking neighbour");
    await s.artifacts.save("mine", 1);
    expect((await s.artifacts.list()).map((a) => a.name)).toEqual(["mine"]);
    await s.collection("artifacts").clear();
    expect(await s.artifacts.list()).toEqual([]);
    const left = await keysUnder(raw, `${root}:ws:f:`);
    expect(left).toEqual(
      expect.arrayContaining([
        `${prefix}:planted-not-json`,
        `${prefix}:planted-hash`,
        `${prefix}x:beside`,
        `${root}:ws:f:artifacts*`,
      ]),
    );
    expect(await raw.get(`${prefix}:planted-not-json`)).toBe("{{{not json");
  });

  it("never closes the caller's adapter", async () => {
    const s = createStorage(adapter, { root, workspaceId: "c" });
    await s.close();
    const appKeyv = new Keyv({ store: adapter, namespace: `${root}-app` });
    await appKeyv.set("still", "works");
    expect(await appKeyv.get("still")).toBe("works");
    await appKeyv.delete("still");
  });

  it("works as a plain Keyv store in an app that already uses Keyv", async () => {
    const cache = scopedKeyv(scopeStore(adapter, `${root}:ws:tenant:cache`));
    await cache.set("page:/", "<html>", 60_000);
    expect(await cache.get("page:/")).toBe("<html>");
    const ttl = await raw.pTTL(`${root}:ws:tenant:cache:page:/`);
    expect(ttl).toBeGreaterThan(0);
    const entries: unknown[] = [];
    for await (const entry of cache.iterator!(undefined)) entries.push(entry);
    expect(entries).toEqual([["page:/", "<html>"]]);
  });
});
