import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  InvalidCollectionError,
  InvalidRootError,
  InvalidWorkspaceIdError,
  keyspace,
  openStorage,
  redisAcl,
  validateCollection,
  validateRoot,
  validateWorkspaceId,
} from "../lib/index.js";
import { validateDepsPrefix, validatePrefix } from "../lib/keys.js";
import { scopeStore } from "../lib/scope.js";
import { BACKENDS, perTest } from "./support/backends.js";

describe("key layout", () => {
  it.each([
    ["app", "client_a", "artifacts", "app:ws:client_a:artifacts"],
    ["app", "client_a", "deps", "app:deps"],
    ["app", undefined, "artifacts", "app:artifacts"],
    ["app", null, "deps", "app:deps"],
    ["a:b", "x.y-z", "workflows", "a:b:ws:x.y-z:workflows"],
  ])("root %s, workspace %s, collection %s → %s", (root, workspaceId, collection, prefix) => {
    const ks = keyspace({ root, workspaceId });
    expect(ks.prefix(collection)).toBe(prefix);
    expect(ks.key(collection, "n:1")).toBe(`${prefix}:n:1`);
  });

  it("exposes what it was built from, with deps unscoped by default", () => {
    const ks = keyspace({ root: "app", workspaceId: "w1" });
    expect(ks.root).toBe("app");
    expect(ks.workspaceId).toBe("w1");
    expect(ks.unscoped).toEqual(["deps"]);
    expect(ks.isScoped("artifacts")).toBe(true);
    expect(ks.isScoped("deps")).toBe(false);
    expect(keyspace({ root: "app" }).isScoped("artifacts")).toBe(false);
  });

  it("honours a custom unscoped allowlist and a deps prefix override", () => {
    const ks = keyspace({ root: "app", workspaceId: "w1", unscoped: ["vectors"] });
    expect(ks.prefix("vectors")).toBe("app:vectors");
    expect(ks.prefix("deps")).toBe("app:ws:w1:deps");
    const custom = keyspace({ root: "app", workspaceId: "w1", depsPrefix: "legacy:deps" });
    expect(custom.prefix("deps")).toBe("legacy:deps");
    expect(custom.withWorkspace("w2").prefix("deps")).toBe("legacy:deps");
    expect(custom.withWorkspace(null).prefix("artifacts")).toBe("app:artifacts");
  });

  it.each([
    "",
    ".",
    "..",
    "../escape",
    "bad/name",
    "bad\\name",
    "bad:name",
    "a*",
    "a b",
    "-lead",
    "_lead",
    "x".repeat(129),
    "é",
    "a\n",
    "a?",
    "[a]",
  ])("refuses workspace id %j", (id) => {
    expect(() => validateWorkspaceId(id)).toThrow(InvalidWorkspaceIdError);
    expect(() => keyspace({ root: "app", workspaceId: id })).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_WORKSPACE_ID", message: expect.stringMatching(/workspace id/) }),
    );
  });

  it.each(["a", "A1", "client_a", "a.b", "a-b", "0", "x".repeat(128)])("accepts workspace id %j", (id) => {
    expect(validateWorkspaceId(id)).toBe(id);
  });

  it("refuses non-string workspace ids", () => {
    expect(() => validateWorkspaceId(42)).toThrow(InvalidWorkspaceIdError);
  });

  it.each(["", "ws", "Artifacts", "1abc", "a:b", "a b", "a*", "_x", "a/b"])("refuses collection %j", (name) => {
    expect(() => validateCollection(name)).toThrow(InvalidCollectionError);
    expect(() => keyspace({ root: "app" }).prefix(name)).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_COLLECTION" }),
    );
    expect(() => keyspace({ root: "app", unscoped: [name] })).toThrow(InvalidCollectionError);
  });

  it.each([
    "",
    " ",
    "a b",
    "a*",
    "a?",
    "a[",
    "a]",
    "a\\b",
    ":a",
    "a:",
    "a::b",
    "ws",
    "app:ws",
    "ws:app",
    "a\tb",
    "{app}",
    "a{b",
    "a}",
  ])("refuses root %j", (root) => {
    expect(() => validateRoot(root)).toThrow(InvalidRootError);
    expect(() => keyspace({ root })).toThrow(expect.objectContaining({ code: "ERR_INVALID_ROOT" }));
  });

  it("refuses a deps prefix that could match by glob or has empty segments", () => {
    expect(() => keyspace({ root: "app", depsPrefix: "app:*" })).toThrow(InvalidRootError);
    expect(() => keyspace({ root: "app", depsPrefix: "app::deps" })).toThrow(InvalidRootError);
  });

  it.each([
    "app:ws:b:artifacts",
    "app:ws:b",
    "app:ws",
    "app:ws:a:deps",
    "other:ws:x:deps",
    "ws:deps",
    "legacy:ws",
    "app:{deps}",
    "{shared}:deps",
    "shared:de}ps",
  ])("refuses deps prefix %j (into a workspace, or a hash tag)", (depsPrefix) => {
    expect(() => validateDepsPrefix(depsPrefix)).toThrow(InvalidRootError);
    expect(() => keyspace({ root: "app", workspaceId: "a", depsPrefix })).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_ROOT", message: expect.stringContaining("deps prefix") }),
    );
    expect(() => keyspace({ root: "app", depsPrefix })).toThrow(InvalidRootError);
  });

  it.each(["legacy:deps", "app:deps", "app:shared:deps", "wss:deps", "app:ws_old:deps", "a.ws:deps"])(
    "accepts deps prefix %j",
    (depsPrefix) => {
      expect(keyspace({ root: "app", workspaceId: "a", depsPrefix }).prefix("deps")).toBe(depsPrefix);
    },
  );

  it("still accepts workspace segments and braces in a plain scope prefix (validatePrefix)", () => {
    expect(validatePrefix("app:ws:a:cache", "scope prefix")).toBe("app:ws:a:cache");
    expect(validatePrefix("app:ws:{a}:artifacts")).toBe("app:ws:{a}:artifacts");
    expect(() => validatePrefix("app:*")).toThrow(expect.objectContaining({ code: "ERR_INVALID_ROOT" }));
    expect(() => validatePrefix("app::x")).toThrow(InvalidRootError);
    expect(() => scopeStore(new Map(), "app:ws:a:cache")).not.toThrow();
  });

  it("never lets redisAcl grant into any workspace through a deps prefix", () => {
    const segment = fc.constantFrom("app", "ws", "b", "a", "deps", "artifacts", "ws_x", "{a}", "x.y", "WS");
    const prefixes = fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => s.join(":"));
    let accepted = 0;
    fc.assert(
      fc.property(prefixes, fc.boolean(), (depsPrefix, depsWritable) => {
        let ks: ReturnType<typeof keyspace>;
        try {
          ks = keyspace({ root: "app", workspaceId: "a", depsPrefix });
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidRootError);
          return;
        }
        accepted++;
        const own = "~app:ws:a:*";
        for (const rule of redisAcl(ks, { depsWritable })) {
          const pattern = /^%RW?~(.*)$/.exec(rule)?.[1] ?? (rule.startsWith("~") ? rule.slice(1) : undefined);
          if (pattern === undefined || `~${pattern}` === own) continue;
          // Every shared pattern is "<prefix>:*" or "<prefix>#*"; none may have a "ws" segment.
          expect(pattern.replace(/[:#]\*$/, "").split(":")).not.toContain("ws");
        }
      }),
      { numRuns: 1000, seed: 11 },
    );
    expect(accepted).toBeGreaterThan(50);
    expect(() => redisAcl(keyspace({ root: "app", workspaceId: "a", depsPrefix: "app:ws:b:artifacts" }))).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_ROOT" }),
    );
  });

  const workspaceIds = fc.oneof(
    fc.constantFrom("a", "ab", "a.b", "a-b", "a_b", "a.", "ab.", "A"),
    fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,12}$/),
  );
  const collections = fc
    .oneof(fc.constantFrom("artifacts", "workflows", "vectors", "deps"), fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/))
    .filter((c) => c !== "ws");
  const names = fc.string({ minLength: 1, maxLength: 20, unit: "grapheme" });
  const triple = fc.record({ ws: fc.option(workspaceIds, { nil: undefined }), collection: collections, name: names });

  it("maps distinct (workspace, collection, name) triples to distinct keys within one root", () => {
    fc.assert(
      fc.property(triple, triple, (x, y) => {
        const kx = keyspace({ root: "app", workspaceId: x.ws });
        const ky = keyspace({ root: "app", workspaceId: y.ws });
        const same = x.collection === y.collection && x.name === y.name;
        // Unscoped collections are shared on purpose: there the workspace does not enter the key.
        const sameScope = x.ws === y.ws || (!kx.isScoped(x.collection) && !ky.isScoped(y.collection));
        const equalKeys = kx.key(x.collection, x.name) === ky.key(y.collection, y.name);
        expect(equalKeys).toBe(same && sameScope);
      }),
      { numRuns: 2000, seed: 42 },
    );
  });

  it("never lets one scope's key start with another scope's prefix", () => {
    fc.assert(
      fc.property(triple, fc.option(workspaceIds, { nil: undefined }), collections, (x, otherWs, otherCollection) => {
        const key = keyspace({ root: "app", workspaceId: x.ws }).key(x.collection, x.name);
        const other = keyspace({ root: "app", workspaceId: otherWs });
        const otherPrefix = `${other.prefix(otherCollection)}:`;
        const sameScope =
          x.collection === otherCollection &&
          (x.ws === otherWs ||
            (!keyspace({ root: "app", workspaceId: x.ws }).isScoped(x.collection) && !other.isScoped(otherCollection)));
        if (!sameScope) expect(key.startsWith(otherPrefix)).toBe(false);
      }),
      { numRuns: 2000, seed: 7 },
    );
    expect(
      "app:ws:ab:artifacts:x".startsWith(`${keyspace({ root: "app", workspaceId: "a" }).prefix("artifacts")}:`),
    ).toBe(false);
  });
});

