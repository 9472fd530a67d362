/**
 * Paged listing (contract §8): artifacts.list / workflows.list / vectors.ids with
 * { prefix, after, limit }, on every backend, including pages read while other names come and go.
 */
import { describe, expect, it } from "vitest";
import { compareNames, DRIVER, type PageOptions } from "../../lib/backends/driver.js";
import { MemoryStore } from "../../lib/backends/memory.js";
import {
  createStorage,
  InvalidArgumentError,
  openBackend,
  openStorage,
  type WorkspaceStorage,
} from "../../lib/index.js";
import { BACKENDS, perTest } from "../support/backends.js";

const pad = (i: number) => String(i).padStart(4, "0");

/** Every name of a paged listing, page by page, checking each page is sorted and after the previous one. */
async function pageAll(list: (after: string | undefined) => Promise<string[]>, limit: number): Promise<string[]> {
  const seen: string[] = [];
  let after: string | undefined;
  for (let pages = 0; ; pages++) {
    expect(pages).toBeLessThan(10_000); // a listing that never ends is a failure, not a hang
    const page = await list(after);
    expect(page.length).toBeLessThanOrEqual(limit);
    for (const name of page) {
      if (seen.length > 0) expect(compareNames(name, seen[seen.length - 1] as string), name).toBeGreaterThan(0);
      seen.push(name);
    }
    if (page.length < limit) return seen;
    after = page[page.length - 1];
  }
}

