import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import {
  ArtifactNotFoundError,
  AuthenticationError,
  InvalidArgumentError,
  keyspace,
  MAX_ROLE_BYTES,
  openStorage,
  PermissionDeniedError,
  provisionWorkspaceRole,
  QuotaExceededError,
  revokeWorkspaceRole,
  type WorkspaceStorage,
  workspaceRoleName,
} from "../lib/index.js";
import { randomRoot } from "./support/env.js";
import { dropPgTables, PG_URL, pgQuery, pgTable, pgUrl } from "./support/sql.js";

const opened: WorkspaceStorage[] = [];
const roles: string[] = [];
const tables: string[] = [];

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  for (const role of roles.splice(0)) {
    await pgQuery(`DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN
      EXECUTE 'DROP OWNED BY "${role}"'; EXECUTE 'DROP ROLE "${role}"'; END IF; END $$`);
  }
  for (const table of tables.splice(0)) {
    await dropPgTables(table);
    await pgQuery(`DROP ROLE IF EXISTS "${table}_ws"`);
  }
});

async function setup(options: { depsWritable?: boolean } = {}) {
  const root = randomRoot("rls");
  const adminUrl = pgUrl(root);
  tables.push(pgTable(root));
  const admin = await openStorage({ url: adminUrl, root, workspaceId: "b" });
  opened.push(admin);
  await admin.artifacts.save("secret", { of: "b" });
  await admin.deps.add("lodash@^4.17.0");
  const ks = keyspace({ root, workspaceId: "a" });
  const { role, url } = await provisionWorkspaceRole(adminUrl, ks, { password: "pw-a", ...options });
  roles.push(role);
  const a = await openStorage({ url, root, workspaceId: "a" });
  opened.push(a);
  return { root, adminUrl, admin, a, role, url };
}

