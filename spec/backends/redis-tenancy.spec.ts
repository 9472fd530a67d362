/**
 * What a tenant may do on a shared Redis, and what a long-lived reader may believe after the
 * server lost writes. Both need a private redis-server (ACL users; a restart from a snapshot).
 */
import { createClient } from "@redis/client";
import { afterEach, describe, expect, it } from "vitest";
import { provisionWorkspaceUser } from "../../lib/acl.js";
import type { PrefixStore } from "../../lib/backends/driver.js";
import { redisDriver } from "../../lib/backends/redis/driver.js";
import { connectRedis, type RedisConnection } from "../../lib/backends/redis/open.js";
import { keyspace } from "../../lib/keys.js";
import { listNames } from "../support/prefix-store.js";
import { startPrivateRedis } from "../support/servers.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function open(url: string): Promise<RedisConnection> {
  const connection = await connectRedis(url, { connectTimeoutMs: 2000 });
  cleanups.push(() => connection.close());
  return connection;
}

async function stored(store: PrefixStore): Promise<Record<string, unknown>> {
  const names = await listNames(store);
  const values = await store.getMany(names);
  return Object.fromEntries(names.map((name, i) => [name, values[i]]));
}

describe("a workspace ACL user", () => {
  it("runs every PrefixStore operation in its workspace, reads deps, and may run no code of its own", async () => {
    const { server } = await startPrivateRedis(cleanups);
    const ks = keyspace({ root: "app", workspaceId: "a" });
    const admin = redisDriver(async () => (await open(server.url)).commander);
    await admin.scope(ks.prefix("deps")).set("lodash", "4.17");
    const { url } = await provisionWorkspaceUser(server.url, ks, { password: "tenant-secret" });
    const tenant = await open(url);
    const driver = redisDriver(async () => tenant.commander);

    for (const prefix of [ks.prefix("artifacts"), ks.prefix("vectors"), `${ks.prefix("workflows")}#vectors`]) {
      const s = driver.scope(prefix);
      await s.set("x", "1");
      await s.set("t", "2", 60_000);
      await s.setMany([
        { name: "y", value: "3" },
        { name: "z", value: "4", ttl: 60_000 },
      ]);
      expect(await s.get("x")).toBe("1");
      expect(await s.getMany(["x", "y"])).toEqual(["1", "3"]);
      expect(await s.has("t")).toBe(true);
      const v = s.version ? await s.version() : undefined;
      expect(await s.delete("x")).toBe(true);
      expect(await s.deleteMany(["y", "nope"])).toBe(1);
      if (s.changedSince && v !== undefined) {
        // A delete of a missing name may be logged too: a cache just rechecks it.
        expect((await s.changedSince(v))?.filter((n) => n !== "nope").sort()).toEqual(["x", "y"]);
      }
      expect(await listNames(s)).toEqual(["t", "z"]);
      await s.clear();
      expect(await listNames(s)).toEqual([]);
      if (s.version) expect(await s.version()).toBe("0");
    }

    const deps = driver.scope(ks.prefix("deps"));
    expect(await deps.get("lodash")).toBe("4.17");
    expect(await listNames(deps)).toEqual(["lodash"]);
    await expect(deps.set("evil", "1")).rejects.toMatchObject({ code: "ERR_PERMISSION_DENIED" });
    await expect(deps.delete("lodash")).rejects.toMatchObject({ code: "ERR_PERMISSION_DENIED" });
    await expect(deps.clear()).rejects.toMatchObject({ code: "ERR_PERMISSION_DENIED" });
    expect(await stored(deps)).toEqual({ lodash: "4.17" });
    // Another workspace is out of reach too.
    await expect(driver.scope("app:ws:b:artifacts").set("x", "1")).rejects.toMatchObject({
      code: "ERR_PERMISSION_DENIED",
    });

    // No caller-supplied code: a script could block every tenant, loading them grows memory outside any key.
    const attempts = [
      ["EVAL", "while true do end", "0"],
      ["EVAL_RO", "return 1", "0"],
      ["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
      ["SCRIPT", "LOAD", "return 1"],
      ["FUNCTION", "LOAD", "#!lua name=evil\nredis.register_function('f', function() return 1 end)"],
      ["FCALL", "f", "0"],
    ];
    for (const command of attempts) {
      const error = await tenant.commander.sendCommand(command).catch((e: unknown) => e);
      expect(error, command.join(" ")).toMatchObject({ code: "ERR_PERMISSION_DENIED" });
      expect(String((error as { cause: Error }).cause?.message)).toMatch(/^NOPERM/);
    }
  });
});

/** A cache that follows a prefix by version, as the vector index does. */
class Reader {
  view = new Map<string, unknown>();
  version = "";
  constructor(readonly store: PrefixStore) {}
  async sync(): Promise<void> {
    const now = await this.store.version!();
    if (now === this.version) return;
    const changed = this.version === "" ? undefined : await this.store.changedSince!(this.version);
    if (changed === undefined) {
      this.view = new Map(Object.entries(await stored(this.store)));
    } else {
      const values = await this.store.getMany(changed);
      for (const [i, name] of changed.entries()) {
        if (values[i] === undefined) this.view.delete(name);
        else this.view.set(name, values[i]);
      }
    }
    this.version = now;
  }
}

describe("versions after Redis lost writes (restart from an older snapshot)", () => {
  it("never repeat: an old reader's next view equals what is stored", async () => {
    const { server } = await startPrivateRedis(cleanups, ["--dbfilename", "dump.rdb"]);
    let connection = await open(server.url);
    const store = redisDriver(async () => connection.commander).scope("app:ws:a:vectors");
    await store.set("a", "1");
    await store.set("b", "1");
    const admin = createClient({ url: server.url });
    admin.on("error", () => {});
    await admin.connect();
    await admin.sendCommand(["SAVE"]);
    admin.destroy();
    await store.set("c", "1");
    await store.set("d", "1");
    const reader = new Reader(store);
    await reader.sync();
    const seen = reader.version;
    expect(Object.fromEntries(reader.view)).toEqual({ a: "1", b: "1", c: "1", d: "1" });

    // kill -9: nothing after the snapshot survives (saving is off: --save "").
    await connection.close();
    await server.kill();
    await server.start();
    connection = await open(server.url);
    expect(await stored(store)).toEqual({ a: "1", b: "1" });
    // As many writes as were lost: a counter would be back at the reader's number now.
    await store.set("e", "2");
    await store.set("f", "2");
    expect(await store.version!()).not.toBe(seen);
    await reader.sync();
    expect(Object.fromEntries(reader.view)).toEqual(await stored(store));
    expect(Object.fromEntries(reader.view)).toEqual({ a: "1", b: "1", e: "2", f: "2" });
  });
});
