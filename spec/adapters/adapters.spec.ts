import { keyvApiTests, keyvIteratorTests, keyvValueTests } from "@keyv/test-suite";
import KeyvModule, { Keyv, type KeyvStoreAdapter } from "keyv";
import * as vitest from "vitest";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createStorage, openStorage, scopeStore } from "../../lib/index.js";
import { deleteUnder, REDIS_URL, randomRoot, rawRedis } from "../support/env.js";
import { captureWarnings } from "../support/warnings.js";
import { ADAPTERS, type AdapterCase } from "./cases.js";

const LOOK_ALIKES = ["client_a", "clientXa", "CLIENT_A", "client.a"];
const TRICKY = ["a_b", "100%", "st*r", "what?", "[x", "a:b", "x".repeat(512)];

async function keysOf(iterable: AsyncIterable<unknown[]> | undefined): Promise<string[]> {
  const keys: string[] = [];
  for await (const [key] of iterable ?? []) keys.push(String(key));
  return keys.sort();
}

function useAdapter(adapter: AdapterCase) {
  const held: { store?: KeyvStoreAdapter; close?: () => Promise<void> } = {};
  const roots: string[] = [];
  beforeAll(() => {
    Object.assign(held, adapter.open());
  });
  afterAll(async () => {
    await held.close?.();
    const client = await rawRedis();
    try {
      for (const root of roots) await deleteUnder(client, root);
    } finally {
      await client.quit();
    }
  });
  return {
    store: () => held.store as KeyvStoreAdapter,
    root(tag: string) {
      const root = randomRoot(tag);
      roots.push(root);
      return root;
    },
  };
}

describe.each(ADAPTERS)("an app's $name", (adapter) => {
  const held = useAdapter(adapter);

  it("is recognised: wrapping it warns of nothing", async () => {
    const warnings = captureWarnings("KVWS_UNSUPPORTED_STORE");
    try {
      scopeStore(held.store(), `${held.root("rec")}:ws:a:things`);
      expect(await warnings.all()).toEqual([]);
    } finally {
      warnings.stop();
    }
  });

  it("scopeStore lists, iterates and clears exactly one prefix; look-alike ids are never touched", async () => {
    const root = held.root("one");
    const plain = (id: string) =>
      new Keyv({
        store: scopeStore(held.store(), `${root}:ws:${id}:things`),
        useKeyPrefix: false,
        namespace: undefined,
      });
    const others = LOOK_ALIKES.slice(1).map(plain);
    for (const [i, other] of others.entries()) await other.set("same", `other${i}`);
    const mine = plain("client_a");
    for (const name of TRICKY) await mine.set(name, `v-${name.length}`);
    expect(await keysOf(mine.iterator?.(undefined))).toEqual([...TRICKY].sort());
    for (const name of TRICKY) expect(await mine.get(name)).toBe(`v-${name.length}`);
    await mine.clear();
    expect(await keysOf(mine.iterator?.(undefined))).toEqual([]);
    for (const [i, other] of others.entries()) {
      expect(await other.get("same")).toBe(`other${i}`);
      expect(await keysOf(other.iterator?.(undefined))).toEqual(["same"]);
    }
  });

  it("createStorage lists and clears one workspace", async () => {
    const root = held.root("cs");
    const storages = LOOK_ALIKES.map((workspaceId) => createStorage(held.store(), { root, workspaceId }));
    for (const [i, storage] of storages.entries()) await storage.artifacts.save("report", { i });
    const [mine, ...others] = storages;
    for (const name of TRICKY) await mine!.artifacts.save(name, { name });
    expect((await mine!.artifacts.list()).map((a) => a.name)).toEqual(["report", ...TRICKY].sort());
    const things = mine!.collection("things");
    await things.set("k", 1);
    await things.clear();
    expect(await things.get("k")).toBeUndefined();
    for (const [i, other] of others.entries()) {
      expect((await other.artifacts.list()).map((a) => a.name)).toEqual(["report"]);
      expect(await other.artifacts.load("report")).toEqual({ i: i + 1 });
    }
  });

  it.runIf(adapter.redis)("its writes are indexed: a storage opened by URL lists them", async () => {
    const root = held.root("idx");
    const held1 = createStorage(held.store(), { root, workspaceId: "a" });
    await held1.artifacts.save("from-adapter", { ok: true });
    await held1.collection("things").set("k", "v");
    const byUrl = await openStorage({ url: REDIS_URL, root, workspaceId: "a" });
    try {
      expect((await byUrl.artifacts.list()).map((a) => a.name)).toEqual(["from-adapter"]);
      expect(await keysOf(byUrl.collection("things").iterator?.(undefined))).toEqual(["k"]);
    } finally {
      await byUrl.close();
    }
  });

  describe("@keyv/test-suite through scopeStore", () => {
    const prefixes: { root?: string } = {};
    const store = () => scopeStore(held.store(), `${prefixes.root}:ws:a:things`);
    beforeAll(async () => {
      prefixes.root = held.root("suite");
      await scopeStore(held.store(), `${prefixes.root}:ws:b:things`).set("foreign", "untouched");
    });
    keyvApiTests(vitest, KeyvModule, store);
    keyvValueTests(vitest, KeyvModule, store);
    keyvIteratorTests(vitest, KeyvModule, store);
    it("left the other workspace's key alone", async () => {
      expect(await scopeStore(held.store(), `${prefixes.root}:ws:b:things`).get("foreign")).toBe("untouched");
    });
  });
});

afterEach(() => {});
