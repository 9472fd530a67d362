import KeyvPostgres from "@keyv/postgres";
import KeyvSqlite from "@keyv/sqlite";
import { keyvApiTests, keyvIteratorTests, keyvValueTests } from "@keyv/test-suite";
import KeyvModule, { Keyv } from "keyv";
import * as vitest from "vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStorage, InvalidNameError, type ScopedStore, scopeStore } from "../../lib/index.js";
import { driverFor } from "../../lib/scope.js";
import { randomRoot } from "../support/env.js";
import { PG_URL, pgQuery, removeSqlite, sqliteFile } from "../support/sql.js";

type Adapter = KeyvSqlite | KeyvPostgres;

interface AdapterCase {
  name: string;
  open(root: string): Adapter;
  cleanup(root: string, adapter: Adapter): Promise<void>;
}

const ADAPTERS: AdapterCase[] = [
  {
    name: "@keyv/sqlite",
    open: (root) => new KeyvSqlite({ uri: `sqlite://${sqliteFile(root)}`, table: "keyv" }),
    async cleanup(root, adapter) {
      await adapter.disconnect();
      removeSqlite(sqliteFile(root));
    },
  },
  {
    name: "@keyv/postgres",
    // Its own schema per run: dropping it removes exactly what the test created.
    open: (root) => new KeyvPostgres({ uri: PG_URL, schema: `s_${root}`, table: "keyv" }),
    async cleanup(root, adapter) {
      await pgQuery(`DROP SCHEMA IF EXISTS "s_${root}" CASCADE`);
      await adapter.disconnect();
    },
  },
];

async function names(store: ScopedStore): Promise<string[]> {
  const out: string[] = [];
  for await (const name of store.names()) out.push(name);
  return out.sort();
}

describe.each(ADAPTERS)("an app's own $name adapter", (c) => {
  const root = randomRoot(`ad${c.name.includes("sqlite") ? "sqlite" : "pg"}`);
  let adapter: Adapter;
  beforeAll(() => {
    adapter = c.open(root);
  });
  afterAll(() => c.cleanup(root, adapter));

  it("lists and clears one workspace: look-alike ids and LIKE wildcards never match", async () => {
    const ids = ["client_a", "clientXa", "CLIENT_A", "client.a", "client%a"];
    for (const id of ids) await scopeStore(adapter, `${root}:ws:${id}:things`).set("n", id);
    const own = scopeStore(adapter, `${root}:ws:client_a:things`);
    const tricky = ["a_b", "100%", "a*", "what?", "[x", "x".repeat(200)];
    for (const name of tricky) await own.set(name, name);
    expect(await names(own)).toEqual(["n", ...tricky].sort());
    await own.clear();
    expect(await names(own)).toEqual([]);
    for (const id of ids.slice(1)) {
      expect(await scopeStore(adapter, `${root}:ws:${id}:things`).get("n")).toBe(id);
    }
  });

  it("serves a whole storage (collections, vectors, deps) over the adapter", async () => {
    const s = createStorage(adapter, { root, workspaceId: "w" });
    await s.artifacts.save("report", { ok: true });
    await s.withWorkspace("w2").artifacts.save("other", 1);
    expect((await s.artifacts.list()).map((a) => a.name)).toEqual(["report"]);
    await s.vectors.upsert("v", [1, 0]);
    expect((await s.vectors.search([1, 0]))[0]?.id).toBe("v");
    await s.deps.add("lodash@^4.17.0");
    expect(await s.withWorkspace("w2").deps.list()).toEqual(["lodash@^4.17.0"]);
    await s.collection("artifacts").clear();
    expect(await s.artifacts.list()).toEqual([]);
    expect(await s.withWorkspace("w2").artifacts.load("other")).toBe(1);
  });

  it("pages one workspace by key range: prefix (LIKE wildcards literal), after, limit", async () => {
    const s = createStorage(adapter, { root, workspaceId: "pg" });
    expect(driverFor(adapter).scope(s.keyspace.prefix("artifacts")).page).toBeTypeOf("function");
    const all = ["a%_1", "a%_2", "a%_3", "a%x", "aX_1", "b", "a%_\u{1F600}", "a%_\uFF5E"];
    for (const name of all) await s.artifacts.save(name, name);
    await s.withWorkspace("pg2").artifacts.save("a%_0", 0);
    const pages: string[][] = [];
    for (let after: string | undefined; ; ) {
      const page = (await s.artifacts.list({ prefix: "a%_", after, limit: 2 })).map((i) => i.name);
      pages.push(page);
      if (page.length < 2) break;
      after = page[page.length - 1];
    }
    expect(pages.flat()).toEqual(["a%_1", "a%_2", "a%_3", "a%_\uFF5E", "a%_\u{1F600}"]);
    expect((await s.artifacts.list({ after: "a%x", limit: 10 })).map((i) => i.name)).toEqual(["aX_1", "b"]);
  });

  it("writes conditionally (ifVersion) in one statement: of concurrent writers exactly one wins", async () => {
    const storages = Array.from({ length: 4 }, () => createStorage(adapter, { root, workspaceId: "cas" }));
    const race = (ifVersion: string | null) =>
      Promise.allSettled(
        Array.from({ length: 12 }, (_, i) => storages[i % 4]!.artifacts.save("plan", { by: i }, { ifVersion })),
      );
    for (const ifVersion of [null, "first"]) {
      const base = ifVersion === null ? null : (await storages[0]!.artifacts.info("plan"))!.version;
      const results = await race(base);
      const won = results.filter((r) => r.status === "fulfilled");
      expect(won).toHaveLength(1);
      for (const r of results) if (r.status === "rejected") expect(r.reason).toMatchObject({ code: "ERR_CONFLICT" });
      const winner = (won[0] as PromiseFulfilledResult<{ version: string }>).value.version;
      expect((await storages[3]!.artifacts.info("plan"))?.version).toBe(winner);
    }
    const info = (await storages[1]!.artifacts.info("plan"))!;
    await expect(storages[2]!.artifacts.delete("plan", { ifVersion: "nope" })).rejects.toMatchObject({
      code: "ERR_CONFLICT",
      current: info.version,
    });
    expect(await storages[2]!.artifacts.delete("plan", { ifVersion: info.version })).toBe(true);
    expect(await storages[0]!.artifacts.has("plan")).toBe(false);
    const scope = driverFor(adapter).scope(storages[0]!.keyspace.prefix("artifacts"));
    await expect(scope.transact!(["a", "b"], () => [undefined, undefined])).rejects.toMatchObject({
      code: "ERR_UNSUPPORTED_STORE",
    });
  });

  it("a plain Keyv over scopeStore clears only its scope", async () => {
    const keyv = new Keyv({ store: scopeStore(adapter, `${root}:ws:k:cache`) });
    await keyv.set("a", 1);
    await scopeStore(adapter, `${root}:ws:k2:cache`).set("b", "2");
    await keyv.clear();
    expect(await keyv.get("a")).toBeUndefined();
    expect(await scopeStore(adapter, `${root}:ws:k2:cache`).get("b")).toBe("2");
  });
});

