import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { LOG_LIMIT } from "../../lib/backends/change-log.js";
import type { PrefixStore } from "../../lib/backends/driver.js";
import { type RedisDriverOptions, redisDriver } from "../../lib/backends/redis/driver.js";
import { connectRedis, type RedisConnection } from "../../lib/backends/redis/open.js";
import { deleteUnder, keysUnder, type RawRedis, REDIS_URL, randomRoot, rawRedis } from "../support/env.js";
import { listNames } from "../support/prefix-store.js";
import { type Cleanups, commandsSent, startPrivateRedis } from "../support/servers.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let raw: RawRedis;
let connection: RedisConnection;
const roots: string[] = [];
function root(): string {
  const r = randomRoot("rstore");
  roots.push(r);
  return r;
}
function scope(prefix: string, options: RedisDriverOptions = {}): PrefixStore {
  return redisDriver(async () => connection.commander, options).scope(prefix);
}

beforeAll(async () => {
  raw = await rawRedis();
  connection = await connectRedis(REDIS_URL);
});

afterAll(async () => {
  for (const r of roots) await deleteUnder(raw, r);
  await connection.close();
  await raw.quit();
});

describe("redis PrefixStore: values, index and TTL", () => {
  let prefix: string;
  beforeEach(() => {
    prefix = `${root()}:ws:a:artifacts`;
  });

  it("keeps an untracked prefix to a value and an index member: no log, no version, no counter", async () => {
    const s = scope(prefix);
    expect(s.version).toBeUndefined();
    expect(s.changedSince).toBeUndefined();
    await s.set("a", "1");
    await s.setMany([
      { name: "b", value: "2" },
      { name: "c:*", value: "3" },
    ]);
    expect(await keysUnder(raw, prefix)).toEqual([`${prefix}#index`, `${prefix}:a`, `${prefix}:b`, `${prefix}:c:*`]);
    expect(await s.get("a")).toBe("1");
    expect(await s.getMany(["a", "missing", "c:*"])).toEqual(["1", undefined, "3"]);
    expect(await s.has("b")).toBe(true);
    expect(await s.delete("b")).toBe(true);
    expect(await s.delete("b")).toBe(false);
    expect(await s.deleteMany(["a", "c:*", "nope"])).toBe(2);
    expect(await keysUnder(raw, prefix)).toEqual([]);
  });

  it("hides expired names at once and drops them from the index on the next TTL write", async () => {
    const s = scope(prefix);
    await s.set("keep", "v");
    await s.set("short", "v", 60);
    await s.setMany([
      { name: "short2", value: "v", ttl: 60 },
      { name: "long", value: "v", ttl: 600_000 },
    ]);
    expect(await listNames(s)).toEqual(["keep", "long", "short", "short2"]);
    // Index members all score 0 (pages are BYLEX ranges); expiries live in #ttl.
    expect(await raw.zScore(`${prefix}#index`, "long")).toBe(0);
    const score = Number(await raw.zScore(`${prefix}#ttl`, "long"));
    // Scored on the server's clock: within a second of TIME + ttl.
    const [sec] = (await raw.sendCommand(["TIME"])) as [string];
    expect(Math.abs(score - (Number(sec) * 1000 + 600_000))).toBeLessThan(2000);
    await sleep(200);
    expect(await s.get("short")).toBeUndefined();
    expect(await listNames(s)).toEqual(["keep", "long"]);
    // Listing never writes, and a plain write does not prune: only TTL writes do.
    expect(await raw.zCard(`${prefix}#index`)).toBe(4);
    await s.set("other", "v");
    expect(await raw.zCard(`${prefix}#index`)).toBe(5);
    await s.set("ttl", "v", 600_000);
    expect((await raw.zRange(`${prefix}#index`, 0, -1)).sort()).toEqual(["keep", "long", "other", "ttl"]);
    expect((await raw.zRange(`${prefix}#ttl`, 0, -1)).sort()).toEqual(["long", "ttl"]);
  });

  it("keeps a timed name rewritten without a TTL listed, counted and stored after its old expiry", async () => {
    const s = scope(prefix);
    await s.set("b", "v", 60);
    await s.set("gone", "v", 60);
    // A plain overwrite is one SET XX: the #ttl entry stays behind as a stale hint.
    await s.set("b", "v2");
    expect(await raw.pTTL(`${prefix}:b`)).toBe(-1);
    expect(await raw.zScore(`${prefix}#ttl`, "b")).not.toBeNull();
    await sleep(150);
    expect(await listNames(s)).toEqual(["b"]);
    expect(await s.page!({ limit: 10 })).toEqual(["b"]);
    expect(await s.stats!()).toEqual({ entries: 1, bytes: 2 });
    const scanned: string[] = [];
    for await (const names of s.scan!()) scanned.push(...names);
    expect(scanned).toEqual(["b"]);
    // The next TTL write prunes: the gone name from both sets, the stale hint from #ttl only.
    await s.set("t", "v", 600_000);
    expect(await s.get("b")).toBe("v2");
    expect(await raw.zScore(`${prefix}#ttl`, "b")).toBeNull();
    expect((await raw.zRange(`${prefix}#index`, 0, -1)).sort()).toEqual(["b", "t"]);
    expect(await listNames(s)).toEqual(["b", "t"]);
  });

  it("expires a timed value at exactly the instant its #ttl entry records", async () => {
    const s = scope(prefix);
    const names = Array.from({ length: 20 }, (_, i) => `t${i}`);
    for (const name of names) await s.set(name, "v", 600_000 + (names.indexOf(name) % 7));
    await s.setMany(names.slice(0, 5).map((name) => ({ name, value: "w", ttl: 500_000 })));
    for (const name of names) {
      const at = Number(await raw.sendCommand(["PEXPIRETIME", `${prefix}:${name}`]));
      expect(at).toBe(Number(await raw.zScore(`${prefix}#ttl`, name)));
    }
  });

  it("lists every name once across many ZSCAN pages and clears them all in batches, leaving no key", async () => {
    const s = scope(prefix);
    const all = Array.from({ length: 2500 }, (_, i) => `n:${i}*?[x]`);
    await s.setMany(all.map((name) => ({ name, value: "v" })));
    expect(await listNames(s)).toEqual([...all].sort());
    await s.clear();
    expect(await listNames(s)).toEqual([]);
    expect(await keysUnder(raw, prefix)).toEqual([]);
  });

  it("creates no key when an empty prefix is cleared, tracked or not", async () => {
    const r = root();
    for (const p of [`${r}:ws:a:artifacts`, `${r}:ws:a:vectors`, `${r}:ws:a:workflows#vectors`]) {
      await scope(p).clear();
    }
    expect(await keysUnder(raw, r)).toEqual([]);
  });

  it("leaves no key naming cleared data behind on a tracked prefix, and readers then reload", async () => {
    const p = `${root()}:ws:a:workflows#vectors`;
    const s = scope(p);
    await s.set("wf-secret-name", "embedding");
    const v = await s.version!();
    await s.delete("wf-secret-name");
    await s.set("other", "x");
    await s.clear();
    expect(await keysUnder(raw, p)).toEqual([]);
    expect(await s.version!()).toBe("0");
    expect(await s.changedSince!(v)).toBeUndefined();
    expect(await s.changedSince!("0")).toEqual([]);
  });

  it("refuses what Redis cannot keep apart, and non-string values, before any I/O", async () => {
    const s = scope(prefix);
    await expect(s.set("\uD800", "v")).rejects.toMatchObject({ code: "ERR_INVALID_NAME" });
    await expect(s.set("x", 5 as unknown as string)).rejects.toMatchObject({ code: "ERR_INVALID_VALUE" });
    expect(await keysUnder(raw, prefix)).toEqual([]);
  });

  it("maps other server replies to typed errors with the reply as cause", async () => {
    const s = scope(prefix);
    await raw.set(`${prefix}#index`, "not a sorted set");
    const error = await s.set("x", "v").catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ERR_STORE_COMMAND" });
    expect(String((error as Error & { cause: Error }).cause.message)).toMatch(/WRONGTYPE/);
    await raw.del(`${prefix}#index`);
  });
});

