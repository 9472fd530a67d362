import { describe, expect, it } from "vitest";
import { configFromEnv, InvalidConfigError, InvalidRootError, keyspace, parseConfig } from "../../lib/index.js";
import { layoutPrefixLength, tracksChanges } from "../../lib/keys.js";

describe("hash-tag layout", () => {
  it("wraps the workspace id, and unscoped collections, in braces", () => {
    const ks = keyspace({ root: "app", workspaceId: "client_a", hashTags: true });
    expect(ks.prefix("artifacts")).toBe("app:ws:{client_a}:artifacts");
    expect(ks.key("artifacts", "report")).toBe("app:ws:{client_a}:artifacts:report");
    expect(ks.prefix("deps")).toBe("app:{deps}");
    expect(ks.workspacePrefix).toBe("app:ws:{client_a}");
    expect(ks.hashTags).toBe(true);
    const unscoped = keyspace({ root: "app", hashTags: true });
    expect(unscoped.prefix("artifacts")).toBe("app:{artifacts}");
    expect(unscoped.workspacePrefix).toBeUndefined();
  });

  it("keeps the plain layout by default", () => {
    const ks = keyspace({ root: "app", workspaceId: "client_a" });
    expect(ks.prefix("artifacts")).toBe("app:ws:client_a:artifacts");
    expect(ks.prefix("deps")).toBe("app:deps");
    expect(ks.hashTags).toBe(false);
  });

  it("keeps hash tags across withWorkspace, and tags a custom deps prefix whole", () => {
    const ks = keyspace({ root: "app", workspaceId: "a", hashTags: true, depsPrefix: "shared:deps" });
    expect(ks.withWorkspace("b").prefix("notes")).toBe("app:ws:{b}:notes");
    expect(ks.withWorkspace(null).prefix("notes")).toBe("app:{notes}");
    // Its values and its #index must share a slot: the whole prefix is the tag.
    expect(ks.prefix("deps")).toBe("{shared:deps}");
  });

  it("never lets one workspace's tagged prefix match another's keys", () => {
    const a = keyspace({ root: "app", workspaceId: "a", hashTags: true });
    const ab = keyspace({ root: "app", workspaceId: "ab", hashTags: true });
    expect(ab.key("notes", "x").startsWith(`${a.prefix("notes")}:`)).toBe(false);
    expect(ab.key("notes", "x").startsWith(`${a.workspacePrefix}:`)).toBe(false);
  });

  it("keeps change logs for vector prefixes in the tagged layout too", () => {
    for (const workspaceId of ["a", null]) {
      const ks = keyspace({ root: "app", workspaceId, hashTags: true });
      expect(tracksChanges(ks.prefix("vectors")), ks.prefix("vectors")).toBe(true);
      expect(tracksChanges(`${ks.prefix("workflows")}#vectors`)).toBe(true);
      expect(tracksChanges(ks.prefix("artifacts"))).toBe(false);
    }
  });

  it("reads a tagged key's prefix back", () => {
    const key = keyspace({ root: "app", workspaceId: "a", hashTags: true }).key("notes", "x:y");
    expect(key.slice(0, layoutPrefixLength(key))).toBe("app:ws:{a}:notes");
  });

  it("refuses braces in roots and deps prefixes, and a non-boolean hashTags", () => {
    expect(() => keyspace({ root: "app{x}", hashTags: true })).toThrow(InvalidRootError);
    expect(() => keyspace({ root: "app", depsPrefix: "{d}", hashTags: true })).toThrow(InvalidRootError);
    expect(() => keyspace({ root: "app", hashTags: "yes" as never })).toThrow(/hashTags must be a boolean/);
  });
});

describe("cluster config", () => {
  it("forces hash tags when cluster is true", () => {
    const config = parseConfig({ url: "redis://127.0.0.1:7000", root: "app", cluster: true });
    expect(config.hashTags).toBe(true);
    expect(config.cluster).toBe(true);
  });

  it("refuses cluster with hashTags false, or with a non-Redis url", () => {
    const attempt = (extra: Record<string, unknown>, url = "redis://127.0.0.1:7000") => {
      try {
        parseConfig({ url, root: "app", ...extra });
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const noTags = attempt({ cluster: true, hashTags: false });
    expect(noTags).toBeInstanceOf(InvalidConfigError);
    expect((noTags as InvalidConfigError).field).toBe("hashTags");
    const memory = attempt({ cluster: true }, "memory:");
    expect(memory).toBeInstanceOf(InvalidConfigError);
    expect((memory as InvalidConfigError).field).toBe("cluster");
  });

  it("allows hashTags on a standalone url", () => {
    expect(parseConfig({ url: "memory:", root: "app", hashTags: true }).hashTags).toBe(true);
  });

  it("reads KVWS_CLUSTER and KVWS_HASH_TAGS, refusing anything but a boolean word", () => {
    const env = { KVWS_URL: "redis://127.0.0.1:7000", KVWS_ROOT: "app", KVWS_CLUSTER: "true" };
    expect(configFromEnv(env)).toMatchObject({ cluster: true, hashTags: true });
    expect(configFromEnv({ KVWS_URL: "memory:", KVWS_ROOT: "app", KVWS_HASH_TAGS: "1" }).hashTags).toBe(true);
    expect(() => configFromEnv({ ...env, KVWS_CLUSTER: "maybe" })).toThrow(InvalidConfigError);
  });
});

describe("bootstrap config", () => {
  it("carries hashTags, so another process opens the same layout", async () => {
    const { createStorage, openStorage } = await import("../../lib/index.js");
    const storage = createStorage(new Map(), { root: "app", workspaceId: "a", hashTags: true, url: "memory:boot" });
    const config = storage.toBootstrapConfig();
    expect(config.hashTags).toBe(true);
    expect(config.cluster).toBeUndefined();
    const reopened = await openStorage(config);
    expect(reopened.keyspace.prefix("notes")).toBe("app:ws:{a}:notes");
    await reopened.close();
  });
});
