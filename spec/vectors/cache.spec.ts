import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { VECTOR_CACHE } from "../../lib/collections/vectors.js";
import { createStorage, type VectorStore } from "../../lib/index.js";
import type { VectorCache } from "../../lib/vectors/cache.js";

const run = promisify(execFile);
const cacheOf = (store: VectorStore) => (store as unknown as { [VECTOR_CACHE]: VectorCache })[VECTOR_CACHE];

async function fill(store: VectorStore, rows: number, metadata: (i: number) => Record<string, unknown>) {
  for (let i = 0; i < rows; i++) await store.upsert(`r${i}`, [i + 1, 1], metadata(i));
}

describe("vector cache bytes count what a workspace holds, not only its matrix", () => {
  it("a workspace whose metadata alone exceeds maxCacheBytes is not kept between searches", async () => {
    const cap = 256 * 1024;
    const options = (workspaceId: string) => ({ root: "c", workspaceId, vectors: { maxCacheBytes: cap } });
    // The same rows without metadata fit: it is the metadata that does not.
    const lean = createStorage(new Map(), options("lean"));
    await fill(lean.vectors, 100, () => ({}));
    await lean.vectors.search([1, 1]);
    expect(cacheOf(lean.vectors).size).toBe(1);
    expect(cacheOf(lean.vectors).bytes).toBeLessThanOrEqual(cap);

    const heavy = createStorage(new Map(), options("heavy"));
    await fill(heavy.vectors, 100, (i) => ({ text: `${i}${"x".repeat(3000)}` }));
    for (let round = 0; round < 2; round++) {
      expect((await heavy.vectors.search([1, 1], { k: 1 }))[0]?.id).toBe("r0");
      expect(cacheOf(heavy.vectors).size).toBe(0);
      expect(cacheOf(heavy.vectors).bytes).toBe(0);
    }
  });

  it("cache.bytes grows with metadata size, on load and on own writes, and shrinks back on delete", async () => {
    const sizes: number[] = [];
    for (const length of [0, 1000, 10_000]) {
      const s = createStorage(new Map(), { root: "c", workspaceId: "w" });
      await fill(s.vectors, 50, (i) => (length ? { text: `${i}`.padEnd(length, "y") } : {}));
      await s.vectors.search([1, 1]);
      sizes.push(cacheOf(s.vectors).bytes);
    }
    // Two bytes per character at least: strings may be UTF-16 in V8.
    expect(sizes[1]! - sizes[0]!).toBeGreaterThanOrEqual(50 * 1000 * 2);
    expect(sizes[2]! - sizes[1]!).toBeGreaterThanOrEqual(50 * 9000 * 2);

    const s = createStorage(new Map(), { root: "c", workspaceId: "w" });
    await fill(s.vectors, 10, () => ({}));
    await s.vectors.search([1, 1]);
    const cache = cacheOf(s.vectors);
    const base = cache.bytes;
    await s.vectors.upsert("big", [1, 2], {
      text: "z".repeat(100_000),
      list: Array.from({ length: 1000 }, (_, i) => i),
    });
    const withBig = cache.bytes;
    expect(withBig - base).toBeGreaterThanOrEqual(100_000 * 2 + 1000 * 8);
    await s.vectors.upsert("big", [1, 2], { text: "small" });
    expect(cache.bytes).toBeLessThan(withBig - 100_000);
    await s.vectors.delete("big");
    expect(cache.bytes).toBe(base);
  });

  it("keeps the real heap within a generous bound of maxCacheBytes (child process, --expose-gc)", async () => {
    const cap = 4 << 20;
    const fixture = fileURLToPath(new URL("./fixtures/cache-heap.ts", import.meta.url));
    const { stdout } = await run(process.execPath, ["--expose-gc", "--import", "tsx", fixture, String(cap)], {
      timeout: 60_000,
    });
    const result = JSON.parse(stdout) as {
      growth: number;
      cacheBytes: number;
      cacheSize: number;
      metadataText: number;
    };
    // 20 MB of metadata text was searched; the cache keeps some workspaces, but no more than its cap.
    expect(result.metadataText).toBeGreaterThan(4 * cap);
    expect(result.cacheSize).toBeGreaterThan(0);
    expect(result.cacheBytes).toBeLessThanOrEqual(cap);
    expect(result.growth).toBeLessThan(cap + (2 << 20));
  });
});