describe("redis PrefixStore: commands per write", () => {
  const cleanups: Cleanups = [];
  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("overwrites an existing name with one SET XX, and writes a new one, a TTL or a tracked prefix in a MULTI", async () => {
    const { server, admin } = await startPrivateRedis(cleanups);
    const own = await connectRedis(server.url);
    cleanups.push(() => own.close());
    const driver = redisDriver(async () => own.commander);
    const plain = driver.scope("r:ws:a:things");
    const tracked = driver.scope("r:ws:a:vectors");
    const sent = (work: () => Promise<unknown>) => commandsSent(admin, work);
    await plain.get("a"); // its first command also checks the layout (EXISTS …#data) once
    expect(await sent(() => plain.set("a", "1"))).toEqual({ multi: 1, zadd: 1, set: 2, exec: 1 });
    expect(await sent(() => plain.set("a", "2"))).toEqual({ set: 1 });
    expect(await plain.get("a")).toBe("2");
    expect(await sent(() => plain.set("a", "3", 600_000))).toMatchObject({ multi: 1, exec: 1 });
    await tracked.set("v", "1");
    expect(await sent(() => tracked.set("v", "2"))).toMatchObject({ multi: 1, xadd: 1, exec: 1 });
    // A deleted name is new again: its SET XX is refused and the MULTI gives it its member back.
    await plain.delete("a");
    expect(await sent(() => plain.set("a", "4"))).toMatchObject({ multi: 1, zadd: 1 });
    expect(await listNames(plain)).toEqual(["a"]);
    // A run of new names stops probing after 4 refusals, for 16 writes, then 32 after the next refusal.
    const fresh = driver.scope("r:ws:a:fresh");
    await fresh.get("x");
    const names = (from: number, to: number) => async () => {
      for (let i = from; i < to; i++) await fresh.set(`n${i}`, "v");
    };
    expect(await sent(names(0, 20))).toMatchObject({ set: 20 + 4, multi: 20 });
    expect(await sent(names(20, 21))).toMatchObject({ set: 2, multi: 1 });
    expect(await sent(names(21, 53))).toMatchObject({ set: 32, multi: 32 });
    // Then it probes again; an accepted overwrite ends the run, and overwrites are one SET each.
    expect(await sent(() => fresh.set("n0", "w"))).toEqual({ set: 1 });
    expect(await sent(() => fresh.set("n1", "w"))).toEqual({ set: 1 });
    expect(await fresh.getMany(["n0", "n1", "n2"])).toEqual(["w", "w", "v"]);
    expect(await listNames(fresh)).toHaveLength(53);
    // The skip doubles with each refused probe, to at most 1024 writes: the documented policy, replayed.
    const many = driver.scope("r:ws:a:many");
    await many.get("x");
    const total = 3100;
    let probes = 0;
    for (let i = 0, refusals = 0, skip = 0; i < total; i++) {
      if (skip > 0) skip--;
      else if (++probes && ++refusals >= 4) skip = Math.min(1024, 16 * 2 ** (refusals - 4));
    }
    const calls = await sent(async () => {
      for (let i = 0; i < total; i++) await many.set(`m${i}`, "v");
    });
    expect(calls).toMatchObject({ set: total + probes, multi: total });
    expect(probes).toBe(12); // 4, then one per skip of 16, 32, …, 1024, 1024, 1024
  });
});

