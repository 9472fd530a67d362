// storage.watch() on createStorage over an app's Redis adapter (lib/backends/redis/adapters.ts,
// subscribe.ts): each watcher on a copy of the adapter's client, changes heard both ways with a
// storage opened by URL, never another workspace's; a generic adapter refuses, typed.
import KeyvRedis from "@keyv/redis";
import KeyvValkey from "@keyv/valkey";
import type { KeyvStoreAdapter } from "keyv";
import { afterEach, describe, expect, it } from "vitest";
import { createStorage, keyspace, openStorage, provisionWorkspaceUser, revokeWorkspaceUser } from "../../lib/index.js";
import { REDIS_URL, randomRoot } from "../support/env.js";
import { redisRoots } from "../support/redis-roots.js";
import { type Cleanups, startPrivateRedis } from "../support/servers.js";
import { collect, expectDepsWatchRefused, RESET } from "../support/watch.js";
import { ADAPTERS } from "./cases.js";

const newRoot = redisRoots("adw");

describe.each(ADAPTERS.filter((c) => c.redis))("watch() through createStorage over $name", (adapterCase) => {
  it("hears a storage opened by URL and is heard by it: set, delete, clear, with versions, one workspace only", async () => {
    const root = newRoot();
    const { store, close } = adapterCase.open();
    const byUrl = await openStorage({ url: REDIS_URL, root, workspaceId: "a" });
    try {
      const app = createStorage(store, { root, workspaceId: "a" });
      const appEvents = app.watch();
      const urlEvents = byUrl.watch();
      expect(await collect(appEvents, (got) => got.length === 1)).toEqual([RESET]);
      expect(await collect(urlEvents, (got) => got.length === 1)).toEqual([RESET]);
      await byUrl.withWorkspace("b").artifacts.save("secret", 1);
      await app.withWorkspace("b").artifacts.save("secret", 2);
      const fromUrl = await byUrl.artifacts.save("from-url", 1);
      const fromApp = await app.artifacts.save("from-app", 2);
      await app.artifacts.delete("from-url");
      await byUrl.collection("notes").set("n", "x");
      await app.collection("notes").clear();
      const expected = [
        { collection: "artifacts", name: "from-url", op: "set", version: fromUrl.version },
        { collection: "artifacts", name: "from-app", op: "set", version: fromApp.version },
        { collection: "artifacts", name: "from-url", op: "delete" },
        { collection: "notes", name: "n", op: "set" },
        { collection: "notes", name: null, op: "clear" },
      ];
      expect(await collect(appEvents, (got) => got.length === expected.length)).toEqual(expected);
      expect(await collect(urlEvents, (got) => got.length === expected.length)).toEqual(expected);
      await urlEvents.return?.();
      // The app's storage closing ends its watchers; the app's adapter stays usable.
      const stop = new AbortController();
      const aborted = app.watch({ signal: stop.signal });
      stop.abort();
      expect(await aborted.next()).toEqual({ value: undefined, done: true });
      const pending = appEvents.next();
      await app.close();
      expect(await pending).toEqual({ value: undefined, done: true });
      await store.set("still-open", 1);
      await store.delete("still-open");
    } finally {
      await byUrl.close();
      await close();
    }
  }, 30_000);
});

describe("a watcher through an adapter whose subscription connection is dropped", () => {
  const cleanups: Cleanups = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const adapters: Array<[string, (url: string) => KeyvStoreAdapter]> = [
    ["@keyv/redis", (url) => new KeyvRedis(url) as unknown as KeyvStoreAdapter],
    ["@keyv/valkey", (url) => new KeyvValkey(url) as unknown as KeyvStoreAdapter],
  ];
  it.each(adapters)(
    "%s: gets a reset once it is back, then changes again",
    async (_, make) => {
      // A private server: CLIENT KILL must not reach other tests' subscribers.
      const { server, admin } = await startPrivateRedis(cleanups);
      const store = make(server.url);
      cleanups.push(async () => void (await store.disconnect?.()));
      const root = randomRoot("adw");
      const app = createStorage(store, { root, workspaceId: "a" });
      const byUrl = await openStorage({ url: server.url, root, workspaceId: "a" });
      cleanups.push(() => byUrl.close());
      const events = app.watch({ collections: ["artifacts"] });
      expect(await collect(events, (got) => got.length === 1)).toEqual([RESET]);
      expect(Number(await admin.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]))).toBe(1);
      expect(await collect(events, (got) => got.length === 1)).toEqual([RESET]);
      const saved = await byUrl.artifacts.save("after", 1);
      expect(await collect(events, (got) => got.length === 1)).toEqual([
        { collection: "artifacts", name: "after", op: "set", version: saved.version },
      ]);
      await events.return?.();
    },
    20_000,
  );
});

describe("a workspace ACL user's adapter", () => {
  const adapters: Array<[string, (url: string) => KeyvStoreAdapter]> = [
    ["@keyv/redis", (url) => new KeyvRedis(url) as unknown as KeyvStoreAdapter],
    [
      "@keyv/valkey",
      (url) => {
        // iovalkey splits a URL's user name at its first ":", and workspace user names hold some.
        const { hostname, port, username, password } = new URL(url);
        return new KeyvValkey({
          host: hostname,
          port: Number(port),
          username: decodeURIComponent(username),
          password: decodeURIComponent(password),
        }) as unknown as KeyvStoreAdapter;
      },
    ],
  ];
  it.each(adapters)(
    "%s: watches its own workspace, and is refused the root's channel",
    async (_, make) => {
      const root = newRoot();
      const user = await provisionWorkspaceUser(REDIS_URL, keyspace({ root, workspaceId: "a" }), {
        password: `pw${Date.now()}`,
      });
      const store = make(user.url);
      const admin = await openStorage({ url: REDIS_URL, root, workspaceId: "a" });
      try {
        const tenant = createStorage(store, { root, workspaceId: "a" });
        const events = tenant.watch();
        expect(await collect(events, (got) => got.length === 1)).toEqual([RESET]);
        await admin.withWorkspace("b").artifacts.save("secret", 1);
        const saved = await admin.artifacts.save("hello", 1);
        expect(await collect(events, (got) => got.length === 1)).toEqual([
          { collection: "artifacts", name: "hello", op: "set", version: saved.version },
        ]);
        await events.return?.();
        await expectDepsWatchRefused(tenant);
      } finally {
        await admin.close();
        await store.disconnect?.();
        await revokeWorkspaceUser(REDIS_URL, user.username);
      }
    },
    20_000,
  );
});

describe("watch() through createStorage over a generic Keyv adapter", () => {
  it("refuses with UnsupportedStoreError, saying why", async () => {
    const generic = ADAPTERS.find((c) => !c.redis);
    if (!generic) throw new Error("no generic adapter case");
    const { store, close } = generic.open();
    try {
      const s = createStorage(store, { root: newRoot(), workspaceId: "a" });
      expect(() => s.watch()).toThrow(
        expect.objectContaining({ code: "ERR_UNSUPPORTED_STORE", message: expect.stringContaining("openStorage") }),
      );
    } finally {
      await close();
    }
  });
});