// Names are code-unit exact, as Redis keys and JSON object keys are: no Unicode normalisation.
describe.each(BACKENDS)("canonically equivalent names on $name", (backend) => {
  const { newRoot, track } = perTest(backend, `nfc${backend.name}`);
  const nfc = "caf\u00e9";
  const nfd = "cafe\u0301";

  it("keeps NFC and NFD spellings of one name as two artifacts", async () => {
    expect(nfc.normalize("NFC")).toBe(nfd.normalize("NFC"));
    const root = newRoot();
    const s = await track(openStorage({ url: backend.url(root), root, workspaceId: "w" }));
    await s.artifacts.save(nfc, { form: "NFC" });
    await s.artifacts.save(nfd, { form: "NFD" });
    expect(await s.artifacts.load(nfc)).toEqual({ form: "NFC" });
    expect(await s.artifacts.load(nfd)).toEqual({ form: "NFD" });
    expect((await s.artifacts.list()).map((a) => a.name).sort()).toEqual([nfc, nfd].sort());
    // A second storage opened on the same URL tells them apart too.
    const again = await track(openStorage({ url: backend.url(root), root, workspaceId: "w" }));
    expect(await again.artifacts.load(nfd)).toEqual({ form: "NFD" });
    expect(await again.artifacts.load(nfc)).toEqual({ form: "NFC" });
  });
});
