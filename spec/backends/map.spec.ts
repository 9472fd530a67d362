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