describe("redis PrefixStore: versions and change log", () => {
  let prefix: string;
  beforeEach(() => {
    prefix = `${root()}:ws:a:vectors`;
  });

  it("changes the version on every write, and returns exactly the names written since", async () => {
    const s = scope(prefix);
    expect(await s.version!()).toBe("0");
    await s.set("a", "1");
    const v1 = await s.version!();
    expect(await s.changedSince!(v1)).toEqual([]);
    await s.set("b", "2");
    await s.setMany([
      { name: "c", value: "3" },
      { name: "b", value: "4" },
    ]);
    const v2 = await s.version!();
    await s.delete("a");
    const v3 = await s.version!();
    expect(new Set([v1, v2, v3]).size).toBe(3);
    expect((await s.changedSince!(v1))?.sort()).toEqual(["a", "b", "c"]);
    expect(await s.changedSince!(v2)).toEqual(["a"]);
    expect(await s.changedSince!(v3)).toEqual([]);
    // Reads, and writes to neighbouring prefixes, leave it alone.
    await s.get("a");
    await listNames(s);
    await scope(`${prefix}x`).set("a", "1");
    await scope(`${prefix}:sub`).set("a", "1");
    expect(await s.version!()).toBe(v3);
  });

  it("says undefined when the log no longer reaches back, after a clear, or for a version it never gave", async () => {
    const s = scope(prefix, { logLimit: 5 });
    await s.set("a", "1");
    const v1 = await s.version!();
    for (const name of ["b", "c", "d", "e"]) await s.set(name, "x");
    expect((await s.changedSince!(v1))?.sort()).toEqual(["b", "c", "d", "e"]);
    for (let i = 0; i < 300; i++) await s.set(`f${i}`, "x");
    const recent = await s.version!();
    await s.set("g", "x");
    expect(await s.changedSince!(v1)).toBeUndefined();
    expect(await s.changedSince!(recent)).toEqual(["g"]);
    expect(await raw.xLen(`${prefix}#log`)).toBeLessThanOrEqual(5 + 100);
    const beforeClear = await s.version!();
    await s.clear();
    await s.set("z", "x");
    expect(await s.changedSince!(beforeClear)).toBeUndefined();
    expect(await s.changedSince!("0")).toBeUndefined();
    for (const bad of ["", "abc", "-1", "1.5", "1-2-3", "99999999999999999999999-0"]) {
      expect(await s.changedSince!(bad)).toBeUndefined();
    }
    const [ms] = (await s.version!()).split(/[-.]/);
    expect(await s.changedSince!(`${Number(ms) + 10}-0`)).toBeUndefined();
  });

  it("keeps at least LOG_LIMIT entries by default, and about 100 more at most", async () => {
    const s = scope(prefix);
    await s.set("first", "v");
    const v0 = await s.version!();
    for (let i = 0; i < LOG_LIMIT; i++) await s.set(`n${i}`, "v");
    expect(await s.changedSince!(v0)).toHaveLength(LOG_LIMIT);
    for (let i = 0; i < 200; i++) await s.set(`m${i}`, "v");
    expect(await raw.xLen(`${prefix}#log`)).toBeGreaterThanOrEqual(LOG_LIMIT);
    expect(await raw.xLen(`${prefix}#log`)).toBeLessThanOrEqual(LOG_LIMIT + 100);
  });

  it("never answers 'unchanged' for a log lost on its own", async () => {
    const s = scope(prefix);
    await s.set("a", "1");
    const v = await s.version!();
    await raw.del(`${prefix}#log`);
    const lost = await s.version!();
    expect(lost).not.toBe(v);
    expect(lost).not.toBe("0");
    expect(await s.version!()).not.toBe(lost); // nothing vouches for the data: no two answers alike
    expect(await s.changedSince!(v)).toBeUndefined();
    expect(await s.changedSince!("0")).toBeUndefined();
  });
});

