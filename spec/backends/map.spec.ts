import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DRIVER, type Driver } from "../../lib/backends/driver.js";
import { mapDriver } from "../../lib/backends/map.js";
import { MemoryStore } from "../../lib/backends/memory.js";

async function names(driver: Driver, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const name of driver.names(prefix)) out.push(name);
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
            if (o.kind === "set") await d.set(o.prefix, o.name, "v");
            if (o.kind === "delete") await d.delete(o.prefix, o.name);
            if (o.kind === "clear") await d.clear(o.prefix);
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
    const before = await d.version!("a");
    await d.set("b", "k", 1);
    expect(await d.version!("a")).toBe(before);
    await d.set("a", "k", 1);
    const after = await d.version!("a");
    expect(after).not.toBe(before);
    await d.delete("a", "missing");
    expect(await d.version!("a")).toBe(after);
  });
});

describe("map driver change log", () => {
  const sorted = async (changed: Promise<string[] | undefined>) => (await changed)?.sort();

  for (const [kind, make] of [
    ["owned", (limit?: number) => mapDriver(new MemoryStore(), { owned: true, logLimit: limit })],
    ["foreign", (limit?: number) => mapDriver(new Map(), { logLimit: limit })],
  ] as const) {
    describe(`over a ${kind} Map`, () => {
      it("names exactly what each write touched since a version", async () => {
        const d = make();
        const v0 = await d.version("p");
        await d.set("p", "a", "1");
        const v1 = await d.version("p");
        expect(Number(v1)).toBeGreaterThan(Number(v0));
        await d.setMany("p", [
          { name: "b", value: "2" },
          { name: "c", value: "3" },
        ]);
        const v2 = await d.version("p");
        await d.delete("p", "a");
        await d.delete("p", "missing");
        const v3 = await d.version("p");
        await d.deleteMany("p", ["b", "nope"]);
        const v4 = await d.version("p");
        expect(await sorted(d.changedSince("p", v0))).toEqual(["a", "b", "c"]);
        expect(await sorted(d.changedSince("p", v1))).toEqual(["a", "b", "c"]);
        expect(await sorted(d.changedSince("p", v2))).toEqual(["a", "b"]);
        expect(await d.changedSince("p", v3)).toEqual(["b"]);
        expect(await d.changedSince("p", v4)).toEqual([]);
        // Deleting what is not there changes nothing, so the version stays.
        await d.delete("p", "missing");
        expect(await d.version("p")).toBe(v4);
      });

      it("keeps prefixes apart, including one that only starts like another", async () => {
        const d = make();
        const a = await d.version("r:ws:a:x");
        const ab = await d.version("r:ws:ab:x");
        await d.set("r:ws:ab:x", "k", "1");
        expect(await d.version("r:ws:a:x")).toBe(a);
        expect(await d.changedSince("r:ws:a:x", a)).toEqual([]);
        expect(await d.changedSince("r:ws:ab:x", ab)).toEqual(["k"]);
      });

      it("cannot tell across a clear", async () => {
        const d = make();
        await d.set("p", "a", "1");
        const before = await d.version("p");
        await d.clear("p");
        const cleared = await d.version("p");
        await d.set("p", "b", "2");
        expect(await d.changedSince("p", before)).toBeUndefined();
        expect(await d.changedSince("p", cleared)).toEqual(["b"]);
      });

      it("cannot tell further back than its log, even within one setMany", async () => {
        const d = make(3);
        const v0 = await d.version("p");
        for (const name of ["a", "b", "c"]) await d.set("p", name, "1");
        expect(await sorted(d.changedSince("p", v0))).toEqual(["a", "b", "c"]);
        await d.set("p", "d", "1");
        expect(await d.changedSince("p", v0)).toBeUndefined();
        const v1 = await d.version("p");
        await d.setMany(
          "p",
          ["e", "f", "g", "h"].map((name) => ({ name, value: "1" })),
        );
        expect(await d.changedSince("p", v1)).toBeUndefined();
        const v2 = await d.version("p");
        await d.set("p", "i", "1");
        expect(await d.changedSince("p", v2)).toEqual(["i"]);
      });

      it("refuses versions it never handed out", async () => {
        const d = make();
        await d.set("p", "a", "1");
        const v = await d.version("p");
        for (const made of [String(Number(v) + 1), "1e3", "-1", "", "x", "12345678901234567", `0${v}`, `${v}.0`]) {
          expect(await d.changedSince("p", made)).toBeUndefined();
        }
        // Another driver's versions predate everything this one answers for.
        const other = make();
        expect(await other.changedSince("p", v)).toBeUndefined();
        // So do versions handed out before the prefix's log started.
        const early = Number(await d.version("p")) - 1;
        expect(await d.changedSince("p", String(early))).toBeUndefined();
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
        const d = mapDriver(new MemoryStore(), { owned: true });
        const live = new Set<string>();
        // For each version seen: the names changed since, or undefined once a clear intervened.
        const seen: Array<[string, Set<string> | undefined]> = [[await d.version("p"), new Set()]];
        for (const { kind, name } of list) {
          const touched: string[] = [];
          if (kind === "set") {
            await d.set("p", name, "v");
            live.add(name);
            touched.push(name);
          } else if (kind === "delete") {
            await d.delete("p", name);
            if (live.delete(name)) touched.push(name);
          } else if (kind === "clear") {
            await d.clear("p");
            live.clear();
            for (const entry of seen) entry[1] = undefined;
          } else await d.set("other", name, "v");
          for (const [, names] of seen) for (const n of touched) names?.add(n);
          seen.push([await d.version("p"), new Set()]);
        }
        for (const [version, names] of seen) {
          const got = await d.changedSince("p", version);
          expect(got === undefined ? undefined : got.sort()).toEqual(names && [...names].sort());
        }
      }),
      { numRuns: 200, seed: 2 },
    );
  });

  it("learns of keys changed outside it through external()", async () => {
    const first = new Map<string, unknown>([["r:x:a", "1"]]);
    const d = mapDriver(first, { owned: true });
    const v0 = await d.version("r:x");
    const untouched = await d.version("r:y");
    expect(await names(d, "r:x")).toEqual(["a"]);
    const next = new Map<string, unknown>([
      ["r:x:b", "2"],
      ["r:x:c:d", "3"],
    ]);
    d.external(next, ["r:x:a", "r:x:b", "r:x:c:d"]);
    expect(await sorted(d.changedSince("r:x", v0))).toEqual(["a", "b", "c:d"]);
    expect(await d.version("r:y")).toBe(untouched);
    expect(await names(d, "r:x")).toEqual(["b", "c:d"]);
    const v1 = await d.version("r:x");
    d.external(next, undefined);
    expect(await d.changedSince("r:x", v1)).toBeUndefined();
    expect(await names(d, "r:x")).toEqual(["b", "c:d"]);
  });
});
