import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MetadataFilter } from "../../lib/index.js";
import { acceptedOperators, compileFilter, schemas } from "../../lib/vectors/filter.js";

const matches = (filter: MetadataFilter, metadata: Record<string, unknown>) => compileFilter(filter)!.matches(metadata);

describe("metadata filter semantics", () => {
  it("ANDs top-level fields; {} matches everything", () => {
    expect(matches({}, {})).toBe(true);
    expect(matches({ a: 1, b: "x" }, { a: 1, b: "x", c: 0 })).toBe(true);
    expect(matches({ a: 1, b: "x" }, { a: 1, b: "y" })).toBe(false);
  });

  it("a bare value is deep $eq: objects by keys in any order, arrays by elements, no array contains", () => {
    expect(matches({ o: { x: 1, y: [2, { z: null }] } }, { o: { y: [2, { z: null }], x: 1 } })).toBe(true);
    expect(matches({ o: { x: 1 } }, { o: { x: 1, y: 2 } })).toBe(false);
    expect(matches({ t: ["a", "b"] }, { t: ["a", "b"] })).toBe(true);
    expect(matches({ t: ["a", "b"] }, { t: ["b", "a"] })).toBe(false);
    expect(matches({ t: "a" }, { t: ["a"] })).toBe(false);
    expect(matches({ t: ["a"] }, { t: "a" })).toBe(false);
    expect(matches({ t: [] }, { t: {} })).toBe(false);
    expect(matches({ n: 1 }, { n: "1" })).toBe(false);
    expect(matches({ b: true }, { b: 1 })).toBe(false);
    expect(matches({ a: { $eq: { k: [1] } } }, { a: { k: [1] } })).toBe(true);
  });

  it("a missing field equals nothing, not even null: $ne and $nin match it, $eq/$in/comparisons do not", () => {
    expect(matches({ a: null }, {})).toBe(false);
    expect(matches({ a: null }, { a: null })).toBe(true);
    expect(matches({ a: { $ne: null } }, {})).toBe(true);
    expect(matches({ a: { $ne: null } }, { a: null })).toBe(false);
    expect(matches({ a: { $ne: 1 } }, {})).toBe(true);
    expect(matches({ a: { $nin: [1, null] } }, {})).toBe(true);
    expect(matches({ a: { $in: [null] } }, {})).toBe(false);
    expect(matches({ a: { $gte: 0 } }, {})).toBe(false);
    expect(matches({ a: { $lt: "z" } }, {})).toBe(false);
  });

  it("comparisons apply to numbers or strings of the operand's type only", () => {
    expect(matches({ a: { $gt: 1, $lte: 3 } }, { a: 3 })).toBe(true);
    expect(matches({ a: { $gt: 1, $lte: 3 } }, { a: 1 })).toBe(false);
    expect(matches({ a: { $gte: 1 } }, { a: "5" })).toBe(false);
    expect(matches({ a: { $lt: "b" } }, { a: "a" })).toBe(true);
    expect(matches({ a: { $lt: "b" } }, { a: 0 })).toBe(false);
    expect(matches({ a: { $gt: 0 } }, { a: true })).toBe(false);
    expect(matches({ a: { $gt: 0 } }, { a: [5] })).toBe(false);
    expect(matches({ a: { $gt: 0 } }, { a: null })).toBe(false);
    // UTF-16 code unit order: "Z" < "a", "é" > "z".
    expect(matches({ a: { $lt: "a" } }, { a: "Z" })).toBe(true);
    expect(matches({ a: { $gt: "z" } }, { a: "é" })).toBe(true);
  });

  it("$in/$nin test whole values by deep equality", () => {
    expect(matches({ a: { $in: [1, "x", [2], { k: 3 }] } }, { a: [2] })).toBe(true);
    expect(matches({ a: { $in: [1, "x", [2], { k: 3 }] } }, { a: { k: 3 } })).toBe(true);
    expect(matches({ a: { $in: [1, "x"] } }, { a: "1" })).toBe(false);
    expect(matches({ a: { $in: [] } }, { a: 1 })).toBe(false);
    expect(matches({ a: { $nin: [1, [2]] } }, { a: [2] })).toBe(false);
    expect(matches({ a: { $nin: [] } }, { a: 1 })).toBe(true);
    expect(matches({ a: { $in: [1, 2], $ne: 2 } }, { a: 2 })).toBe(false);
  });

  it("reads own fields only", () => {
    expect(matches({ toString: { $ne: 1 } }, {})).toBe(true);
    expect(matches({ constructor: null }, {})).toBe(false);
    expect(matches({ ["__proto__"]: 1 }, JSON.parse('{"__proto__": 1}'))).toBe(true);
  });

  it("gives equal filters one cache key, whatever their key order or spelling of $eq", () => {
    const a = compileFilter({ x: { $lt: 3, $gt: 1 }, y: { p: 1, q: 2 } })!.key;
    const b = compileFilter({ y: { $eq: { q: 2, p: 1 } }, x: { $gt: 1, $lt: 3 } })!.key;
    expect(a).toBe(b);
    expect(compileFilter({ x: 1 })!.key).not.toBe(compileFilter({ x: "1" })!.key);
    expect(compileFilter(undefined)).toBeUndefined();
  });
});

