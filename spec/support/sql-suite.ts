import { describe, expect, it } from "vitest";
import type { Backend } from "../../lib/backends/driver.js";
import { sqlDriver } from "../../lib/backends/sql/driver.js";
import type { SqlStore } from "../../lib/backends/sql/store.js";
import { openBackend, openStorage, scopeStore } from "../../lib/index.js";
import type { BackendCase } from "./backends.js";
import { perTest } from "./backends.js";
import { listNames } from "./prefix-store.js";

const LOOK_ALIKES = ["client_a", "clientXa", "CLIENT_A", "client.a"];
const HOSTILE_NAMES = ["a_b", "100%", "a*", "what?", "[x", "%_", "x".repeat(512)];

/** What every SQL engine of the library must do beyond the shared backend suites. */
export function sqlEngineSuite(
  backend: BackendCase,
  engine: { rowCount(url: string, root: string): Promise<number>; plan(url: string, prefix: string): Promise<string> },
) {
  describe(`${backend.name} engine`, () => {
    const { newRoot, track } = perTest(backend, `sql${backend.name}`);
    const withBackend = async (root: string, work: (b: Backend) => Promise<void>) => {
      const opened = await openBackend(backend.url(root));
      try {
        await work(opened);
      } finally {
        await opened.close();
      }
    };

    it("never matches a look-alike workspace id when listing or clearing", async () => {
      const root = newRoot();
      const url = backend.url(root);
      const views = await Promise.all(LOOK_ALIKES.map((id) => track(openStorage({ url, root, workspaceId: id }))));
      for (const [i, s] of views.entries()) await s.artifacts.save(`own-${i}`, i);
      await views[0]!.collection("artifacts").clear();
      expect(await views[0]!.artifacts.list()).toEqual([]);
      for (const [i, s] of views.entries()) {
        if (i > 0) expect((await s.artifacts.list()).map((a) => a.name)).toEqual([`own-${i}`]);
      }
    });

    it("stores names with _ % * ? [ and 512 characters, and 700-character keys", async () => {
      const root = newRoot();
      const s = await track(openStorage({ url: backend.url(root), root, workspaceId: "w" }));
      for (const name of HOSTILE_NAMES) await s.artifacts.save(name, name.length);
      await s.withWorkspace("wX").artifacts.save("a_b", "other");
      expect((await s.artifacts.list()).map((a) => a.name).sort()).toEqual([...HOSTILE_NAMES].sort());
      const long = "k".repeat(700);
      await s.collection("notes").set(long, "v");
      expect(await s.collection("notes").get(long)).toBe("v");
      await s.collection("artifacts").clear();
      expect(await s.withWorkspace("wX").artifacts.load("a_b")).toBe("other");
    });

    it("never shows an expired row, and a later TTL write deletes it", async () => {
      const root = newRoot();
      await withBackend(root, async (b) => {
        const scope = b.driver.scope(`${root}:ws:w:cache`);
        await scope.set("short", "1", 30);
        await scope.set("kept", "2");
        await new Promise((resolve) => setTimeout(resolve, 80));
        expect(await scope.get("short")).toBeUndefined();
        expect(await scope.has("short")).toBe(false);
        expect(await scope.getMany(["short", "kept"])).toEqual([undefined, "2"]);
        expect(await listNames(scope)).toEqual(["kept"]);
        expect(await scope.delete("short")).toBe(false);
        await scope.set("short2", "3", 30);
        await new Promise((resolve) => setTimeout(resolve, 80));
        expect(await engine.rowCount(backend.url(root), root)).toBe(2);
        await scope.set("other", "4", 60_000);
        expect(await engine.rowCount(backend.url(root), root)).toBe(2);
      });
    });

    it("lists one prefix by an index range scan, never a full scan", async () => {
      const root = newRoot();
      await withBackend(root, async (b) => {
        await b.driver.scope(`${root}:ws:w:artifacts`).set("x", "1");
        const plan = await engine.plan(backend.url(root), `${root}:ws:w:artifacts`);
        expect(plan).toMatch(/Index Only Scan|Index Scan|USING (COVERING )?INDEX/i);
        expect(plan).not.toMatch(/Seq Scan|SCAN [a-z_"]+\s*$/im);
      });
    });

    it("hands out versions that never repeat, across a clear, and says what changed", async () => {
      const root = newRoot();
      await withBackend(root, async (b) => {
        const vectors = b.driver.scope(`${root}:ws:w:vectors`);
        expect(await vectors.version!()).toBe("0");
        expect(await vectors.changedSince!("0")).toEqual([]);
        await vectors.set("a", "1");
        const v1 = await vectors.version!();
        await vectors.setMany([
          { name: "b", value: "2" },
          { name: "c", value: "3" },
        ]);
        await vectors.delete("a");
        expect((await vectors.changedSince!(v1))?.sort()).toEqual(["a", "b", "c"]);
        expect(await vectors.changedSince!(await vectors.version!())).toEqual([]);
        await vectors.clear();
        expect(await vectors.changedSince!(v1)).toBeUndefined();
        await vectors.set("a", "1");
        const v2 = await vectors.version!();
        expect(v2).not.toBe(v1);
        expect(await vectors.changedSince!(v1)).toBeUndefined();
      });
    });

    it("forgets changes further back than its log, answering 'unknown' instead of too little", async () => {
      const root = newRoot();
      await withBackend(root, async (b) => {
        const small = sqlDriver(clientOf(b), tableOf(backend, root), { logLimit: 3 }).scope(`${root}:ws:w:vectors`);
        await small.set("first", "0");
        const old = await small.version!();
        for (let i = 0; i < 70; i++) await small.set(`n${i % 5}`, String(i));
        expect(await small.changedSince!(old)).toBeUndefined();
        const recent = await small.version!();
        await small.set("n9", "x");
        expect(await small.changedSince!(recent)).toEqual(["n9"]);
      });
    });

    it("raw Keyv writes through the backend's adapter are listed by their scope", async () => {
      const root = newRoot();
      await withBackend(root, async (b) => {
        const raw = b.store as { set(k: string, v: string): Promise<unknown>; get(k: string): Promise<unknown> };
        await raw.set(`${root}:ws:w:artifacts:raw`, "r");
        const scoped = scopeStore(b.store, `${root}:ws:w:artifacts`);
        expect(await scoped.get("raw")).toBe("r");
        expect(await listNames(b.driver.scope(`${root}:ws:w:artifacts`))).toEqual(["raw"]);
        expect(await raw.get(`${root}:ws:w:artifacts:raw`)).toBe("r");
      });
    });
  });
}

// The internals a test reaches for: the SqlClient of a backend (via its store) and its table.
function clientOf(b: Backend) {
  return (b.store as SqlStore).sqlClient;
}

function tableOf(backend: BackendCase, root: string): string {
  return backend.name === "postgres" ? (new URL(backend.url(root)).searchParams.get("table") as string) : "kvws";
}
