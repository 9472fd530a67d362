// A workspace's slot resharded to another master while 16 writers write to it, in both Redis
// layouts: every acknowledged write readable afterwards, the listing exact, a refused write typed
// and not applied. The hash layout (one key per collection) keeps serving mid-migration, through
// ASK; the key layout serves overwrites (SET XX) and new names (refused as one MULTI with
// TRYAGAIN, then sent as ZADD, SET, ZADD, each on its own key). Throughput: bench/cluster.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keySlot } from "../../lib/backends/redis/cluster-watch.js";
import { ConnectionError } from "../../lib/errors.js";
import { openStorage, type WorkspaceStorage } from "../../lib/index.js";
import { metaKey } from "../../lib/keys.js";
import { migrateSlot, ownerOf, startCluster, type TestCluster } from "../support/cluster.js";
import { randomRoot } from "../support/env.js";

const WRITERS = 16;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("resharding a workspace's slot under 16 writers", () => {
  const state: { cluster?: TestCluster } = {};
  const cluster = () => state.cluster as TestCluster;
  beforeAll(async () => {
    state.cluster = await startCluster();
  });
  afterAll(async () => {
    await state.cluster?.stop();
  });

  for (const layout of ["keys", "hash"] as const) {
    it(`loses no acknowledged write in the ${layout} layout, and lists exactly what was acknowledged`, async () => {
      const root = randomRoot("rsh");
      // A workspace (so a slot) per test: a later test must not migrate the keys an earlier one left.
      const config = { url: cluster().url, root, workspaceId: `moving-${layout}`, cluster: true, redisLayout: layout };
      const storage: WorkspaceStorage = await openStorage(config);
      // A storage that gives up quickly: what a write meets while the slot is half-migrated.
      const impatient = await openStorage(config, { commandTimeoutMs: 300 });
      try {
        const notes = storage.collection("notes");
        for (let i = 0; i < 40; i++) await notes.set(`pre-${i}`, i);
        for (let c = 0; c < 5; c++) await storage.collection(`other${c}`).set("x", c);
        // Tracked: its #index (or #data) and #log exist before the migration, so the slot splits them.
        for (let v = 0; v < 20; v++) await storage.vectors.upsert(`v${v}`, [1, v]);
        await storage.vectors.search([1, 0]); // a warm handle, which then follows the log

        // Its first write (registry entries, layout check) before the migration, as a running app's.
        await impatient.collection("notes").set("pre-3", 3);
        const prefix = storage.keyspace.prefix("notes");
        const slot = keySlot(prefix);
        const from = await ownerOf(cluster(), slot);
        const target = cluster().masters.find((m) => m.port !== from)!.port;

        const acked = new Map<string, number>();
        const failures: unknown[] = [];
        let writing = true;
        const writer = async (w: number) => {
          for (let i = 0; writing; i++) {
            try {
              await notes.set(`w${w}-${i}`, i);
              acked.set(`w${w}-${i}`, i);
            } catch (error) {
              failures.push(error);
            }
          }
        };
        const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
        while (acked.size < 50) await sleep(5);

        // What a write meets with the collection's #index/#data on the target, the rest still split.
        const outcome = (work: Promise<unknown>) =>
          work.then(
            (value) => ({ ok: value ?? true }),
            (error: unknown) => error,
          );
        const mid: Record<string, unknown> = {};
        await migrateSlot(cluster(), slot, target, {
          pauseMs: 2,
          middle: metaKey(prefix, layout === "hash" ? "data" : "index"),
          atMiddle: async () => {
            const hurried = impatient.collection("notes");
            mid.set = await outcome(hurried.set("mid", "m"));
            mid.delete = await outcome(hurried.delete("pre-1"));
            mid.timed = await outcome(hurried.set("timed", "t", 60_000));
            mid.deletes = await outcome(hurried.deleteMany(["pre-4", "pre-5"]));
            mid.upsert = await outcome(impatient.vectors.upsert("v-mid", [0, 1]));
            mid.unsert = await outcome(impatient.vectors.delete("v0"));
            mid.clear = await outcome(impatient.collection("other1").clear());
            if (layout === "keys") mid.overwrite = await outcome(hurried.set("pre-2", "o"));
            // Reads too: in the key layout an MGET of keys on both sides gets TRYAGAIN, sent key by key.
            mid.getMany = await outcome(hurried.getMany(["pre-6", "pre-7", "pre-30"]));
            const listed: string[] = [];
            mid.iterate = await outcome(
              (async () => {
                for await (const [name] of hurried.iterator!(undefined)) listed.push(String(name));
              })(),
            );
            mid.preListed = listed.filter((name) => name.startsWith("pre-")).sort();
          },
        });
        await sleep(50);
        writing = false;
        await Promise.all(writers);

        // Every write names keys on both sides, or one nobody holds yet (a new name, #ttl): the MULTI
        // gets TRYAGAIN and its steps go one key each (apart.ts), served where each key is; a
        // storage that gives up after 300 ms is served, not refused.
        expect(mid).toEqual({
          set: { ok: true },
          delete: { ok: true },
          timed: { ok: true },
          deletes: { ok: true },
          upsert: { ok: true },
          unsert: { ok: true },
          clear: { ok: true },
          // An overwrite of an existing name is one SET XX on its key alone.
          ...(layout === "keys" && { overwrite: { ok: true } }),
          getMany: { ok: [6, 7, 30] },
          iterate: { ok: true },
          preListed: Array.from({ length: 40 }, (_, i) => `pre-${i}`)
            .filter((name) => !["pre-1", "pre-4", "pre-5"].includes(name))
            .sort(),
        });
        expect(failures).toEqual([]);
        expect(await ownerOf(cluster(), slot)).toBe(target);
        const expected = new Map<string, unknown>(acked);
        for (let i = 0; i < 40; i++) expected.set(`pre-${i}`, i);
        expected.set("mid", "m");
        expected.set("timed", "t");
        for (const gone of ["pre-1", "pre-4", "pre-5"]) expected.delete(gone);
        if (layout === "keys") expected.set("pre-2", "o");
        // Listed with their values, exactly the acknowledged writes; a few read back one by one too.
        const listed = new Map<string, unknown>();
        for await (const [name, value] of notes.iterator!(undefined)) listed.set(String(name), value);
        expect(listed).toEqual(expected);
        if (layout === "keys") {
          // The index holds exactly the listed names: the one-by-one writes left no member without a value.
          const members = (await cluster().command(target, [
            "ZRANGE",
            metaKey(prefix, "index"),
            "0",
            "-1",
          ])) as unknown[];
          expect(members.map(String).sort()).toEqual([...expected.keys()].sort());
        }
        for (const name of ["pre-0", "w0-0", `w${WRITERS - 1}-0`])
          expect(await notes.get(name), name).toBe(expected.get(name));
        for (let c = 0; c < 5; c++)
          expect(await storage.collection(`other${c}`).get("x")).toBe(c === 1 ? undefined : c);
        // The vectors seen by a handle that searched before the migration and one opened after it.
        const ids = async (vectors: WorkspaceStorage["vectors"]) =>
          (await vectors.search([0, 1], { k: 50 })).map((match) => match.id).sort();
        const wanted = ["v-mid", ...Array.from({ length: 19 }, (_, v) => `v${v + 1}`)].sort();
        expect(await ids(storage.vectors)).toEqual(wanted);
        const fresh = await openStorage(config);
        try {
          expect(await ids(fresh.vectors)).toEqual(wanted);
        } finally {
          await fresh.close();
        }
      } finally {
        await impatient.close();
        await storage.close();
      }
    }, 60_000);

    // Writes under a quota and conditional writes need WATCH, which a half-moved slot refuses
    // (TRYAGAIN, or ASK once a key moved); after the move the old master answers MOVED. Both
    // used to reach the caller at once, typed as a refused command (StoreCommandError).
    it(`waits out the migration for quota and conditional writes in the ${layout} layout, then follows the slot`, async () => {
      const root = randomRoot("rsq");
      const workspaceId = `quoted-${layout}`;
      const config = { url: cluster().url, root, workspaceId, cluster: true, redisLayout: layout };
      const admin = await openStorage({ ...config, workspaceId: undefined });
      const storage = await openStorage(config);
      const impatient = await openStorage(config, { commandTimeoutMs: 300 });
      try {
        await admin.setQuota(workspaceId, { maxEntries: 1000 });
        const notes = storage.collection("notes");
        for (let i = 0; i < 40; i++) await notes.set(`pre-${i}`, i);
        const saved = await storage.artifacts.save("plan", { step: 0 });
        await impatient.collection("notes").set("pre-3", 3);
        const prefix = storage.keyspace.prefix("notes");
        const slot = keySlot(prefix);
        const from = await ownerOf(cluster(), slot);
        const target = cluster().masters.find((m) => m.port !== from)!.port;

        let refused: unknown;
        let waited: Promise<unknown> | undefined;
        let settledMid = false;
        let midQuota: unknown;
        await migrateSlot(cluster(), slot, target, {
          pauseMs: 2,
          middle: metaKey(prefix, layout === "hash" ? "data" : "index"),
          atMiddle: async () => {
            refused = await impatient
              .collection("notes")
              .set("refused", 1)
              .catch((error: unknown) => error);
            waited = notes.set("waited", 1).finally(() => {
              settledMid = true;
            });
            // quota() only reads: key by key where the slot splits its keys, so it answers at once.
            midQuota = await impatient.quota();
            await sleep(50);
            expect(settledMid).toBe(false); // still waiting for the slot, neither refused nor applied
          },
        });
        expect(midQuota).toEqual({ limit: { maxEntries: 1000 }, entries: 41, bytes: expect.any(Number) });
        expect(refused).toBeInstanceOf(ConnectionError);
        expect(String((refused as Error).message)).toMatch(/TRYAGAIN|ASK/);
        await expect(waited).resolves.toBe(true);
        expect(await ownerOf(cluster(), slot)).toBe(target);

        // Both storages still hold the old slot map: the first write after the move meets MOVED.
        await impatient.collection("notes").set("after", 2);
        const next = await impatient.artifacts.save("plan", { step: 1 }, { ifVersion: saved.version });
        expect(next.version).not.toBe(saved.version);
        await storage.collection("notes").set("after-too", 3);

        expect(await notes.get("refused")).toBeUndefined();
        expect(await notes.get("waited")).toBe(1);
        const quota = await storage.quota();
        const stats = Object.values(await storage.stats()).reduce((sum, s) => sum + s.entries, 0);
        expect(quota.entries).toBe(stats);
        expect(quota.entries).toBe(40 + 1 + 3); // pre-*, plan, waited + after + after-too
      } finally {
        await impatient.close();
        await storage.close();
        await admin.close();
      }
    }, 60_000);
  }
});
