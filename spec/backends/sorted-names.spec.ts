import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareNames } from "../../lib/backends/driver.js";
import { mapDriver } from "../../lib/backends/map-scope.js";

// Few letters, so adds, deletes, re-adds and prefixes collide often; "\u{1F600}" and "\uE000" sort differently in code point order.
const name = fc.stringMatching(/^[ab\uE000]{0,3}$/).map((s) => s.replace(/\uE000$/, "\u{1F600}"));

const op = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), name }),
  fc.record({ kind: fc.constant("delete" as const), name }),
  fc.record({
    kind: fc.constant("page" as const),
    after: fc.option(name, { nil: undefined }),
    startsWith: fc.option(fc.stringMatching(/^[ab]{0,2}$/), { nil: undefined }),
    limit: fc.integer({ min: 1, max: 5 }),
  }),
);

describe("memory page order (SortedNames)", () => {
  it("pages exactly as sorting the live names would, through any mix of writes, deletes and pages", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 2000 }), async (ops) => {
        const store = mapDriver(new Map()).scope("p");
        const live = new Set<string>();
        for (const o of ops) {
          if (o.kind === "set") {
            await store.set(o.name, "v");
            live.add(o.name);
          } else if (o.kind === "delete") {
            await store.delete(o.name);
            live.delete(o.name);
          } else {
            const { after, startsWith, limit } = o;
            const want = [...live]
              .filter((n) => (after === undefined || compareNames(n, after) > 0) && n.startsWith(startsWith ?? ""))
              .sort(compareNames)
              .slice(0, limit);
            expect(await store.page?.({ after, startsWith, limit })).toEqual(want);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it("keeps order across folds and rebuilds of a large prefix", async () => {
    const store = mapDriver(new Map()).scope("p");
    await store.set("seed", "v");
    await store.page?.({ limit: 1 }); // from here on, writes keep the order
    const live = new Set(["seed"]);
    for (let i = 0; i < 5000; i++) {
      const n = `n${(i * 7919) % 3001}`;
      if (i % 3 === 2) {
        await store.delete(n);
        live.delete(n);
      } else {
        await store.set(n, "v");
        live.add(n);
      }
    }
    const all = [...live].sort(compareNames);
    const paged: string[] = [];
    for (let after: string | undefined; ; ) {
      const page = (await store.page?.({ after, limit: 97 })) ?? [];
      paged.push(...page);
      if (page.length < 97) break;
      after = page[page.length - 1];
    }
    expect(paged).toEqual(all);
  });
});
