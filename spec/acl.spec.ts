import { randomBytes } from "node:crypto";
import { createClient } from "@redis/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  InvalidArgumentError,
  InvalidWorkspaceIdError,
  keyspace,
  openStorage,
  provisionWorkspaceUser,
  redisAcl,
  revokeWorkspaceUser,
  type WorkspaceStorage,
  workspaceUsername,
} from "../lib/index.js";
import { deleteUnder, keysUnder, REDIS_URL, randomRoot, rawRedis } from "./support/env.js";

const secret = () => `pw_${randomBytes(12).toString("hex")}`;

describe("redisAcl rules", () => {
  it("grants the workspace prefix, reads the unscoped collections and denies keyspace-wide commands", () => {
    const rules = redisAcl(keyspace({ root: "app", workspaceId: "client_a" }), { password: "s3cret" });
    expect(rules.slice(0, 3)).toEqual(["reset", "on", ">s3cret"]);
    expect(rules).toContain("~app:ws:client_a:*");
    expect(rules).toContain("%R~app:deps:*");
    expect(rules).toContain("%R~app:deps#*");
    // The root's workspace registry: write-only, this id's entry and the index (listing needs read).
    expect(rules).toContain("%W~app#workspaces:client_a");
    expect(rules).toContain("%W~app#workspaces#index");
    expect(rules).toContain("%W~app#workspaces#ttl");
    // Its quota's limit: readable by its writes, never writable (a tenant cannot lift its quota).
    expect(rules).toContain("%R~app#quota:client_a");
    expect(rules.filter((r) => r.includes("~"))).toHaveLength(7);
    for (const denied of ["-scan", "-keys", "-randomkey", "-flushdb", "-flushall", "-config", "-swapdb", "-move"]) {
      expect(rules).toContain(denied);
    }
    expect(rules).not.toContain("+@all");
  });

  it("has no password rule without a password, and read-write shared collections on request", () => {
    const ks = keyspace({
      root: "app:eu",
      workspaceId: "w.1",
      unscoped: ["deps", "shared"],
      depsPrefix: "global:deps",
    });
    const rules = redisAcl(ks, { depsWritable: true });
    expect(rules.some((r) => r.startsWith(">") || r.startsWith("#") || r === "nopass")).toBe(false);
    expect(rules.filter((r) => r.includes("~"))).toEqual([
      "~app:eu:ws:w.1:*",
      "%W~app:eu#workspaces:w.1",
      "%W~app:eu#workspaces#index",
      "%W~app:eu#workspaces#ttl",
      "%R~app:eu#quota:w.1",
      "%RW~global:deps:*",
      "%RW~global:deps#*",
      "%RW~app:eu:shared:*",
      "%RW~app:eu:shared#*",
    ]);
  });

  it("refuses an unscoped keyspace and bad passwords, without echoing the password", () => {
    expect(() => redisAcl(keyspace({ root: "app" }))).toThrow(InvalidWorkspaceIdError);
    expect(() => workspaceUsername(keyspace({ root: "app" }))).toThrow(InvalidWorkspaceIdError);
    const ks = keyspace({ root: "app", workspaceId: "a" });
    for (const password of ["", "has space", "tab\there"]) {
      try {
        redisAcl(ks, { password });
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidArgumentError);
        if (password) expect((error as Error).message).not.toContain(password);
      }
    }
    expect(() => redisAcl(ks, { passwordSha256: "abc" })).toThrow(InvalidArgumentError);
  });
});