describe("redis PrefixStore against a model", () => {
  it("lists exactly the model's names and reports every name written since any earlier version", async () => {
    const r = root();
    let run = 0;
    const name = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom("a", "b", "c:d", "*?[", "é") },
      { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 4 }) },
    );
    const op = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constant("set" as const), p: fc.nat(2), name }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("delete" as const), p: fc.nat(2), name }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("clear" as const), p: fc.nat(2) }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant("check" as const), p: fc.nat(2), back: fc.nat(6) }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 10, maxLength: 40 }), async (ops) => {
        run++;
        // Neighbours that a sloppy prefix match would mix up; all tracked.
        const prefixes = [`${r}:ws:a${run}:vectors`, `${r}:ws:a${run}b:vectors`, `${r}:x${run}:vectors`];
        const stores = prefixes.map((p) => scope(p));
        for (const s of stores) await s.set("seed", "v");
        const live = prefixes.map(() => new Set<string>(["seed"]));
        // Per prefix: every version seen, with the names the write that produced it touched (null = clear).
        const history = await Promise.all(
          stores.map(async (s) => [{ version: await s.version!(), touched: [] as string[] | null }]),
        );
        for (const o of ops) {
          const s = stores[o.p]!;
          let touched: string[] | null;
          if (o.kind === "set") {
            await s.set(o.name, "v");
            live[o.p]!.add(o.name);
            touched = [o.name];
          } else if (o.kind === "delete") {
            expect(await s.delete(o.name)).toBe(live[o.p]!.delete(o.name));
            touched = [o.name];
          } else if (o.kind === "clear") {
            await s.clear();
            live[o.p]!.clear();
            touched = null;
          } else {
            expect(await listNames(s)).toEqual([...live[o.p]!].sort());
            const h = history[o.p]!;
            const from = Math.max(0, h.length - 1 - o.back);
            const since = h.slice(from + 1);
            const got = await s.changedSince!(h[from]!.version);
            if (since.some((x) => x.touched === null)) expect(got).toBeUndefined();
            // From "0" (the empty state) a reader reloads once anything was written.
            else if (h[from]!.version === "0" && since.length > 0) expect(got).toBeUndefined();
            else expect(got?.sort()).toEqual([...new Set(since.flatMap((x) => x.touched ?? []))].sort());
            continue;
          }
          const version = await s.version!();
          // Only "0", which always means "empty", comes back; no other version ever repeats.
          if (version !== "0") expect(history[o.p]!.map((x) => x.version)).not.toContain(version);
          else expect(live[o.p]!.size).toBe(0);
          history[o.p]!.push({ version, touched });
        }
        for (const [i, s] of stores.entries()) expect(await listNames(s)).toEqual([...live[i]!].sort());
      }),
      { numRuns: 40, seed: 7 },
    );
  });
});

