import { describe, expect, it } from "vitest";
import { packageName } from "../../lib/collections/deps.js";
import { createStorage } from "../../lib/index.js";

describe("deps", () => {
  it.each([
    ["lodash", "lodash"],
    ["lodash@^4.17.0", "lodash"],
    ["@scope/pkg@1.2.3", "@scope/pkg"],
    ["@scope/pkg", "@scope/pkg"],
    ["numpy>=1.26", "numpy"],
    ["requests==2.31", "requests"],
  ])("reads the package name of %s as %s", (spec, name) => {
    expect(packageName(spec)).toBe(name);
  });

  it.each(["", " lodash", "a b", "@", "@scope", "x\n"])("refuses spec %j", (spec) => {
    expect(() => packageName(spec)).toThrow(expect.objectContaining({ code: "ERR_INVALID_VALUE" }));
  });

  it("replaces the spec of a package already listed and matches by name", async () => {
    const s = createStorage(new Map(), { root: "app", workspaceId: "w" });
    await s.deps.add("lodash@^4.17.0");
    await s.deps.add("@scope/pkg@1");
    await s.deps.add("lodash@^4.18.0");
    expect(await s.deps.list()).toEqual(["@scope/pkg@1", "lodash@^4.18.0"]);
    expect(await s.deps.has("lodash@^3")).toBe(true);
    expect(await s.deps.remove("@scope/pkg")).toBe(true);
    expect(await s.deps.remove("@scope/pkg")).toBe(false);
    expect(await s.deps.list()).toEqual(["lodash@^4.18.0"]);
  });
});