for (const backend of BACKENDS) {
  describe(`paged listing on ${backend.name}`, () => {
    const { newRoot, track } = perTest(backend, "page");
    const open = (root: string): Promise<WorkspaceStorage> =>
      track(openStorage({ url: backend.url(root), root, workspaceId: "w" }));

    it("visits every artifact present throughout exactly once while others are written and deleted", async () => {
      const s = await open(newRoot());
      const stable = Array.from({ length: 1000 }, (_, i) => `n${pad(i * 2)}`);
      // Names that will be deleted during the paging, interleaved with the stable ones.
      const doomed = Array.from({ length: 200 }, (_, i) => `n${pad(i * 10 + 1)}`);
      for (let i = 0; i < stable.length; i += 100) {
        await Promise.all(
          [...stable.slice(i, i + 100), ...doomed.slice(i / 5, i / 5 + 20)].map((n) => s.artifacts.save(n, n)),
        );
      }
      // A bounded pool of names that come and go all over the key range (before, between and
      // after the stable ones), so the paging must end.
      const pool = Array.from({ length: 150 }, (_, k) => [`n${pad((k * 37) % 2000)}x`, `a${k}`, `z${k}`]).flat();
      let stop = false;
      let churned = 0;
      let ended = false;
      const churn = (async () => {
        try {
          for (let i = 0; !stop && i < 3000; i++, churned++) {
            await Promise.all([
              s.artifacts.save(pool[i % pool.length] as string, i),
              s.artifacts.delete(pool[(i + pool.length / 2) % pool.length] as string),
              s.artifacts.delete(doomed[i % doomed.length] as string),
            ]);
            await new Promise((resolve) => setImmediate(resolve)); // let the pager run on in-process backends
          }
        } finally {
          ended = true;
        }
      })();
      let seen: string[];
      try {
        seen = await pageAll(async (after) => {
          // At least one round of writes and deletes lands between two pages, on every backend.
          const target = churned + 1;
          while (churned < target && !ended) await new Promise((resolve) => setTimeout(resolve, 1));
          return (await s.artifacts.list({ after, limit: 37 })).map((i) => i.name);
        }, 37);
        // The pages were read while names came and went, not before or after.
        expect(churned).toBeGreaterThan(10);
      } finally {
        stop = true;
        await churn;
      }
      const counts = new Map<string, number>();
      for (const name of seen) counts.set(name, (counts.get(name) ?? 0) + 1);
      for (const name of stable) expect(counts.get(name), name).toBe(1);
      expect(new Set(seen).size).toBe(seen.length);
    });

    it("filters by a prefix taken literally (':' '*' '[' '%' '_'), sorted, and pages within it", async () => {
      const s = await open(newRoot());
      const inside = ["a:*[%_", "a:*[%_0", "a:*[%_:b", "a:*[%_z", "a:*[%_\u{1F600}", "a:*[%_\uFF5E"];
      const outside = ["a:*[%", "a:*[%-", "a:*[%_".replace("_", "x"), "a:*x%_1", "a:a[%_1", "b", "a", "a:*[%`"];
      await Promise.all([...inside, ...outside].map((n) => s.artifacts.save(n, n)));
      const expected = ["a:*[%_", "a:*[%_0", "a:*[%_:b", "a:*[%_z", "a:*[%_\uFF5E", "a:*[%_\u{1F600}"];
      expect((await s.artifacts.list({ prefix: "a:*[%_" })).map((i) => i.name)).toEqual(expected);
      const paged = await pageAll(
        async (after) => (await s.artifacts.list({ prefix: "a:*[%_", after, limit: 2 })).map((i) => i.name),
        2,
      );
      expect(paged).toEqual(expected);
      // `after` before the prefix's range starts at the range; after it, nothing.
      expect((await s.artifacts.list({ prefix: "a:*[%_", after: "a", limit: 1 })).map((i) => i.name)).toEqual([
        "a:*[%_",
      ]);
      expect(await s.artifacts.list({ prefix: "a:*[%_", after: "a:*[%_\u{1F600}", limit: 5 })).toEqual([]);
      expect(await s.artifacts.list({ prefix: "nothing", limit: 5 })).toEqual([]);
    });

    it("sorts by code point on every backend (a character above U+FFFF after U+FF5E)", async () => {
      const s = await open(newRoot());
      await Promise.all(["\u{1F600}", "\uFF5E", "~", "é"].map((n) => s.artifacts.save(n, n)));
      const order = ["~", "é", "\uFF5E", "\u{1F600}"];
      expect((await s.artifacts.list()).map((i) => i.name)).toEqual(order);
      expect(
        await pageAll(async (after) => (await s.artifacts.list({ after, limit: 1 })).map((i) => i.name), 1),
      ).toEqual(order);
    });

    it("pages workflows and vector ids the same way", async () => {
      const s = await open(newRoot());
      const names = Array.from({ length: 25 }, (_, i) => `wf_${pad(i)}`);
      for (const name of names) {
        await s.workflows.add({ name, source: "x", description: `workflow ${name}` });
        await s.vectors.upsert(`v:${name}`, [1, 2, 3]);
      }
      await s.vectors.upsert("other", [1, 2, 3]);
      const wf = await pageAll(async (after) => (await s.workflows.list({ after, limit: 4 })).map((w) => w.name), 4);
      expect(wf).toEqual(names);
      expect((await s.workflows.list({ prefix: "wf_001", limit: 100 })).map((w) => w.name)).toEqual(
        names.filter((n) => n.startsWith("wf_001")),
      );
      const ids = await pageAll((after) => s.vectors.ids({ prefix: "v:", after, limit: 6 }), 6);
      expect(ids).toEqual(names.map((n) => `v:${n}`));
      expect(await s.vectors.ids()).toEqual(["other", ...ids]);
      expect(await s.vectors.ids({ after: "v:wf_0023" })).toEqual(["v:wf_0024"]);
    });

    it("pages natively: the backend's driver has its own page (a range read, not a sort of every name)", async () => {
      const root = newRoot();
      const opened = await openBackend(backend.url(root));
      try {
        expect(opened.driver.scope(`${root}:ws:w:artifacts`).page).toBeTypeOf("function");
      } finally {
        await opened.close();
      }
    });

    it("rejects bad options with InvalidArgumentError and changes nothing", async () => {
      const s = await open(newRoot());
      await s.artifacts.save("a", 1);
      const bad: unknown[] = [
        { limit: 0 },
        { limit: -1 },
        { limit: 1.5 },
        { limit: "3" },
        { limit: Number.NaN },
        { limit: Number.POSITIVE_INFINITY },
        { prefix: 1 },
        { after: null },
        { after: 3 },
        { after: "a\uD800" },
        { prefix: "a\u0000" },
        "a",
        null,
        [],
      ];
      for (const options of bad) {
        const label = JSON.stringify(options) ?? String(options);
        for (const call of [
          () => s.artifacts.list(options as never),
          () => s.workflows.list(options as never),
          () => s.vectors.ids(options as never),
        ]) {
          await expect(call(), label).rejects.toBeInstanceOf(InvalidArgumentError);
          await expect(call(), label).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
        }
      }
      expect((await s.artifacts.list()).map((i) => i.name)).toEqual(["a"]);
    });
  });
}

describe("paged listing through a storage", () => {
  it("reads pages with the driver's own page (the range read), not by listing every name", async () => {
    const store = new MemoryStore();
    const driver = store[DRIVER];
    const scope = driver.scope.bind(driver);
    let pages = 0;
    let listings = 0;
    driver.scope = (prefix) => {
      const inner = scope(prefix);
      const page = inner.page?.bind(inner);
      return {
        ...inner,
        names: () => {
          listings++;
          return inner.names();
        },
        ...(page && {
          page: (options: PageOptions) => {
            pages++;
            return page(options);
          },
        }),
      };
    };
    const s = createStorage(store, { root: "app", workspaceId: "w" });
    for (const name of ["a", "b", "c"]) await s.artifacts.save(name, name);
    await s.vectors.upsert("v", [1, 0]);
    listings = 0;
    expect((await s.artifacts.list({ after: "a", limit: 1 })).map((i) => i.name)).toEqual(["b"]);
    expect(await s.vectors.ids({ limit: 5 })).toEqual(["v"]);
    expect(pages).toBe(2);
    expect(listings).toBe(0);
  });
});