describe("redis PrefixStore against a model, with TTLs and overwrites", () => {
  it("lists, pages and counts exactly the live names, whatever mix of plain, timed and expired writes", async () => {
    const r = root();
    let run = 0;
    const name = fc.constantFrom("a", "b", "c", "d");
    const op = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constant("set" as const), name }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("long" as const), name }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("short" as const), name }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), name }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("check" as const) }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 30 }), async (ops) => {
        run++;
        const prefix = `${r}:ws:m${run}:artifacts`;
        const s = scope(prefix);
        const live = new Set<string>();
        const short = new Set<string>(); // live until the next check, which waits for them to expire
        const check = async () => {
          await sleep(5);
          for (const n of short) live.delete(n);
          short.clear();
          const want = [...live].sort();
          expect(await listNames(s)).toEqual(want);
          const paged: string[] = [];
          for (let page = await s.page!({ limit: 2 }); page.length > 0; ) {
            paged.push(...page);
            page = await s.page!({ limit: 2, after: page[page.length - 1]! });
          }
          expect(paged).toEqual(want);
          expect((await s.stats!()).entries).toBe(want.length);
        };
        for (const o of ops) {
          if (o.kind === "check") await check();
          else if (o.kind === "delete") {
            await s.delete(o.name);
            live.delete(o.name);
            short.delete(o.name);
          } else {
            await s.set(o.name, o.kind, o.kind === "set" ? undefined : o.kind === "long" ? 600_000 : 1);
            live.add(o.name);
            if (o.kind === "short") short.add(o.name);
            else short.delete(o.name);
          }
        }
        await check();
        // A TTL write prunes; afterwards every value still has its member, and the listing agrees.
        await s.set("zz", "v", 600_000);
        const indexed = new Set(await raw.zRange(`${prefix}#index`, 0, -1));
        for (const key of await keysUnder(raw, `${prefix}:`)) expect(indexed).toContain(key.slice(prefix.length + 1));
        expect(await listNames(s)).toEqual([...live, "zz"].sort());
      }),
      { numRuns: 30, seed: 11 },
    );
  });
});

