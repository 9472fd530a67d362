import { defaultDeserialize } from "@keyv/serialize";
import { describe, expect, it } from "vitest";
import { MAX_DEPTH } from "../../lib/collections/json.js";
import { createStorage, openStorage } from "../../lib/index.js";
import { driverFor } from "../../lib/scope.js";
import { VectorCache } from "../../lib/vectors/cache.js";
import { encodeVector } from "../../lib/vectors/codec.js";
import { jsKernel } from "../../lib/vectors/kernel.js";
import { revalidate, type SyncSource } from "../../lib/vectors/sync.js";
import { BACKENDS, perTest } from "../support/backends.js";
import { randomRoot, rawRedis } from "../support/env.js";
import { captureWarnings } from "../support/warnings.js";

const CODE = "KVWS_UNREADABLE_ENTRY";

/** What upsert would store for `[1, 0]` with metadata nested `depth` levels, built as text (no recursion). */
function deepRowText(depth: number): string {
  const meta = `${'{"a":'.repeat(depth - 1)}{"leaf":1}${"}".repeat(depth - 1)}`;
  return `{"value":{"v":"${encodeVector(Float32Array.of(1, 0))}","m":${meta}}}`;
}

const listen = () => captureWarnings(CODE);

const ids = (matches: Array<{ id: string }>) => matches.map((m) => m.id).sort();

describe("unreadable stored vector entries", () => {
  it("are skipped by search, told once, and do not stop upserts (Map backend, raw writes)", async () => {
    const root = randomRoot("unread");
    const map = new Map<string, unknown>();
    const key = (name: string) => `${root}:ws:w:vectors:${name}`;
    // Written past the library, as an older version or another writer could have.
    map.set(key("deep"), deepRowText(3000));
    map.set(key("garbage"), '{"value":{"v":');
    map.set(key("shape"), '{"value":{"x":1}}');
    map.set(key("limit"), deepRowText(MAX_DEPTH + 1));
    const warnings = listen();
    try {
      const s = createStorage(map, { root, workspaceId: "w" });
      await s.vectors.upsert("a", [1, 0], { ok: 1 });
      await s.vectors.upsert("b", [0, 1]);
      for (let round = 0; round < 3; round++) {
        const others = Array.from({ length: round }, (_, i) => `c${i}`);
        expect(ids(await s.vectors.search([1, 0], { k: 10 }))).toEqual(["a", "b", ...others]);
        // A write by another handle forces the next search to resync from the backend.
        await createStorage(map, { root, workspaceId: "w" }).vectors.upsert(`c${round}`, [1, 1]);
      }
      expect(ids(await s.vectors.search([1, 0], { k: 10 }))).toEqual(["a", "b", "c0", "c1", "c2"]);
      for (const [name, reason] of [
        ["deep", /metadata nests deeper than 128 levels/],
        ["garbage", /SyntaxError/],
        ["shape", /not a vector row/],
        ["limit", /metadata nests deeper than 128 levels/],
      ] as const) {
        const told = await warnings.about(name);
        expect(told, name).toHaveLength(1);
        expect(told[0]!.message).toMatch(reason);
        expect(told[0]!.message).toContain(`${root}:ws:w:vectors`);
      }
    } finally {
      warnings.stop();
    }
  });

  it("a decoder that throws or rejects (Keyv's recursive reviver on a deep row) skips just that row", async () => {
    const map = new Map<string, unknown>();
    const store = driverFor(map).scope(`${randomRoot("dec")}:vectors`);
    await store.set("deep", deepRowText(20_000));
    await store.set("ok", deepRowText(2));
    const unwrap = (data: unknown) => (data as { value?: unknown }).value;
    for (const decode of [
      (raw: unknown) => unwrap(defaultDeserialize(raw as string)),
      async (raw: unknown) => unwrap(defaultDeserialize(raw as string)),
    ]) {
      await expect((async () => decode(deepRowText(20_000)))()).rejects.toThrow(RangeError);
      const source: SyncSource = {
        store,
        names: () => store.names(),
        fetch: (names) => store.getMany(names),
        decode,
      };
      const entry = new VectorCache().entry("k");
      await revalidate(entry, source, { kernel: jsKernel(), int8: false });
      expect(entry.matrix?.ids).toEqual(["ok"]);
    }
  });
});

describe.each(BACKENDS.filter((b) => b.name === "redis"))("unreadable entries on $name", (backend) => {
  const { newRoot, track } = perTest(backend, "unread");

  it("a deep row overwritten in Redis is skipped by search and told once", async () => {
    const root = newRoot();
    const config = { url: backend.url(root), root, workspaceId: "w" };
    const writer = await track(openStorage(config));
    for (const name of ["a", "b", "deep"]) await writer.vectors.upsert(name, [1, 0]);
    const client = await rawRedis();
    try {
      // Replaces the value behind the driver's back: index and version still list it as a row.
      expect(await client.exists(`${root}:ws:w:vectors:deep`)).toBe(1);
      await client.set(`${root}:ws:w:vectors:deep`, deepRowText(5000));
    } finally {
      await client.quit();
    }
    const warnings = listen();
    try {
      const reader = await track(openStorage(config));
      expect(ids(await reader.vectors.search([1, 0]))).toEqual(["a", "b"]);
      await writer.vectors.upsert("c", [0, 1]);
      expect(ids(await reader.vectors.search([1, 0]))).toEqual(["a", "b", "c"]);
      await reader.vectors.upsert("d", [0, 1]);
      const told = await warnings.about("deep");
      expect(told).toHaveLength(1);
      expect(told[0]!.message).toContain(`"${root}:ws:w:vectors"`);
    } finally {
      warnings.stop();
    }
  });
});
