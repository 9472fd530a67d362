import { describe, expect, it } from "vitest";
import { assertJson, MAX_DEPTH, withinDepth } from "../../lib/collections/json.js";
import { InvalidValueError } from "../../lib/errors.js";
import { createStorage } from "../../lib/index.js";

/** `depth` levels, objects (odd levels, so the top one) and arrays alternating, built without recursion. */
function nested(depth: number): Record<string, unknown> {
  let value: unknown = 1;
  for (let level = depth; level >= 1; level--) value = level % 2 ? { a: value } : [value];
  return value as Record<string, unknown>;
}

/** Arrays count as levels too: `depth` levels of arrays. */
function nestedArrays(depth: number): unknown[] {
  let value: unknown[] = [1];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
}

function refused(fn: () => unknown): InvalidValueError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidValueError);
    return error as InvalidValueError;
  }
  throw new Error("not refused");
}

describe("assertJson depth", () => {
  it("accepts exactly MAX_DEPTH levels and refuses one more", () => {
    expect(MAX_DEPTH).toBe(128);
    // nested() alternates objects and arrays: both count.
    expect(() => assertJson(nested(MAX_DEPTH), "v")).not.toThrow();
    expect(() => assertJson(nestedArrays(MAX_DEPTH), "v")).not.toThrow();
    const error = refused(() => assertJson(nested(MAX_DEPTH + 1), "v"));
    expect(error.code).toBe("ERR_INVALID_VALUE");
    expect(error.message).toMatch(/deeper than 128 levels/);
    expect(refused(() => assertJson(nestedArrays(MAX_DEPTH + 1), "v")).code).toBe("ERR_INVALID_VALUE");
  });

  it("refuses 100,000 levels with InvalidValueError, not a RangeError", () => {
    expect(refused(() => assertJson(nested(100_000), "v")).code).toBe("ERR_INVALID_VALUE");
    expect(refused(() => assertJson(nestedArrays(100_000), "v")).code).toBe("ERR_INVALID_VALUE");
  });

  it("still reports the other problems with their path, and cycles only along a path", () => {
    expect(refused(() => assertJson({ a: [1, { b: Number.NaN }] }, "v")).message).toMatch(/v at \$\.a\[1\]\.b is NaN/);
    const cyclic: Record<string, unknown> = { a: {} };
    (cyclic.a as Record<string, unknown>).back = cyclic;
    expect(refused(() => assertJson(cyclic, "v")).message).toMatch(/\$\.a\.back is a circular reference/);
    const shared = { x: 1 };
    expect(() => assertJson({ a: shared, b: [shared, shared] }, "v")).not.toThrow();
  });

  it("withinDepth measures the same way and ignores bytes", () => {
    expect(withinDepth(nested(MAX_DEPTH))).toBe(true);
    expect(withinDepth(nested(MAX_DEPTH + 1))).toBe(false);
    expect(withinDepth(nested(100_000))).toBe(false);
    expect(withinDepth({ b: Buffer.alloc(10) }, 1)).toBe(true);
    expect(withinDepth(7, 0)).toBe(true);
  });
});

describe("deep values through the collections", () => {
  const storage = () => createStorage(new Map(), { root: "app", workspaceId: "w" });

  it("saves and loads a MAX_DEPTH value and metadata; the workspace stays listable", async () => {
    const s = storage();
    await s.artifacts.save("deep", nested(MAX_DEPTH), { metadata: nested(MAX_DEPTH) });
    expect(await s.artifacts.load("deep")).toEqual(nested(MAX_DEPTH));
    expect((await s.artifacts.list()).map((i) => i.name)).toEqual(["deep"]);
    await s.vectors.upsert("v", [1, 0], nested(MAX_DEPTH));
    const [hit] = await s.vectors.search([1, 0]);
    expect(hit?.metadata).toEqual(nested(MAX_DEPTH));
    await s.workflows.add({ name: "wf", source: "", description: "deep", metadata: nested(MAX_DEPTH) });
    expect((await s.workflows.list())[0]?.metadata).toEqual(nested(MAX_DEPTH));
    expect((await s.workflows.search("deep")).map((h) => h.name)).toEqual(["wf"]);
  });

  it("refuses MAX_DEPTH + 1 and 100,000 levels before storing anything", async () => {
    const map = new Map();
    const s = createStorage(map, { root: "app", workspaceId: "w" });
    for (const depth of [MAX_DEPTH + 1, 100_000]) {
      await expect(s.artifacts.save("deep", nested(depth))).rejects.toMatchObject({ code: "ERR_INVALID_VALUE" });
      await expect(s.artifacts.save("deep", 1, { metadata: nested(depth) })).rejects.toMatchObject({
        code: "ERR_INVALID_VALUE",
      });
      await expect(s.vectors.upsert("v", [1, 0], nested(depth))).rejects.toMatchObject({ code: "ERR_INVALID_VALUE" });
      await expect(
        s.workflows.add({ name: "wf", source: "", description: "d", metadata: nested(depth) }),
      ).rejects.toMatchObject({ code: "ERR_INVALID_VALUE" });
    }
    expect(map.size).toBe(0);
  });
});

describe("deep values through collection()", () => {
  it("stores MAX_DEPTH levels and refuses one more, with strings holding brackets and quotes not counted", async () => {
    const map = new Map();
    const c = createStorage(map, { root: "app", workspaceId: "w" }).collection("things");
    const tricky = { text: '[{"\\"[[[', arr: ["]}", "{{"] };
    await c.set("ok", { ...nested(MAX_DEPTH), tricky });
    expect(await c.get("ok")).toEqual({ ...nested(MAX_DEPTH), tricky });
    await expect(c.set("deep", nested(MAX_DEPTH + 1))).rejects.toMatchObject({ code: "ERR_INVALID_VALUE" });
    await expect(c.set("deeper", nestedArrays(100_000))).rejects.toMatchObject({ code: "ERR_INVALID_VALUE" });
    expect([...map.keys()].filter((key) => key.startsWith("app:ws:w:things:"))).toEqual(["app:ws:w:things:ok"]);
  });
});