describe("redis PrefixStore under racing writers", () => {
  it("never leaves a value without its index member (index ⊇ values), whatever interleaves", async () => {
    const prefix = `${root()}:ws:a:artifacts`;
    const other = await connectRedis(REDIS_URL);
    try {
      const a = scope(prefix);
      const b = redisDriver(async () => other.commander).scope(prefix);
      const names = ["x", "y", "z"];
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 600; i++) {
        const s = i % 2 ? a : b;
        const name = names[i % 3]!;
        const pick = (i * 7) % 5;
        if (pick === 0) ops.push(s.clear());
        else if (pick === 1) ops.push(s.deleteMany([name, names[(i + 1) % 3]!]));
        else if (pick === 2) ops.push(s.set(name, String(i), i % 4 === 0 ? 600_000 : undefined));
        else ops.push(s.setMany(names.map((n) => ({ name: n, value: String(i) }))));
      }
      await Promise.all(ops);
      const indexed = new Set(await raw.zRange(`${prefix}#index`, 0, -1));
      for (const key of await keysUnder(raw, `${prefix}:`)) expect(indexed).toContain(key.slice(prefix.length + 1));
      expect(await listNames(a)).toEqual((await keysUnder(raw, `${prefix}:`)).map((k) => k.slice(prefix.length + 1)));
    } finally {
      await other.close();
    }
  });
});

describe("redis PrefixStore over data written by 0.1.0", () => {
  it("reads, lists and clears the old layout (index, #version counter, <v>-<i> log) before any rebuild", async () => {
    const r = root();
    for (const collection of ["artifacts", "vectors"]) {
      const prefix = `${r}:ws:a:${collection}`;
      // What 0.1.0's scripts left: values, the same sorted-set index, a counter and its numbered log.
      await raw.set(`${prefix}:old`, "v1");
      await raw.set(`${prefix}:ttl`, "v2", { PX: 600_000 });
      await raw.zAdd(`${prefix}#index`, [
        { score: Number.POSITIVE_INFINITY, value: "old" },
        { score: Date.now() + 600_000, value: "ttl" },
      ]);
      await raw.set(`${prefix}#version`, "1764000000000002");
      await raw.sendCommand(["XADD", `${prefix}#log`, "1764000000000001-0", "n", "old"]);
      await raw.sendCommand(["XADD", `${prefix}#log`, "1764000000000002-0", "n", "ttl"]);
      const s = scope(prefix);
      expect(await s.get("old")).toBe("v1");
      expect(await s.getMany(["old", "ttl"])).toEqual(["v1", "v2"]);
      expect(await listNames(s)).toEqual(["old", "ttl"]);
      if (s.version) {
        const before = await s.version();
        await s.set("new", "v3");
        expect(await s.version()).not.toBe(before);
        expect(await s.changedSince!(before)).toEqual(["new"]);
        expect(await s.changedSince!("1764000000000002")).toBeUndefined(); // 0.1.0's version text: reload
      }
      await s.clear();
      expect(await keysUnder(raw, prefix)).toEqual([]);
    }
  });
});
