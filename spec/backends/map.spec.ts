import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DRIVER, type Driver } from "../../lib/backends/driver.js";
import { mapDriver } from "../../lib/backends/map-scope.js";
import { MemoryStore } from "../../lib/backends/memory.js";

async function names(driver: Driver, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const name of driver.scope(prefix).names()) out.push(name);
  return out.sort();
}

describe("map driver", () => {
  const prefixes = ["p:ws:a:x", "p:ws:ab:x", "p:x"];
  const op = fc.oneof(
    fc.record({
      kind: fc.constant("set" as const),
      prefix: fc.constantFrom(...prefixes),
      name: fc.string({ maxLength: 4 }),
    }),
    fc.record({
      kind: fc.constant("delete" as const),
      prefix: fc.constantFrom(...prefixes),
      name: fc.string({ maxLength: 4 }),
    }),
    fc.record({ kind: fc.constant("clear" as const), prefix: fc.constantFrom(...prefixes) }),
    fc.record({ kind: fc.constant("list" as const), prefix: fc.constantFrom(...prefixes) }),
  );

  it("lists the same names whether it walks a foreign Map or keeps an index for its own", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
        const owned = new MemoryStore();
        const foreign = new Map<string, unknown>();
        const drivers = [owned[DRIVER], mapDriver(foreign)];
        const model = new Map<string, Set<string>>(prefixes.map((p) => [p, new Set()]));
        for (const o of ops) {
          for (const d of drivers) {
            if (o.kind === "set") await d.scope(o.prefix).set(o.name, "v");
            if (o.kind === "delete") await d.scope(o.prefix).delete(o.name);
            if (o.kind === "clear") await d.scope(o.prefix).clear();
            if (o.kind === "list") expect(await names(d, o.prefix)).toEqual([...model.get(o.prefix)!].sort());
          }
          if (o.kind === "set") model.get(o.prefix)!.add(o.name);
          if (o.kind === "delete") model.get(o.prefix)!.delete(o.name);
          if (o.kind === "clear") model.get(o.prefix)!.clear();
        }
        for (const p of prefixes) for (const d of drivers) expect(await names(d, p)).toEqual([...model.get(p)!].sort());
      }),
      { numRuns: 200, seed: 1 },
    );
  });

  it("bumps a prefix's version on its own writes only", async () => {
    const d = mapDriver(new Map());
    const before = await d.scope("a").version!();
    await d.scope("b").set("k", 1);
    expect(await d.scope("a").version!()).toBe(before);
    await d.scope("a").set("k", 1);
    const after = await d.scope("a").version!();
    expect(after).not.toBe(before);
    await d.scope("a").delete("missing");
    expect(await d.scope("a").version!()).toBe(after);
  });
});

