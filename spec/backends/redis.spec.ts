import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import KeyvRedis from "@keyv/redis";
import { keyvApiTests, keyvIteratorTests, keyvValueTests } from "@keyv/test-suite";
import KeyvModule from "keyv";
import * as vitest from "vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// Driver-level assertions (index, TTL, versions, ACL, rebuild) live in redis-store, redis-faults,
// redis-tenancy and redis-rebuild.spec.ts; what stays here goes through openStorage/scopeStore.
import { openStorage, rebuildIndexes, scopeStore } from "../../lib/index.js";
import { deleteUnder, keysUnder, type RawRedis, REDIS_URL, randomRoot, rawRedis } from "../support/env.js";

const writer = fileURLToPath(new URL("../fixtures/redis-writer.ts", import.meta.url));
const run = promisify(execFile);

/** Every key of a root with its type and content, to prove an operation left it alone. */
async function snapshot(client: RawRedis, root: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const key of await keysUnder(client, root)) {
    const type = await client.type(key);
    out[key] = [type, type === "string" ? await client.get(key) : await client.sendCommand(["DUMP", key])];
  }
  return out;
}

// One foreign root shared by the whole file: every test must leave it exactly as it was.
const foreignRoot = randomRoot("foreign");
let raw: RawRedis;
let foreignBefore: Record<string, unknown>;
const roots: string[] = [foreignRoot];
function root(): string {
  const r = randomRoot("redis");
  roots.push(r);
  return r;
}

beforeAll(async () => {
  raw = await rawRedis();
  await raw.set(`${foreignRoot}:ws:a:artifacts:x`, "foreign");
  await raw.set(`${foreignRoot}:ws:a:artifacts#version`, "7");
  await raw.hSet(`${foreignRoot}:ws:a:artifacts:h`, { f: "v" });
  await raw.zAdd(`${foreignRoot}:ws:a:artifacts#index`, [{ score: 1, value: "x" }]);
  await raw.set(`${foreignRoot}:deps:y`, "foreign", { PX: 600_000 });
  foreignBefore = await snapshot(raw, foreignRoot);
});

afterAll(async () => {
  const foreignAfter = await snapshot(raw, foreignRoot);
  for (const r of roots) await deleteUnder(raw, r);
  await raw.quit();
  // Checked here too so that no test (including the suites) can have touched it unnoticed.
  expect(foreignAfter).toEqual(foreignBefore);
});

describe("@keyv/test-suite over scopeStore(KeyvRedis)", () => {
  const adapter = new KeyvRedis(REDIS_URL);
  const suiteRoot = root();
  const store = () => scopeStore(adapter, `${suiteRoot}:ws:a:things`);
  keyvApiTests(vitest, KeyvModule, store);
  keyvValueTests(vitest, KeyvModule, store);
  keyvIteratorTests(vitest, KeyvModule, store);
  afterAll(async () => {
    await adapter.disconnect();
  });
});

describe("@keyv/test-suite over openStorage(redis://…).collection()", async () => {
  const storage = await openStorage({ url: REDIS_URL, root: root(), workspaceId: "suite" });
  // The same scoped store each time (as the storage caches it): many Keyvs over it each add a listener.
  const shared = storage.collection("things").opts.store as ReturnType<typeof scopeStore>;
  shared.setMaxListeners(0);
  const store = () => shared;
  keyvApiTests(vitest, KeyvModule, store);
  keyvValueTests(vitest, KeyvModule, store);
  keyvIteratorTests(vitest, KeyvModule, store);
  afterAll(async () => {
    await storage.close();
  });
});

describe("redis version and changedSince", () => {
  it("is served by a storage opened on redis:// (what vector caches call)", async () => {
    const r = root();
    const storage = await openStorage({ url: REDIS_URL, root: r, workspaceId: "w" });
    try {
      const store = storage.collection("vectors").opts.store as ReturnType<typeof scopeStore>;
      const v0 = await store.store.version!();
      await storage.vectors.upsert("one", [1, 0]);
      const v1 = await store.store.version!();
      expect(v1).not.toBe(v0);
      expect(await store.store.changedSince!(v0)).toBeUndefined(); // "0": never seen, reload
      await storage.vectors.upsert("two", [0, 1]);
      expect(await store.store.changedSince!(v1)).toContain("two");
    } finally {
      await storage.close();
    }
  });
});

