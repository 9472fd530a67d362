import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { LOG_LIMIT } from "../lib/backends/change-log.js";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "../lib/backends/redis/open.js";
import { MAX_DEPTH } from "../lib/collections/json.js";
import { createStorage, VIEW_LIMIT } from "../lib/index.js";
import { MAX_COLLECTION_LENGTH, MAX_NAME_LENGTH, MAX_WORKSPACE_ID_LENGTH } from "../lib/keys.js";
import { DEFAULT_CACHE_LIMITS } from "../lib/vectors/cache.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const readme = readFileSync(join(repo, "README.md"), "utf8");
const vectorsDoc = readFileSync(join(repo, "docs", "vectors.md"), "utf8");

/** Every number the pattern captures in the text; at least one must be there. */
function numbers(text: string, pattern: RegExp): number[] {
  const found = [...text.matchAll(pattern)].map((m) => Number((m[1] as string).replace(/,/g, "")));
  expect(found.length, `no match for ${pattern} in the document`).toBeGreaterThan(0);
  return found;
}

describe("numbers the README states are the ones the code uses", () => {
  it("workspace ids: 1–N characters", () => {
    for (const n of numbers(readme, /workspace ids are 1–(\d+) characters/g)) expect(n).toBe(MAX_WORKSPACE_ID_LENGTH);
    for (const n of numbers(readme, /workspace ids:[^|]*> (\d+) chars/g)) expect(n).toBe(MAX_WORKSPACE_ID_LENGTH);
  });

  it("artifact names and vector ids: up to N characters", () => {
    for (const n of numbers(readme, /vector ids are any text up to (\d+) characters/g)) expect(n).toBe(MAX_NAME_LENGTH);
    for (const n of numbers(readme, /vector ids?:? empty, > (\d+) chars/g)) expect(n).toBe(MAX_NAME_LENGTH);
  });

  it("collection names: at most N characters", () => {
    for (const n of numbers(readme, /collection names? [^.|]*?at most (\d+) characters/g)) {
      expect(n).toBe(MAX_COLLECTION_LENGTH);
    }
    for (const n of numbers(readme, /collection names?[^|]*> (\d+) chars/g)) expect(n).toBe(MAX_COLLECTION_LENGTH);
  });

  it("values and metadata nest at most MAX_DEPTH levels", () => {
    for (const n of numbers(readme, /nested deeper than (\d+) levels \(`MAX_DEPTH`/g)) expect(n).toBe(MAX_DEPTH);
  });

  it("a storage keeps the stores of its VIEW_LIMIT most recent workspaces", () => {
    const operations = readFileSync(join(repo, "docs", "operations.md"), "utf8");
    for (const text of [readme, operations]) {
      for (const n of numbers(text, /`VIEW_LIMIT` \(([\d,]+)\)/g)) expect(n).toBe(VIEW_LIMIT);
    }
  });

  it("connectTimeoutMs defaults to N s", () => {
    for (const n of numbers(readme, /`connectTimeoutMs`\s+\(default (\d+) s\)/g)) {
      expect(n * 1000).toBe(DEFAULT_CONNECT_TIMEOUT_MS);
    }
  });

  it("vector cache defaults", () => {
    const [workspaces] = numbers(readme, /maxCachedWorkspaces: (\d+), maxCacheBytes: 2 \*\* \d+ \}` \(the defaults\)/g);
    const [power] = numbers(readme, /maxCachedWorkspaces: \d+, maxCacheBytes: 2 \*\* (\d+) \}` \(the defaults\)/g);
    expect(workspaces).toBe(DEFAULT_CACHE_LIMITS.maxWorkspaces);
    expect(2 ** (power as number)).toBe(DEFAULT_CACHE_LIMITS.maxBytes);
  });

  it("docs/vectors.md: change logs keep N names on every backend", () => {
    const stated = numbers(vectorsDoc, /change log of (\d+) names \(like Redis\)/g);
    for (const n of stated) expect(n).toBe(LOG_LIMIT);
  });
});

describe("what docs/vectors.md says about a caller's own Map", () => {
  it("a direct write is neither listed nor searched, by this storage or a later one; keys held before are", async () => {
    const before = new Map<string, unknown>();
    await createStorage(before, { root: "docs", workspaceId: "w" }).vectors.upsert("old", [1, 0, 0]);
    const copy = new Map(before);
    expect(await createStorage(copy, { root: "docs", workspaceId: "w" }).vectors.ids()).toEqual(["old"]);
    const map = new Map<string, unknown>();
    const storage = createStorage(map, { root: "docs", workspaceId: "w" });
    await storage.vectors.upsert("a", [1, 0, 0]);
    expect((await storage.vectors.search([1, 0, 0])).map((m) => m.id)).toEqual(["a"]);
    // Behind the library's back: a copy of a's stored row under another name.
    map.set("docs:ws:w:vectors:b", map.get("docs:ws:w:vectors:a"));
    expect((await storage.vectors.search([1, 0, 0])).map((m) => m.id)).toEqual(["a"]);
    await storage.vectors.upsert("c", [0, 0, 1]);
    expect((await storage.vectors.search([1, 0, 0])).map((m) => m.id)).toEqual(["a", "c"]);
    const later = createStorage(map, { root: "docs", workspaceId: "w" });
    expect((await later.vectors.search([1, 0, 0])).map((m) => m.id)).toEqual(["a", "c"]);
    expect(await later.vectors.ids()).toEqual(["a", "c"]);
    expect(vectorsDoc).toMatch(/Writes made directly to a Map you passed to\s+`createStorage`/);
    expect(vectorsDoc).toMatch(/Keys the Map already held when the library first\s+saw it are booked/);
  });
});

describe("the README's error and warning tables", () => {
  const sources = () => {
    const files: string[] = [];
    for (const entry of readdirSync(join(repo, "lib"), { withFileTypes: true, recursive: true })) {
      if (entry.isFile() && entry.name.endsWith(".ts"))
        files.push(readFileSync(join(entry.parentPath, entry.name), "utf8"));
    }
    return files.join("\n");
  };
  const tableRows = (heading: string) =>
    new Set([...readme.matchAll(new RegExp(`^\\| \`(${heading}_[A-Z_]+)\``, "gm"))].map((m) => m[1]));

  it("name every error code lib/errors.ts defines, and no other", () => {
    const defined = new Set(
      [...readFileSync(join(repo, "lib", "errors.ts"), "utf8").matchAll(/Error\("(ERR_[A-Z_]+)"/g)].map((m) => m[1]),
    );
    expect(defined.size).toBeGreaterThan(20);
    expect(tableRows("ERR")).toEqual(defined);
  });

  it("name every warning code the library emits, and no other", () => {
    const emitted = new Set([...sources().matchAll(/warnOnce\(\s*"(KVWS_[A-Z_]+)"/g)].map((m) => m[1]));
    expect(emitted.size).toBeGreaterThan(5);
    expect(tableRows("KVWS")).toEqual(emitted);
  });
});
