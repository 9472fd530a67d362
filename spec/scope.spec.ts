import { keyvApiTests, keyvIteratorTests, keyvValueTests } from "@keyv/test-suite";
import KeyvModule, { Keyv } from "keyv";
import { KeyvFile } from "keyv-file";
import * as vitest from "vitest";
import { describe, expect, it } from "vitest";
import { scopeStore } from "../lib/index.js";
import { tempDir } from "./support/env.js";

describe("@keyv/test-suite over scopeStore(Map)", () => {
  // One backing Map holds foreign keys too; the suite clears and iterates through the scoped view only.
  const backing = new Map<string, unknown>([["foreign", "untouched"]]);
  const store = () => scopeStore(backing, "suite:ws:a:things");
  keyvApiTests(vitest, KeyvModule, store);
  keyvValueTests(vitest, KeyvModule, store);
  keyvIteratorTests(vitest, KeyvModule, store);
  it("left the foreign key alone", () => {
    expect(backing.get("foreign")).toBe("untouched");
  });
});

describe("scopeStore", () => {
  it("stores key k at <prefix>:k and never mutates the wrapped Map's other keys", async () => {
    const map = new Map<string, unknown>([
      ["app:ws:ab:artifacts:x", "sibling"],
      ["other", 1],
    ]);
    const keyv = new Keyv({ store: scopeStore(map, "app:ws:a:artifacts"), namespace: undefined, useKeyPrefix: false });
    await keyv.set("a:b/c*?[%_é", { v: 1 });
    expect(map.has("app:ws:a:artifacts:a:b/c*?[%_é")).toBe(true);
    expect(await keyv.get("a:b/c*?[%_é")).toEqual({ v: 1 });
    await keyv.clear();
    expect([...map.keys()].sort()).toEqual(["app:ws:ab:artifacts:x", "other"]);
  });

  it("keeps Keyv's default namespace inside the prefix, and clear() then only clears that namespace", async () => {
    const map = new Map<string, unknown>();
    const scoped = scopeStore(map, "p");
    const a = new Keyv({ store: scoped });
    await a.set("k", 1);
    expect([...map.keys()]).toEqual(["p:keyv:k"]);
    map.set("p:other:k", "x");
    await a.clear();
    expect([...map.keys()]).toEqual(["p:other:k"]);
  });

  it("gives several views of one Map independent contents", async () => {
    const map = new Map();
    const one = new Keyv({ store: scopeStore(map, "r:ws:one:c"), namespace: undefined, useKeyPrefix: false });
    const two = new Keyv({ store: scopeStore(map, "r:ws:two:c"), namespace: undefined, useKeyPrefix: false });
    await one.set("k", "1");
    await two.set("k", "2");
    expect(await one.get("k")).toBe("1");
    expect(await two.get("k")).toBe("2");
    const seen: unknown[] = [];
    for await (const entry of one.iterator!(undefined)) seen.push(entry);
    expect(seen).toEqual([["k", "1"]]);
    await one.clear();
    expect(await two.get("k")).toBe("2");
  });

  it("lists and clears exactly one prefix through keyv-file (unknown adapters: spec/adapters/unsupported.spec.ts)", async () => {
    const dir = tempDir();
    try {
      const file = new KeyvFile({ filename: `${dir.path}/kf.json`, writeDelay: 0 });
      const scoped = scopeStore(file, "app:ws:a:artifacts");
      const keyv = new Keyv({ store: scoped, namespace: undefined, useKeyPrefix: false });
      await new Keyv({ store: scopeStore(file, "app:ws:ab:artifacts"), namespace: undefined }).set("x", 2);
      await keyv.set("x", 1);
      expect(await keyv.get("x")).toBe(1);
      await scoped.clear();
      expect(await keyv.get("x")).toBeUndefined();
      expect(await file.get("app:ws:ab:artifacts:x")).toBeDefined();
    } finally {
      dir.remove();
    }
  });

  it("refuses a prefix with glob characters or empty segments", () => {
    expect(() => scopeStore(new Map(), "a*")).toThrow(expect.objectContaining({ code: "ERR_INVALID_ROOT" }));
    expect(() => scopeStore(new Map(), "a::b")).toThrow(expect.objectContaining({ code: "ERR_INVALID_ROOT" }));
  });
});