describe("workspace ACL users on Redis", () => {
  const root = randomRoot("acl");
  const passwords = { a: secret(), b: secret(), w: secret() };
  const users: string[] = [];
  let urlA = "";
  let urlW = "";
  let admin: WorkspaceStorage;
  const opened: WorkspaceStorage[] = [];

  beforeAll(async () => {
    const ksA = keyspace({ root, workspaceId: "a" });
    const a = await provisionWorkspaceUser(REDIS_URL, ksA, { password: passwords.a });
    expect(a.username).toBe(`kvws:${root}:a`);
    const b = await provisionWorkspaceUser(REDIS_URL, ksA.withWorkspace("b"), { password: passwords.b });
    const w = await provisionWorkspaceUser(REDIS_URL, ksA.withWorkspace("w"), {
      password: passwords.w,
      username: `kvwst_${randomBytes(4).toString("hex")}`,
      depsWritable: true,
    });
    users.push(a.username, b.username, w.username);
    urlA = a.url;
    urlW = w.url;
    admin = await openStorage({ url: REDIS_URL, root, workspaceId: null });
    await admin.deps.add("lodash@^4.17.0");
    await admin.withWorkspace("b").artifacts.save("b-secret", { only: "b" });
    await admin.artifacts.save("legacy-secret", { only: "unscoped" });
  });

  afterAll(async () => {
    for (const s of opened) await s.close();
    await admin?.close();
    for (const user of users) await revokeWorkspaceUser(REDIS_URL, user);
    const raw = await rawRedis();
    try {
      await deleteUnder(raw, root);
      const left = (await raw.sendCommand(["ACL", "USERS"])) as string[];
      expect(left.filter((u) => users.includes(u))).toEqual([]);
    } finally {
      await raw.close();
    }
  });

  const openAs = async (url: string, workspaceId = "a") => {
    const storage = await openStorage({ url, root, workspaceId });
    opened.push(storage);
    return storage;
  };

  it("lets a workspace user do every operation of every collection in its workspace", async () => {
    const s = await openAs(urlA);
    // artifacts
    await s.artifacts.save("report", { rows: 3 }, { description: "r", metadata: { k: 1 } });
    await s.artifacts.save("blob", new Uint8Array([1, 2, 3]));
    expect(await s.artifacts.load("report")).toEqual({ rows: 3 });
    expect(await s.artifacts.load("blob")).toEqual(new Uint8Array([1, 2, 3]));
    expect((await s.artifacts.info("report"))?.description).toBe("r");
    // A save of a name this storage knows is one SET … XX GET, which reads as well as writes.
    const created = (await s.artifacts.info("report"))?.createdAt;
    expect((await s.artifacts.save("report", { rows: 4 }, { description: "r" })).createdAt).toBe(created);
    expect(await s.artifacts.load("report")).toEqual({ rows: 4 });
    expect(await s.artifacts.has("report")).toBe(true);
    expect((await s.artifacts.list()).map((i) => i.name)).toEqual(["blob", "report"]);
    // expiring artifacts and pages (ZRANGE BYLEX, ZMSCORE on #ttl, the prune's reads)
    await s.artifacts.save("brief", 1, { ttl: 60_000 });
    await s.artifacts.save("brief2", 2, { ttl: 60_000 });
    expect((await s.artifacts.list({ after: "blob", limit: 2 })).map((i) => i.name)).toEqual(["brief", "brief2"]);
    expect((await s.artifacts.list({ prefix: "rep", limit: 5 })).map((i) => i.name)).toEqual(["report"]);
    expect(await s.artifacts.delete("brief")).toBe(true);
    expect(await s.artifacts.delete("brief2")).toBe(true);
    expect(await s.artifacts.delete("blob")).toBe(true);
    // workflows
    await s.workflows.add({ name: "summarise", source: "print(1)", description: "summarise a report" });
    await s.workflows.add({ name: "fetch", source: "get()", description: "download a web page" });
    expect((await s.workflows.get("fetch"))?.source).toBe("get()");
    expect((await s.workflows.search("summarise report", { limit: 1 }))[0]?.name).toBe("summarise");
    expect((await s.workflows.list()).map((w) => w.name)).toEqual(["fetch", "summarise"]);
    expect(await s.workflows.delete("fetch")).toBe(true);
    // vectors
    await s.vectors.upsert("x", [1, 0, 0], { tag: "x" });
    await s.vectors.upsert("y", [0, 1, 0]);
    expect((await s.vectors.search([0.9, 0.1, 0], { k: 1 }))[0]?.id).toBe("x");
    expect(await s.vectors.count()).toBe(2);
    expect((await s.vectors.get("x"))?.metadata).toEqual({ tag: "x" });
    expect(await s.vectors.delete("y")).toBe(true);
    // deps: read-only, shared
    expect(await s.deps.list()).toEqual(["lodash@^4.17.0"]);
    expect(await s.deps.has("lodash")).toBe(true);
    // a free-form collection through Keyv, TTL writes included
    const notes = s.collection("notes");
    await notes.set("n1", { text: "one" });
    await notes.set("n2", "two", 60_000);
    await notes.set("n3", "three");
    expect(await notes.get("n1")).toEqual({ text: "one" });
    expect(await notes.has("n2")).toBe(true);
    expect(await notes.getMany(["n1", "n3"])).toEqual([{ text: "one" }, "three"]);
    expect(await notes.delete("n3")).toBe(true);
    const seen: string[] = [];
    expect(notes.iterator).toBeTypeOf("function");
    for await (const [key] of notes.iterator!(undefined)) seen.push(key as string);
    expect(seen.sort()).toEqual(["n1", "n2"]);
    await notes.clear();
    expect(await notes.get("n1")).toBeUndefined();
    // what it wrote is all in its own workspace
    const raw = await rawRedis();
    try {
      const keys = await keysUnder(raw, root);
      const mine = keys.filter((k) => k.startsWith(`${root}:ws:a:`));
      expect(mine.length).toBeGreaterThan(0);
      expect(
        keys
          .filter((k) => !k.startsWith(`${root}:ws:`))
          .every(
            (k) =>
              k.startsWith(`${root}:deps`) ||
              k.startsWith(`${root}:artifacts`) ||
              // the registries (lib/lifecycle/registry.ts): the root's workspaces, the unscoped collections
              k.startsWith(`${root}#workspaces`) ||
              k.startsWith(`${root}:#collections`),
          ),
      ).toBe(true);
    } finally {
      await raw.close();
    }
    // the app's URL carried the password, so its bootstrap config does too (and nothing else does)
    expect(s.toBootstrapConfig().url).toBe(urlA);
  });

  it("refuses, with a typed error, writes to shared deps and any access to another workspace", async () => {
    const s = await openAs(urlA);
    const denied = async (what: Promise<unknown>) => {
      const error = await what.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: "ERR_PERMISSION_DENIED" });
      expect((error as Error).message).not.toContain(passwords.a);
    };
    await denied(s.deps.add("evil@1.0.0"));
    await denied(s.deps.remove("lodash"));
    await denied(s.collection("deps").clear());
    const b = s.withWorkspace("b");
    await denied(b.artifacts.load("b-secret"));
    await denied(b.artifacts.list());
    await denied(b.artifacts.save("planted", 1));
    await denied(b.artifacts.delete("b-secret"));
    await denied(b.collection("notes").clear());
    await denied(s.withWorkspace(null).artifacts.load("legacy-secret"));
    // nothing changed
    expect(await admin.deps.list()).toEqual(["lodash@^4.17.0"]);
    expect(await admin.withWorkspace("b").artifacts.load("b-secret")).toEqual({ only: "b" });
    expect((await admin.withWorkspace("b").artifacts.list()).map((i) => i.name)).toEqual(["b-secret"]);
  });

  it("lets a depsWritable user maintain deps", async () => {
    const s = await openAs(urlW, "w");
    await s.deps.add("zod@^4.0.0");
    expect(await admin.deps.list()).toEqual(["lodash@^4.17.0", "zod@^4.0.0"]);
    expect(await s.deps.remove("zod")).toBe(true);
    expect(
      await s
        .withWorkspace("a")
        .artifacts.list()
        .catch((e: { code: string }) => e.code),
    ).toBe("ERR_PERMISSION_DENIED");
  });

  it("gets NOPERM from Redis itself for everything outside its workspace (raw client)", async () => {
    const user = createClient({ url: urlA });
    user.on("error", () => {});
    await user.connect();
    const adminRaw = await rawRedis();
    let verified = 0;
    const expectDenied = async (args: string[]) => {
      const error = await user.sendCommand(args).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error?.message, args.join(" ")).toMatch(/^NOPERM|user executing the script can't/);
      verified++;
    };
    try {
      const bKey = `${root}:ws:b:artifacts:b-secret`;
      const bIndex = `${root}:ws:b:artifacts#index`;
      const depsKey = `${root}:deps:lodash`;
      const depsIndex = `${root}:deps#index`;
      // sanity: the user does reach its own keys and reads deps
      expect(await user.sendCommand(["SET", `${root}:ws:a:raw:k`, "v"])).toBe("OK");
      expect(String(await user.sendCommand(["GET", depsKey]))).toContain("lodash@^4.17.0");
      // no scripts at all, read-only ones included: a tenant runs no code of its own on the server
      await expectDenied(["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", depsKey]);
      await expectDenied(["EVAL", "return redis.call('GET', KEYS[1])", "1", depsKey]);
      await expectDenied(["SCRIPT", "LOAD", "return 1"]);
      // another workspace, every way in
      await expectDenied(["GET", bKey]);
      await expectDenied(["MGET", `${root}:ws:a:raw:k`, bKey]);
      await expectDenied(["EXISTS", bKey]);
      await expectDenied(["SET", bKey, "x"]);
      await expectDenied(["DEL", bKey]);
      await expectDenied(["UNLINK", bKey]);
      await expectDenied(["ZRANGE", bIndex, "0", "-1"]);
      await expectDenied(["ZADD", bIndex, "1", "planted"]);
      await expectDenied(["PTTL", bKey]);
      await expectDenied(["EVAL", "return redis.call('GET', KEYS[1])", "1", bKey]);
      await expectDenied(["EVAL", "return redis.call('GET', ARGV[1])", "0", bKey]);
      await expectDenied(["EVAL", "return redis.call('DEL', ARGV[1])", "0", bKey]);
      // a sibling workspace id that shares a prefix, and the unscoped legacy layout
      await expectDenied(["GET", `${root}:ws:ab:artifacts:x`]);
      await expectDenied(["GET", `${root}:artifacts:legacy-secret`]);
      await expectDenied(["SET", `${root}:ws:a`, "x"]);
      // shared deps are read-only
      await expectDenied(["SET", depsKey, "evil@1"]);
      await expectDenied(["DEL", depsKey]);
      await expectDenied(["ZADD", depsIndex, "+inf", "evil"]);
      await expectDenied(["ZREM", depsIndex, "lodash"]);
      await expectDenied(["EVAL", "return redis.call('SET', ARGV[1], 'x')", "0", depsKey]);
      // keyspace-wide and server commands
      await expectDenied(["SCAN", "0"]);
      await expectDenied(["KEYS", "*"]);
      await expectDenied(["RANDOMKEY"]);
      await expectDenied(["CONFIG", "GET", "maxmemory"]);
      await expectDenied(["CONFIG", "SET", "maxmemory", "1"]);
      await expectDenied(["INFO"]);
      await expectDenied(["DBSIZE"]);
      await expectDenied(["CLIENT", "LIST"]);
      await expectDenied(["CLIENT", "KILL", "ID", "1"]);
      await expectDenied(["ACL", "LIST"]);
      await expectDenied(["ACL", "SETUSER", "intruder", "on", "nopass", "~*", "+@all"]);
      await expectDenied(["SCRIPT", "FLUSH"]);
      await expectDenied(["OBJECT", "ENCODING", bKey]);
      await expectDenied(["MOVE", `${root}:ws:a:raw:k`, "1"]);
      await expectDenied(["SUBSCRIBE", "ch"]);
      await expectDenied(["PUBLISH", "ch", "x"]);
      await expectDenied(["SORT", bKey]);
      await expectDenied(["RENAME", `${root}:ws:a:raw:k`, `${root}:ws:b:raw:k`]);
      await expectDenied(["COPY", bKey, `${root}:ws:a:raw:copy`]);
      await expectDenied(["DUMP", bKey]);
      // Commands that would damage the shared server if the ACL were wrong: ACL DRYRUN proves the
      // refusal first, and only then does the user's connection send them.
      for (const args of [
        ["FLUSHDB"],
        ["FLUSHALL"],
        ["SWAPDB", "0", "1"],
        ["DEBUG", "SLEEP", "0"],
        ["SHUTDOWN", "NOSAVE"],
        ["MONITOR"],
        ["SCRIPT", "KILL"],
        ["FUNCTION", "FLUSH"],
      ]) {
        const dry = String(await adminRaw.sendCommand(["ACL", "DRYRUN", `kvws:${root}:a`, ...args]));
        expect(dry, args.join(" ")).toMatch(/no permissions/);
        // SHUTDOWN and MONITOR are not sent even so; DEBUG may be disabled server-wide, which answers before the ACL does.
        if (["SHUTDOWN", "MONITOR", "DEBUG"].includes(args[0] as string)) verified++;
        else await expectDenied(args);
      }
      expect(await adminRaw.get(bKey)).not.toBeNull();
      expect(await adminRaw.get(depsKey)).toContain("lodash@^4.17.0");
      console.log(`ACL denials verified: ${verified}`);
      expect(verified).toBeGreaterThanOrEqual(45);
    } finally {
      await user.close();
      await adminRaw.close();
    }
  });

  it("refuses wrong credentials with ERR_AUTH, never echoing the password, and revoked users", async () => {
    const wrong = secret();
    const bad = urlA.replace(encodeURIComponent(passwords.a), wrong);
    const error = await openStorage({ url: bad, root, workspaceId: "a" }).catch((e: Error) => e);
    expect(error).toMatchObject({ code: "ERR_AUTH" });
    expect((error as Error).message).not.toContain(wrong);
    expect((error as Error).message).toContain("***");

    const ks = keyspace({ root, workspaceId: "gone" });
    const gone = await provisionWorkspaceUser(REDIS_URL, ks, { password: secret() });
    users.push(gone.username);
    const ok = await openStorage({ url: gone.url, root, workspaceId: "gone" });
    await ok.artifacts.save("x", 1);
    await ok.close();
    expect(await revokeWorkspaceUser(REDIS_URL, ks)).toBe(true);
    expect(await revokeWorkspaceUser(REDIS_URL, ks)).toBe(false);
    await expect(openStorage({ url: gone.url, root, workspaceId: "gone" })).rejects.toMatchObject({ code: "ERR_AUTH" });
  });

  it("re-provisioning replaces the rules: a new password (with URL-special characters) works, the old one no longer does", async () => {
    const ks = keyspace({ root, workspaceId: "rotate" });
    const first = await provisionWorkspaceUser(REDIS_URL, ks, { password: secret() });
    users.push(first.username);
    const second = await provisionWorkspaceUser(REDIS_URL, ks, { password: `${secret()}@:/%#?` }); // needs URL encoding
    expect(second.username).toBe(first.username);
    await expect(openStorage({ url: first.url, root, workspaceId: "rotate" })).rejects.toMatchObject({
      code: "ERR_AUTH",
    });
    const s = await openAs(second.url, "rotate");
    await s.artifacts.save("ok", true);
    expect(await s.artifacts.load("ok")).toBe(true);
  });
});