describe("malformed filters are InvalidArgumentError", () => {
  const bad: Array<[string, unknown]> = [
    ["not an object", 5],
    ["null", null],
    ["an array", [{ a: 1 }]],
    ["a string", "a = 1"],
    ["unknown operator", { a: { $regex: "x" } }],
    ["unknown top-level operator", { $or: [{ a: 1 }] }],
    ["operators mixed with plain keys", { a: { $eq: 1, b: 2 } }],
    ["nested operator in a value", { a: { b: { $gt: 1 } } }],
    ["nested operator in an $eq operand", { a: { $eq: { b: { $ne: 1 } } } }],
    ["nested operator in an $in element", { a: { $in: [{ $gt: 1 }] } }],
    ["nested operator in an array", { a: [1, { $eq: 2 }] }],
    ["$in not an array", { a: { $in: 1 } }],
    ["$nin not an array", { a: { $nin: { x: 1 } } }],
    ["boolean comparison", { a: { $gt: true } }],
    ["null comparison", { a: { $lte: null } }],
    ["array comparison", { a: { $lt: [1] } }],
    ["mixed comparison types", { a: { $gt: 1, $lt: "z" } }],
    ["NaN operand", { a: { $gt: Number.NaN } }],
    ["Infinity operand", { a: Number.POSITIVE_INFINITY }],
    ["undefined value", { a: undefined }],
    ["undefined operand", { a: { $eq: undefined } }],
    ["class instance", { a: new Date(0) }],
    ["function", { a: () => 1 }],
    ["too deep", { a: JSON.parse(`${"[".repeat(200)}${"]".repeat(200)}`) }],
  ];
  it.each(bad)("%s", (_, filter) => {
    let error: unknown;
    try {
      compileFilter(filter as MetadataFilter);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ name: "InvalidArgumentError", code: "ERR_INVALID_ARGUMENT" });
    expect((error as Error).message).toMatch(/^invalid search filter: /);
  });

  it("refuses a cycle without overflowing", () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(() => compileFilter({ a })).toThrow(/circular/);
  });
});

describe("filters without zod", () => {
  // compileFilter accepts valid operator objects by hand (filter.ts acceptedOperators) so that a
  // search does not load zod; whatever it accepts, the schema must accept with the same result.
  const leaf = fc.oneof(
    fc.integer(),
    fc.constantFrom(1.5, -0, Number.NaN, Number.POSITIVE_INFINITY),
    fc.string({ maxLength: 3 }),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
  );
  const operand = fc.oneof(
    leaf,
    fc.array(leaf, { maxLength: 3 }),
    fc.dictionary(fc.constantFrom("a", "$eq", "b"), leaf, { maxKeys: 2 }),
  );
  const op = fc.constantFrom("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$bad", "plain");
  const condition = fc.dictionary(op, fc.oneof(operand, fc.array(operand, { maxLength: 3 })), { maxKeys: 4 });

  it("accepts only what the operators schema accepts, with the same result", () => {
    const { operators } = schemas();
    let quick = 0;
    fc.assert(
      fc.property(condition, (ops) => {
        const mine = acceptedOperators(ops);
        if (mine === undefined) return;
        quick++;
        const parsed = operators.safeParse(ops);
        expect(parsed.success).toBe(true);
        expect(mine).toEqual(parsed.data);
      }),
      { numRuns: 3000 },
    );
    expect(quick).toBeGreaterThan(100);
  });
});
