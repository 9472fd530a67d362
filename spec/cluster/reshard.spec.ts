// A workspace's slot resharded to another master while 16 writers write to it, in both Redis
// layouts: every acknowledged write readable afterwards, the listing exact, a refused write typed
// and not applied. The hash layout (one key per collection) keeps serving mid-migration, through
// ASK; the key layout serves overwrites (SET XX) and new names (refused as one MULTI with
// TRYAGAIN, then sent as ZADD, SET, ZADD, each on its own key). Throughput: bench/cluster.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keySlot } from "../../lib/backends/redis/cluster-watch.js";
import { ConnectionError, openStorage, type WorkspaceStorage } from "../../lib/index.js";
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
      const config = { url: cluster().url, root, workspaceId: "moving", cluster: true, redisLayout: layout };
      const storage: WorkspaceStorage = await openStorage(config);
      // A storage that gives up quickly: what a write meets while the slot is half-migrated.
      const impatient = await openStorage(config, { commandTimeoutMs: 300 });
      try {
        const notes = storage.collection("notes");
        for (let i = 0; i < 40; i++) await notes.set(`pre-${i}`, i);
        for (let c = 0; c < 5; c++) await storage.collection(`other${c}`).set("x", c);
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
            if (layout === "hash") {
              mid.delete = await outcome(hurried.delete("pre-1"));
              mid.timed = await outcome(hurried.set("timed", "t", 60_000));
            } else mid.overwrite = await outcome(hurried.set("pre-2", "o"));
          },
        });
        await sleep(50);
        writing = false;
        await Promise.all(writers);

        const tryAgain = { code: "ERR_CONNECTION", cause: { message: expect.stringMatching(/^TRYAGAIN/) } };
        if (layout === "hash") {
          // A plain write and a delete name one key (#data): served where it is, ASK to the importing master.
          expect(mid.set).toEqual({ ok: true });
          expect(mid.delete).toEqual({ ok: true });
          // A write with a TTL also names #ttl, which nobody holds yet: refused like the key layout's.
          expect(mid.timed).toBeInstanceOf(ConnectionError);
          expect(mid.timed).toMatchObject(tryAgain);
          expect(failures).toEqual([]);
        } else {
          // A new name's MULTI names #index (on the target now) and a key nobody holds: TRYAGAIN,
          // so its commands go one by one, each served where its key is.
          expect(mid.set).toEqual({ ok: true });
          // An overwrite of an existing name is one SET XX on its key alone: served where the key is.
          expect(mid.overwrite).toEqual({ ok: true });
          expect(failures).toEqual([]);
        }
        expect(await ownerOf(cluster(), slot)).toBe(target);
        const expected = new Map<string, unknown>(acked);
        for (let i = 0; i < 40; i++) expected.set(`pre-${i}`, i);
        expected.set("mid", "m");
        if (layout === "hash") expected.delete("pre-1");
        else expected.set("pre-2", "o");
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
        for (let c = 0; c < 5; c++) expect(await storage.collection(`other${c}`).get("x")).toBe(c);
      } finally {
        await impatient.close();
        await storage.close();
      }
    }, 60_000);
  }
});
