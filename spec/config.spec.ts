import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { accepted } from "../lib/config.js";
import {
  configFromEnv,
  InvalidConfigError,
  InvalidRootError,
  keyspace,
  openStorage,
  parseConfig,
  storageConfigSchema,
} from "../lib/index.js";

describe("storage config", () => {
  it("accepts every built-in scheme and keeps the workspace id", () => {
    for (const url of [
      "memory:",
      "memory:shared",
      "file:data/x.json",
      "file:///tmp/x.json",
      "redis://127.0.0.1:6379",
      "rediss://h:6380",
    ]) {
      expect(parseConfig({ url, root: "app", workspaceId: "w" })).toEqual({ url, root: "app", workspaceId: "w" });
    }
    expect(storageConfigSchema.safeParse({ url: "memory:", root: "app" }).success).toBe(true);
  });

  it.each([
    [{ root: "app" }, "url"],
    [{ url: "", root: "app" }, "url"],
    [{ url: "ftp://x", root: "app" }, "url"],
    [{ url: "memory:", root: 5 }, "root"],
    [{ url: "memory:" }, "root"],
    [{ url: "memory:", root: "app", workspaceId: 7 }, "workspaceId"],
    [{ url: "memory:", root: "app", unscoped: "deps" }, "unscoped"],
    [{ url: "memory:", root: "app", extra: true }, "extra"],
  ])("refuses %j naming field %s", (input, field) => {
    expect(() => parseConfig(input)).toThrow(InvalidConfigError);
    try {
      parseConfig(input);
    } catch (error) {
      expect(error).toMatchObject({ code: "ERR_INVALID_CONFIG", field });
      expect((error as Error).message).toContain(field);
    }
  });

  it("refuses a deps prefix into a workspace when parsing, not only when opening", async () => {
    const config = { url: "memory:", root: "app", workspaceId: "a", depsPrefix: "app:ws:b:artifacts" };
    expect(() => parseConfig(config)).toThrow(InvalidRootError);
    expect(() => parseConfig({ ...config, depsPrefix: "shared:{deps}" })).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_ROOT" }),
    );
    expect(() => parseConfig({ url: "memory:", root: "{app}" })).toThrow(InvalidRootError);
    await expect(openStorage(config)).rejects.toMatchObject({ code: "ERR_INVALID_ROOT" });
  });

  it("lets key layout errors through as their own types", async () => {
    await expect(openStorage({ url: "memory:", root: "a b" })).rejects.toMatchObject({ code: "ERR_INVALID_ROOT" });
    await expect(openStorage({ url: "memory:", root: "app", workspaceId: "../x" })).rejects.toMatchObject({
      code: "ERR_INVALID_WORKSPACE_ID",
    });
    await expect(openStorage({ url: "memory:", root: "app", unscoped: ["ws"] })).rejects.toMatchObject({
      code: "ERR_INVALID_COLLECTION",
    });
  });
});

