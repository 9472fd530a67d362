// An app's Redis adapter gets a driver that loads the Redis driver on first use (lib/scope.ts,
// lib/backends/deferred.ts). Until then its scopes must look exactly like the real ones: callers
// decide by which optional methods a scope has (transact, page, version, changedSince, ...).
import { afterAll, describe, expect, it } from "vitest";
import { deferredDriver } from "../../lib/backends/deferred.js";
import type { Driver } from "../../lib/backends/driver.js";
import { redisAdapterOf, redisDriverFor } from "../../lib/backends/redis/adapters.js";
import { isRedisAdapter } from "../../lib/backends/redis/recognise.js";
import { driverFor } from "../../lib/scope.js";
import { ADAPTERS } from "../adapters/cases.js";
import { randomRoot } from "../support/env.js";

const opened = ADAPTERS.map((c) => ({ name: c.name, redis: c.redis, ...c.open() }));
afterAll(async () => {
  for (const o of opened) await o.close();
});

const keysOf = (store: object) => Object.keys(store).sort();

describe("an app's Redis adapter, before the Redis driver loads", () => {
  const root = randomRoot("deferred");
  const prefixes = [`${root}:ws:a:artifacts`, `${root}:ws:a:vectors`, `${root}:ws:{a}:vectors`, `${root}#workspaces`];

  it("is recognised by the light check exactly when adapters.ts recognises it", () => {
    const others: object[] = [new Map(), { opts: { dialect: "redis" }, get() {}, set() {}, delete() {} }, {}];
    for (const store of [...opened.map((o) => o.store), ...others]) {
      expect(isRedisAdapter(store)).toBe(redisAdapterOf(store) !== undefined);
    }
    expect(opened.filter((o) => isRedisAdapter(o.store)).map((o) => o.redis)).toEqual(
      opened.filter((o) => o.redis).map(() => true),
    );
  });

  for (const o of opened.filter((c) => c.redis)) {
    it(`${o.name}: scopes have the methods of the real driver's, tracked prefixes and others`, () => {
      // A fresh wrapper of the same shape lib/scope.ts builds, so nothing has loaded it yet.
      const deferred = driverFor(o.store);
      const real = redisDriverFor(o.store) as Driver;
      for (const prefix of prefixes) expect(keysOf(deferred.scope(prefix)), prefix).toEqual(keysOf(real.scope(prefix)));
    });
  }

  it("loads once, on first use, and hands out the real scopes from then on", async () => {
    let loads = 0;
    const map = new Map<string, unknown>();
    const real: Driver = {
      scope: (prefix) =>
        ({
          prefix,
          get: async (name: string) => map.get(name),
          set: async (name: string, value: unknown) => void map.set(name, value),
          async *names() {
            yield* map.keys();
          },
        }) as never,
    };
    const driver = deferredDriver(
      async () => {
        loads++;
        return real;
      },
      { methods: () => [], scans: () => false },
    );
    const before = driver.scope("p");
    expect(loads).toBe(0);
    await before.set("n", 1);
    expect(await before.get("n")).toBe(1);
    const names: string[] = [];
    for await (const name of before.names()) names.push(name);
    expect(names).toEqual(["n"]);
    expect(loads).toBe(1);
    expect(Object.hasOwn(driver.scope("p"), "getMany")).toBe(false); // the real scope now
  });
});