describe("map driver change log", () => {
  const sorted = async (changed: Promise<string[] | undefined>) => (await changed)?.sort();

  for (const [kind, make] of [
    ["owned", (limit?: number) => mapDriver(new MemoryStore(), { logLimit: limit })],
    ["foreign", (limit?: number) => mapDriver(new Map(), { logLimit: limit })],
  ] as const) {
    describe(`over a ${kind} Map`, () => {
      it("names exactly what each write touched since a version", async () => {
        const d = make();
        await d.scope("p").set("seed", "0");
        const v0 = await d.scope("p").version!();
        await d.scope("p").set("a", "1");
        const v1 = await d.scope("p").version!();
        expect(Number(v1)).toBeGreaterThan(Number(v0));
        await d.scope("p").setMany([
          { name: "b", value: "2" },
          { name: "c", value: "3" },
        ]);
        const v2 = await d.scope("p").version!();
        await d.scope("p").delete("a");
        await d.scope("p").delete("missing");
        const v3 = await d.scope("p").version!();
        await d.scope("p").deleteMany(["b", "nope"]);
        const v4 = await d.scope("p").version!();
        expect(await sorted(d.scope("p").changedSince!(v0))).toEqual(["a", "b", "c"]);
        expect(await sorted(d.scope("p").changedSince!(v1))).toEqual(["a", "b", "c"]);
        expect(await sorted(d.scope("p").changedSince!(v2))).toEqual(["a", "b"]);
        expect(await d.scope("p").changedSince!(v3)).toEqual(["b"]);
        expect(await d.scope("p").changedSince!(v4)).toEqual([]);
        // Deleting what is not there changes nothing, so the version stays.
        await d.scope("p").delete("missing");
        expect(await d.scope("p").version!()).toBe(v4);
      });

      it("keeps prefixes apart, including one that only starts like another", async () => {
        const d = make();
        const a = await d.scope("r:ws:a:x").version!();
        const ab = await d.scope("r:ws:ab:x").version!();
        await d.scope("r:ws:ab:x").set("k", "1");
        expect(await d.scope("r:ws:a:x").version!()).toBe(a);
        expect(await d.scope("r:ws:a:x").changedSince!(a)).toEqual([]);
        expect(await d.scope("r:ws:ab:x").changedSince!(ab)).toEqual(["k"]);
      });

      it("cannot tell across a clear", async () => {
        const d = make();
        await d.scope("p").set("a", "1");
        const before = await d.scope("p").version!();
        await d.scope("p").clear();
        const cleared = await d.scope("p").version!();
        await d.scope("p").set("b", "2");
        expect(await d.scope("p").changedSince!(before)).toBeUndefined();
        expect(await d.scope("p").changedSince!(cleared)).toEqual(["b"]);
      });

      it("cannot tell further back than its log, even within one setMany", async () => {
        const d = make(3);
        await d.scope("p").set("seed", "0");
        const v0 = await d.scope("p").version!();
        for (const name of ["a", "b", "c"]) await d.scope("p").set(name, "1");
        expect(await sorted(d.scope("p").changedSince!(v0))).toEqual(["a", "b", "c"]);
        await d.scope("p").set("d", "1");
        await d.scope("p").set("e", "1");
        expect(await d.scope("p").changedSince!(v0)).toBeUndefined();
        const v1 = await d.scope("p").version!();
        await d.scope("p").setMany(["e", "f", "g", "h"].map((name) => ({ name, value: "1" })));
        expect(await d.scope("p").changedSince!(v1)).toBeUndefined();
        const v2 = await d.scope("p").version!();
        await d.scope("p").set("i", "1");
        expect(await d.scope("p").changedSince!(v2)).toEqual(["i"]);
      });

      it("refuses versions it never handed out", async () => {
        const d = make();
        await d.scope("p").set("a", "1");
        const v = await d.scope("p").version!();
        for (const made of [String(Number(v) + 1), "1e3", "-1", "", "x", "12345678901234567", `0${v}`, `${v}.0`]) {
          expect(await d.scope("p").changedSince!(made)).toBeUndefined();
        }
        // Another driver's versions predate everything this one answers for.
        const other = make();
        expect(await other.scope("p").changedSince!(v)).toBeUndefined();
        // So do versions handed out before the prefix's log started.
        const early = Number(await d.scope("p").version!()) - 1;
        expect(await d.scope("p").changedSince!(String(early))).toBeUndefined();
      });
    });
  }

  it("matches a model of random writes at every version it handed out", async () => {
    const ops = fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant("set" as const), name: fc.constantFrom("a", "b", "c", "d") }),
        fc.record({ kind: fc.constant("delete" as const), name: fc.constantFrom("a", "b", "c", "d") }),
        fc.record({ kind: fc.constant("clear" as const), name: fc.constant("") }),
        fc.record({ kind: fc.constant("other" as const), name: fc.constantFrom("a", "b") }),
      ),
      { maxLength: 30 },
    );
    await fc.assert(
      fc.asyncProperty(ops, async (list) => {
        const d = mapDriver(new MemoryStore());
        const live = new Set<string>();
        // For each version seen: the names changed since, or undefined once a clear intervened.
        const seen: Array<[string, Set<string> | undefined]> = [[await d.scope("p").version!(), new Set()]];
        for (const { kind, name } of list) {
          const touched: string[] = [];
          if (kind === "set") {
            await d.scope("p").set(name, "v");
            live.add(name);
            touched.push(name);
          } else if (kind === "delete") {
            await d.scope("p").delete(name);
            if (live.delete(name)) touched.push(name);
            // An emptied prefix keeps no state, so no log: like a clear, older versions reload.
            if (live.size === 0) for (const entry of seen) entry[1] = undefined;
          } else if (kind === "clear") {
            await d.scope("p").clear();
            live.clear();
            for (const entry of seen) entry[1] = undefined;
          } else await d.scope("other").set(name, "v");
          for (const [, names] of seen) for (const n of touched) names?.add(n);
          seen.push([await d.scope("p").version!(), new Set()]);
        }
        for (const [version, names] of seen) {
          const got = await d.scope("p").changedSince!(version);
          // "0" is the version of an empty prefix: what changed since then is what is there now.
          const expected = version === "0" ? [...live] : names && [...names];
          expect(got === undefined ? undefined : got.sort()).toEqual(expected?.sort());
        }
      }),
      { numRuns: 200, seed: 2 },
    );
  });

  it("learns of keys changed outside it through replace()", async () => {
    const first = new Map<string, unknown>([["r:x:a", "1"]]);
    const d = mapDriver(first);
    const v0 = await d.scope("r:x").version!();
    const untouched = await d.scope("r:y").version!();
    expect(await names(d, "r:x")).toEqual(["a"]);
    const next = new Map<string, unknown>([
      ["r:x:b", "2"],
      ["r:x:c:d", "3"],
    ]);
    d.core.replace(next, ["r:x:a", "r:x:b", "r:x:c:d"]);
    expect(await sorted(d.scope("r:x").changedSince!(v0))).toEqual(["a", "b", "c:d"]);
    expect(await d.scope("r:y").version!()).toBe(untouched);
    expect(await names(d, "r:x")).toEqual(["b", "c:d"]);
    const v1 = await d.scope("r:x").version!();
    d.core.replace(next, undefined);
    expect(await d.scope("r:x").changedSince!(v1)).toBeUndefined();
    expect(await names(d, "r:x")).toEqual(["b", "c:d"]);
  });
});
