import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareNames } from "../../lib/backends/driver.js";
import { smallestNames } from "../../lib/backends/redis/hash-list.js";

describe("smallestNames (a hash-layout page's first names)", () => {
  it("is the sorted list cut to k, for any names and k", () => {
    const name = fc.oneof(fc.string({ maxLength: 4 }), fc.string({ unit: "binary", maxLength: 3 }));
    fc.assert(
      fc.property(fc.array(name, { maxLength: 300 }), fc.integer({ min: 1, max: 120 }), (names, k) => {
        expect(smallestNames(names, k)).toEqual([...names].sort(compareNames).slice(0, k));
      }),
      { numRuns: 2000 },
    );
  });
});