describe("rebuildIndex", () => {
  it("makes data saved before the index existed visible to list()", async () => {
    const r = root();
    const storage = await openStorage({ url: REDIS_URL, root: r, workspaceId: "c" });
    try {
      await storage.artifacts.save("report", { ok: true });
      await storage.workflows.add({ name: "wf", source: "x", description: "adds numbers" });
      // Forget every index, as if the data came from a version without one.
      for (const key of await keysUnder(raw, r)) if (key.endsWith("#index")) await raw.del(key);
      expect(await storage.artifacts.list()).toEqual([]);
      expect(await storage.workflows.list()).toEqual([]);
      await rebuildIndexes(REDIS_URL, { root: r, workspaceId: "c" });
      expect((await storage.artifacts.list()).map((a) => a.name)).toEqual(["report"]);
      expect((await storage.workflows.list()).map((w) => w.name)).toEqual(["wf"]);
      expect((await storage.workflows.search("numbers")).map((w) => w.name)).toEqual(["wf"]);
    } finally {
      await storage.close();
    }
  });

  it("runs as a CLI", async () => {
    const r = root();
    await raw.set(`${r}:ws:w:artifacts:a`, "v");
    const cli = fileURLToPath(new URL("../../lib/cli/kvws.ts", import.meta.url));
    const kvws = (...args: string[]) =>
      run(process.execPath, ["--import", "tsx", cli, "--url", REDIS_URL, ...args], { timeout: 30_000 });
    const { stdout } = await kvws("--root", r, "rebuild-index", "w");
    expect(stdout).toContain(`${r}:ws:w:artifacts: 1 keys scanned, 1 index entries added or fixed, 0 removed`);
    expect(await raw.zRange(`${r}:ws:w:artifacts#index`, 0, -1)).toEqual(["a"]);
    await expect(kvws("--root", "bad root", "rebuild-index")).rejects.toMatchObject({ code: 1 });
    await expect(kvws("--root", r, "rebuild-index", "--bogus")).rejects.toMatchObject({ code: 2 });
  });
});

describe("two processes writing one workspace", () => {
  it("ends with exactly their 200 names listed and indexed", async () => {
    const r = root();
    const storage = await openStorage({ url: REDIS_URL, root: r, workspaceId: "shared" });
    try {
      const store = storage.collection("artifacts").opts.store as ReturnType<typeof scopeStore>;
      // Artifacts keep no version or log (only vector prefixes do): nothing but the index beside the values.
      expect(store.store.version).toBeUndefined();
      await storage.artifacts.save("seed", { i: -1 });
      const env = { ...process.env, START_AT: String(Date.now() + 2000) };
      const args = (tag: string) => ["--import", "tsx", writer, REDIS_URL, r, "shared", tag, "100"];
      await Promise.all([
        run(process.execPath, args("a"), { timeout: 60_000, env }),
        run(process.execPath, args("b"), { timeout: 60_000, env }),
      ]);
      await storage.artifacts.delete("seed");
      const expected = ["a", "b"].flatMap((tag) => Array.from({ length: 100 }, (_, i) => `${tag}-${i}`)).sort();
      expect((await storage.artifacts.list()).map((a) => a.name)).toEqual(expected);
      expect(await raw.zCard(`${store.prefix}#index`)).toBe(200);
      expect((await keysUnder(raw, `${store.prefix}#`)).sort()).toEqual([`${store.prefix}#index`]);
    } finally {
      await storage.close();
    }
  });
});

describe("collection() keys on redis", () => {
  it("refuses keys with an unpaired surrogate, which UTF-8 would fold into one key, and stores nothing", async () => {
    const root = randomRoot("utf8");
    roots.push(root);
    const storage = await openStorage({ url: REDIS_URL, root, workspaceId: "w" });
    try {
      const notes = storage.collection("notes");
      for (const key of ["\uD800", "\uDC00", "a\uDFFFb"]) {
        await expect(notes.set(key, 1)).rejects.toMatchObject({ code: "ERR_INVALID_NAME" });
        await expect(notes.get(key)).rejects.toMatchObject({ code: "ERR_INVALID_NAME" });
        await expect(notes.delete(key)).rejects.toMatchObject({ code: "ERR_INVALID_NAME" });
      }
      await notes.set("\uD83D\uDE00", 2); // a surrogate pair is one well-formed character
      expect(await notes.get("\uD83D\uDE00")).toBe(2);
      expect(await keysUnder(raw, `${root}:ws:w:notes:`)).toEqual([`${root}:ws:w:notes:\u{1F600}`]);
    } finally {
      await storage.close();
    }
  });
});
