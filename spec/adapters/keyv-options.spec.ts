import KeyvRedis from "@keyv/redis";
import { Keyv, type KeyvStoreAdapter } from "keyv";
import { afterAll, describe, expect, it } from "vitest";
import { scopeStore } from "../../lib/index.js";
import { deleteUnder, REDIS_URL, randomRoot, rawRedis } from "../support/env.js";

const redis = new KeyvRedis(REDIS_URL);
const roots: string[] = [];
afterAll(async () => {
  await redis.disconnect();
  const client = await rawRedis();
  try {
    for (const root of roots) await deleteUnder(client, root);
  } finally {
    await client.quit();
  }
});

const STORES: Array<{ name: string; store: () => KeyvStoreAdapter | Map<unknown, unknown> }> = [
  { name: "Map", store: () => new Map() },
  { name: "KeyvRedis", store: () => redis as unknown as KeyvStoreAdapter },
];

async function keysOf(keyv: Keyv): Promise<string[]> {
  const keys: string[] = [];
  for await (const [key] of keyv.iterator?.(undefined) ?? []) keys.push(String(key));
  return keys.sort();
}

const COMBINATIONS = [
  { namespace: "ns", useKeyPrefix: true },
  { namespace: "ns", useKeyPrefix: false },
  { namespace: undefined, useKeyPrefix: false },
] as const;

// Keyv's own options over scopeStore: whatever it writes, it lists and clears — and nothing of
// another Keyv (another namespace) writing under the same prefix.
describe.each(STORES)("Keyv options over scopeStore($name)", ({ store }) => {
  it.each(COMBINATIONS)("namespace $namespace, useKeyPrefix $useKeyPrefix", async ({ namespace, useKeyPrefix }) => {
    const root = randomRoot("opts");
    roots.push(root);
    const backing = store();
    const prefix = `${root}:ws:a:things`;
    const keyv = new Keyv({ store: scopeStore(backing, prefix), namespace, useKeyPrefix });
    const foreign = new Keyv({ store: scopeStore(backing, prefix), namespace: "other" });
    const sibling = new Keyv({ store: scopeStore(backing, `${root}:ws:b:things`), namespace, useKeyPrefix });
    await foreign.set("f", "foreign");
    await sibling.set("k1", "sibling");
    for (const key of ["k1", "k2", "a:b"]) await keyv.set(key, `v-${key}`);
    expect(await keyv.get("a:b")).toBe("v-a:b");
    if (namespace !== undefined) expect(await keysOf(keyv)).toEqual(["a:b", "k1", "k2"]);
    // A Keyv without a namespace owns its whole prefix (as Keyv over a Map owns the Map).
    else expect(await keysOf(keyv)).toEqual(["a:b", "k1", "k2", "other:f"]);
    await keyv.clear();
    expect(await keysOf(keyv)).toEqual([]);
    for (const key of ["k1", "k2", "a:b"]) expect(await keyv.get(key)).toBeUndefined();
    expect(await sibling.get("k1")).toBe("sibling");
    if (namespace !== undefined) {
      expect(await foreign.get("f")).toBe("foreign");
      expect(await keysOf(foreign)).toEqual(["f"]);
    }
  });
});