describe("provisionWorkspaceRole on the real PostgreSQL", () => {
  it("lets the role use every collection of its own workspace and read deps", async () => {
    const { a, url } = await setup();
    expect(url).toMatch(/^postgres:\/\/kvws_a_[0-9a-f]{12}:pw-a@127\.0\.0\.1:5432\/test\?table=/);
    await a.artifacts.save("mine", 0);
    await a.artifacts.save("mine", 1);
    expect(await a.artifacts.load("mine")).toBe(1);
    expect((await a.artifacts.list()).map((i) => i.name)).toEqual(["mine"]);
    await a.workflows.add({ name: "wf", source: "x", description: "send the weekly report" });
    expect((await a.workflows.search("weekly report"))[0]?.name).toBe("wf");
    await a.vectors.upsert("v", [0, 1]);
    await a.vectors.upsert("v", [1, 0]);
    expect((await a.vectors.search([1, 0]))[0]?.id).toBe("v");
    await a.collection("cache").set("t", "v", 60_000);
    expect(await a.collection("cache").get("t")).toBe("v");
    await a.collection("notes").set("k", "v");
    await a.collection("notes").clear();
    expect(await a.deps.list()).toEqual(["lodash@^4.17.0"]);
    expect(await a.artifacts.delete("mine")).toBe(true);
  });

  it("foreign reads return nothing; foreign and deps writes fail with ERR_PERMISSION_DENIED (42501)", async () => {
    const { a, admin } = await setup();
    const foreign = a.withWorkspace("b");
    expect(await foreign.artifacts.list()).toEqual([]);
    await expect(foreign.artifacts.load("secret")).rejects.toBeInstanceOf(ArtifactNotFoundError);
    const write = await foreign.artifacts.save("planted", 1).catch((e: unknown) => e);
    expect(write).toBeInstanceOf(PermissionDeniedError);
    expect((write as Error).cause).toMatchObject({ code: "42501" });
    const deps = await a.deps.add("evil@1.0.0").catch((e: unknown) => e);
    expect(deps).toBeInstanceOf(PermissionDeniedError);
    await foreign.collection("artifacts").clear();
    expect((await admin.artifacts.list()).map((i) => i.name)).toEqual(["secret"]);
    expect(await admin.deps.list()).toEqual(["lodash@^4.17.0"]);
  });

  it("the role writes its own workspace conditionally; over another's entry it is refused, not told it is absent", async () => {
    const { a, admin } = await setup();
    const first = await a.artifacts.save("plan", 1, { ifVersion: null });
    await expect(a.artifacts.save("plan", 2, { ifVersion: null })).rejects.toMatchObject({ code: "ERR_CONFLICT" });
    expect((await a.artifacts.save("plan", 2, { ifVersion: first.version })).version).not.toBe(first.version);
    // Hidden by RLS, "secret" reads as absent; writing over it is still refused by the policy.
    const write = await a
      .withWorkspace("b")
      .artifacts.save("secret", "mine", { ifVersion: null })
      .catch((e: unknown) => e);
    expect(write).toBeInstanceOf(PermissionDeniedError);
    expect(await admin.artifacts.load("secret")).toEqual({ of: "b" });
  });

  it("depsWritable lets the role write deps, still not another workspace", async () => {
    const { a } = await setup({ depsWritable: true });
    await a.deps.add("zod@^4.0.0");
    expect(await a.deps.list()).toEqual(["lodash@^4.17.0", "zod@^4.0.0"]);
    await expect(a.withWorkspace("b").artifacts.save("x", 1)).rejects.toBeInstanceOf(PermissionDeniedError);
  });

  it("listing as the role stays an index range scan", async () => {
    const { root, url } = await setup();
    const table = pgTable(root);
    await pgQuery(
      `INSERT INTO "${table}" (key, prefix, value) SELECT '${root}:ws:o' || g || ':artifacts:x', '${root}:ws:o' || g || ':artifacts', '1' FROM generate_series(1, 5000) g`,
    );
    await pgQuery(`ANALYZE "${table}"`);
    const client = new pg.Client({ connectionString: url.replace(/\?.*$/, "") });
    await client.connect();
    try {
      const { rows } = await client.query(
        `EXPLAIN SELECT key FROM "${table}" WHERE prefix = $1 AND key > '' AND (expires_at IS NULL OR expires_at > 0) ORDER BY key LIMIT 500`,
        [`${root}:ws:a:artifacts`],
      );
      const plan = rows.map((r: Record<string, string>) => r["QUERY PLAN"]).join("\n");
      expect(plan).toMatch(/Index (Only )?Scan/);
      expect(plan).not.toMatch(/Seq Scan/);
    } finally {
      await client.end();
    }
  });

  it("revoking drops the role: it can no longer connect; a second revoke says false", async () => {
    const { adminUrl, role, url, root, a } = await setup();
    await a.close();
    expect(await revokeWorkspaceRole(adminUrl, role)).toBe(true);
    expect(await revokeWorkspaceRole(adminUrl, role)).toBe(false);
    const error = await openStorage({ url, root, workspaceId: "a" }, { connectTimeoutMs: 2000 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AuthenticationError);
  });

  it("maps every workspace id to a distinct role name of at most 63 bytes", () => {
    const ids = ["client_a", "CLIENT_A", "client.a", "clientXa", "x".repeat(128), `${"x".repeat(127)}y`];
    const names = ids.map((id) => workspaceRoleName("kvws", keyspace({ root: "app", workspaceId: id })));
    expect(new Set(names).size).toBe(ids.length);
    for (const name of names) expect(Buffer.byteLength(name)).toBeLessThanOrEqual(MAX_ROLE_BYTES);
    expect(workspaceRoleName("kvws", keyspace({ root: "other", workspaceId: "client_a" }))).not.toBe(names[0]);
  });

  it("refuses bad input before touching the server", async () => {
    const ks = keyspace({ root: "app", workspaceId: "a" });
    await expect(provisionWorkspaceRole(PG_URL, keyspace({ root: "app" }), { password: "x" })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(provisionWorkspaceRole(PG_URL, ks, { password: "" })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(provisionWorkspaceRole(PG_URL, ks, { password: "x", role: "r".repeat(64) })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(provisionWorkspaceRole("redis://127.0.0.1", ks, { password: "x" })).rejects.toMatchObject({
      code: "ERR_INVALID_CONFIG",
    });
  });
});

describe("quotas under row-level security", () => {
  const rawAs = async (url: string, text: string) => {
    const client = new pg.Client({ connectionString: url.replace(/\?.*$/, "") });
    await client.connect();
    try {
      return await client.query(text).then(
        (r) => r.rows as Array<Record<string, unknown>>,
        (e: unknown) => e as Error & { code?: string },
      );
    } finally {
      await client.end();
    }
  };

  it("the role reads its own quota, its writes are counted and refused past it", async () => {
    const { root, adminUrl, a } = await setup();
    const operator = await openStorage({ url: adminUrl, root, workspaceId: null });
    opened.push(operator);
    await a.collection("notes").set("before", "v");
    await operator.setQuota("a", { maxEntries: 3 });
    await operator.setQuota("b", { maxEntries: 99 });
    expect(await a.quota()).toMatchObject({ limit: { maxEntries: 3 }, entries: 1 });
    await a.collection("notes").setMany([
      { key: "x", value: "1" },
      { key: "y", value: "2" },
    ]);
    await expect(a.collection("notes").set("z", "3")).rejects.toBeInstanceOf(QuotaExceededError);
    expect(await a.collection("notes").get("z")).toBeUndefined();
    await a.collection("notes").delete("x");
    await a.collection("notes").set("z", "3");
    const usage = await a.quota();
    const stats = Object.values(await a.stats());
    expect(usage.entries).toBe(3);
    expect(usage.entries).toBe(stats.reduce((n, s) => n + s.entries, 0));
    expect(usage.bytes).toBe(stats.reduce((n, s) => n + s.bytes, 0));
    // Another workspace's quota is not shown to the role: read through it, b has none.
    expect((await a.withWorkspace("b").quota()).limit).toBeNull();
  });

  it("the role cannot change any quota: setQuota through it and raw writes of the quota table fail with 42501", async () => {
    const { root, adminUrl, url, a, role } = await setup();
    const operator = await openStorage({ url: adminUrl, root, workspaceId: null });
    opened.push(operator);
    await operator.setQuota("a", { maxEntries: 1 });
    await operator.setQuota("b", { maxEntries: 5 });
    const tenant = await openStorage({ url, root, workspaceId: null });
    opened.push(tenant);
    for (const [id, quota] of [
      ["a", { maxEntries: 100 }],
      ["a", null],
      ["b", { maxEntries: 100 }],
    ] as const) {
      await expect(tenant.setQuota(id, quota)).rejects.toBeInstanceOf(PermissionDeniedError);
    }
    const table = `"${pgTable(root)}_quotas"`;
    for (const statement of [
      `UPDATE ${table} SET max_entries = 100`,
      `DELETE FROM ${table}`,
      `INSERT INTO ${table} (base, max_entries, entries, bytes) VALUES ('${root}:ws:a', 100, 0, 0) ON CONFLICT (base) DO UPDATE SET max_entries = 100`,
      `INSERT INTO ${table} (base, max_entries, entries, bytes) VALUES ('${root}:ws:zz', 100, 0, 0)`,
    ]) {
      expect(await rawAs(url, statement)).toMatchObject({ code: "42501" });
    }
    expect(await rawAs(url, `SELECT base, max_entries FROM ${table}`)).toEqual([
      { base: `${root}:ws:a`, max_entries: "1" },
    ]);
    expect(role).toMatch(/^kvws_a_/);
    await a.collection("notes").set("one", "1");
    await expect(a.collection("notes").set("two", "2")).rejects.toBeInstanceOf(QuotaExceededError);
    expect((await a.quota()).limit).toEqual({ maxEntries: 1 });
  });
});