describe("@keyv/postgres key size", () => {
  const root = randomRoot("adpgkey");
  let adapter: KeyvPostgres;
  // @keyv/postgres keeps one module-wide pool that disconnect() ends: each block makes its adapter late.
  beforeAll(() => {
    adapter = new KeyvPostgres({ uri: PG_URL, schema: `s_${root}`, table: "keyv" });
  });
  afterAll(async () => {
    await pgQuery(`DROP SCHEMA IF EXISTS "s_${root}" CASCADE`);
    await adapter.disconnect();
  });

  it("a key longer than its VARCHAR(255) column is a typed error before any write, not a silent loss", async () => {
    const store = scopeStore(adapter, `${root}:ws:w:notes`);
    const error = await store.set("k".repeat(700), "v").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidNameError);
    expect((error as Error).message).toMatch(/VARCHAR\(255\)/);
    const keyv = new Keyv({ store: scopeStore(adapter, `${root}:ws:w:notes`), throwOnErrors: true });
    await expect(keyv.set("k".repeat(700), "v")).rejects.toBeInstanceOf(InvalidNameError);
    await store.set("fits", "v");
    expect(await names(store)).toEqual(["fits"]);
  });
});

// Keyv's own adapter suite through scopeStore over each app adapter, beside a foreign key.
describe.each(ADAPTERS)("@keyv/test-suite over scopeStore($name)", (c) => {
  const root = randomRoot(`adsuite${c.name.includes("sqlite") ? "sqlite" : "pg"}`);
  let adapter: Adapter;
  const store = () => scopeStore(adapter, `${root}:ws:a:things`);
  beforeAll(async () => {
    adapter = c.open(root);
    await scopeStore(adapter, `${root}:ws:b:things`).set("foreign", "untouched");
  });
  afterAll(() => c.cleanup(root, adapter));
  keyvApiTests(vitest, KeyvModule, store);
  keyvValueTests(vitest, KeyvModule, store);
  keyvIteratorTests(vitest, KeyvModule, store);
  it("left the other workspace's key alone", async () => {
    expect(await scopeStore(adapter, `${root}:ws:b:things`).get("foreign")).toBe("untouched");
  });
});