describe("configFromEnv", () => {
  const base = { KVWS_URL: "redis://127.0.0.1:6379", KVWS_ROOT: "app" };

  it("falls back to the root namespace for deps when KVWS_DEPS_PREFIX is omitted, even with a workspace", () => {
    const config = configFromEnv({ ...base, KVWS_WORKSPACE_ID: "client_a" });
    expect(config).toEqual({ url: base.KVWS_URL, root: "app", workspaceId: "client_a" });
    const ks = keyspace(config);
    expect(ks.prefix("deps")).toBe("app:deps");
    expect(ks.prefix("artifacts")).toBe("app:ws:client_a:artifacts");
  });

  it("lets an explicit KVWS_DEPS_PREFIX win", () => {
    const config = configFromEnv({ ...base, KVWS_WORKSPACE_ID: "client_a", KVWS_DEPS_PREFIX: "shared:deps" });
    expect(keyspace(config).prefix("deps")).toBe("shared:deps");
  });

  it.each(["app:ws:b:artifacts", "app:ws:a:deps", "other:ws:x:deps", "app:{deps}"])(
    "refuses KVWS_DEPS_PREFIX=%s with ERR_INVALID_ROOT",
    (prefix) => {
      expect(() => configFromEnv({ ...base, KVWS_WORKSPACE_ID: "a", KVWS_DEPS_PREFIX: prefix })).toThrow(
        expect.objectContaining({ code: "ERR_INVALID_ROOT", message: expect.stringContaining("deps prefix") }),
      );
    },
  );

  it("reads the unscoped allowlist as a comma list; empty means none", () => {
    expect(configFromEnv({ ...base, KVWS_UNSCOPED: "deps, vectors" }).unscoped).toEqual(["deps", "vectors"]);
    const none = configFromEnv({ ...base, KVWS_WORKSPACE_ID: "w", KVWS_UNSCOPED: "" });
    expect(keyspace(none).prefix("deps")).toBe("app:ws:w:deps");
  });

  it("treats an empty workspace variable as unscoped and requires url and root", () => {
    expect(configFromEnv({ ...base, KVWS_WORKSPACE_ID: "" }).workspaceId).toBeNull();
    expect(() => configFromEnv({ KVWS_ROOT: "app" })).toThrow(expect.objectContaining({ field: "url" }));
    expect(() => configFromEnv({ KVWS_URL: "memory:" })).toThrow(expect.objectContaining({ field: "root" }));
  });
});

describe("parseConfig without zod", () => {
  // parseConfig accepts valid configs by hand (lib/config.ts accepted) so opening storage does not
  // load zod; whatever it accepts, the schema must accept with the same result.
  const value = fc.oneof(
    fc.constantFrom(
      "memory:",
      "redis://h:1",
      "REDIS://h",
      "redis+sentinel://h:26379/mymaster",
      "default",
      "replicated",
      "rediss://h",
      "file:x.json",
      "sqlite:x.db",
      "postgres://h/d",
      "ftp://x",
      "",
      "app",
      "keys",
      "hash",
      "other",
    ),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.integer(),
    fc.array(fc.constantFrom("deps", "x", 1 as unknown as string), { maxLength: 3 }),
  );
  const key = fc.constantFrom(
    "url",
    "root",
    "workspaceId",
    "unscoped",
    "depsPrefix",
    "cluster",
    "hashTags",
    "redisLayout",
    "durability",
    "extra",
  );
  const input = fc.oneof(
    fc.dictionary(key, value, { maxKeys: 9 }),
    fc
      .record({ url: fc.constantFrom("memory:", "redis://h"), root: fc.constant("app") })
      .chain((base) => fc.dictionary(key, value, { maxKeys: 4 }).map((extra) => ({ ...base, ...extra }))),
  );

  it("accepts only what storageConfigSchema accepts, with the same result", () => {
    let quick = 0;
    fc.assert(
      fc.property(input, (config) => {
        const mine = accepted(config);
        const parsed = storageConfigSchema.safeParse(config);
        if (mine !== undefined) {
          quick++;
          expect(parsed.success).toBe(true);
          expect(mine).toEqual(parsed.data);
        }
      }),
      { numRuns: 3000 },
    );
    expect(quick).toBeGreaterThan(100); // the generator reaches the hand-checked path
  });

  it("storageConfigSchema is a zod schema an app's zod composes with", () => {
    const wrapped = z.object({ storage: storageConfigSchema });
    expect(wrapped.safeParse({ storage: { url: "memory:", root: "app" } }).success).toBe(true);
    expect(wrapped.safeParse({ storage: { url: "ftp://x", root: "app" } }).success).toBe(false);
    expect(storageConfigSchema.parse({ url: "memory:", root: "a" })).toEqual({ url: "memory:", root: "a" });
    const { safeParse } = storageConfigSchema; // a method keeps its object when taken off it
    expect(safeParse({ url: "memory:", root: "a" }).success).toBe(true);
  });
});
