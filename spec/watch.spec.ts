import KeyvSqlite from "@keyv/sqlite";
import { describe, expect, it } from "vitest";
import { type ChangeEvent, createStorage, openStorage, WATCH_BUFFER, type WorkspaceStorage } from "../lib/index.js";
import { BACKENDS, perTest, REDIS_HASH } from "./support/backends.js";

/** Engines whose driver reports changes (Driver.watch). */
const WATCHABLE = new Set(["memory", "file", "redis", "redis-hash", "sqlite", "postgres"]);
/**
 * On Redis and SQL every watcher also gets one reset about a second after it starts, once other
 * processes' writers know it listens (lib/backends/redis/notify.ts, lib/backends/sql/changes.ts);
 * these tests write from this process, heard at once, so that reset is left out here and checked
 * in spec/backends/redis-watch.spec.ts and spec/backends/sql-watch.spec.ts.
 */
const SETTLE_RESET = new Set(["redis", "redis-hash", "sqlite", "postgres"]);

function withoutResets(it: AsyncIterator<ChangeEvent>): AsyncIterator<ChangeEvent> {
  return {
    async next() {
      for (;;) {
        const result = await it.next();
        if (result.done || result.value.op !== "reset") return result;
      }
    },
  };
}

/** The next `n` events of `it`, failing after `ms` instead of hanging. */
async function take(it: AsyncIterator<ChangeEvent>, n: number, ms = 5000): Promise<ChangeEvent[]> {
  const out: ChangeEvent[] = [];
  const deadline = Date.now() + ms;
  while (out.length < n) {
    const left = deadline - Date.now();
    const next = await Promise.race([
      it.next(),
      new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), Math.max(0, left))),
    ]);
    if (next === "timeout") throw new Error(`got ${out.length} of ${n} events: ${JSON.stringify(out)}`);
    if (next.done) break;
    out.push(next.value);
  }
  return out;
}

describe.each([...BACKENDS, REDIS_HASH].filter((b) => WATCHABLE.has(b.name)))("watch() on $name", (backend) => {
  const { newRoot, track } = perTest(backend, `watch${backend.name}`);
  const open = async (root: string, workspaceId: string | null = "w") => {
    const s = await track(openStorage({ ...backend.config, url: backend.url(root), root, workspaceId }));
    if (!SETTLE_RESET.has(backend.name)) return s;
    const watch = s.watch.bind(s);
    return Object.assign(s, {
      watch: (options?: Parameters<WorkspaceStorage["watch"]>[0]) => {
        const it = watch(options);
        const filtered = withoutResets({ next: it.next.bind(it) });
        return Object.assign(it, { next: () => filtered.next() });
      },
    });
  };

  it("reports another storage's changes to this workspace, in order, with versions, and nothing else", async () => {
    const root = newRoot();
    const watcher = await open(root);
    const writer = await open(root);
    const other = await open(root, "other");
    const unscoped = await open(root, null);
    const events = watcher.watch();
    await other.artifacts.save("secret", 1);
    await unscoped.collection("notes").set("n", 1);
    const saved = await writer.artifacts.save("plan", { v: 1 });
    await writer.collection("notes").set("k", "v");
    // The version is read back with the change (SQL engines): a delete already done by then
    // would leave none to report, so "plan" is deleted once its set has been seen.
    const first = await take(events, 2);
    await writer.artifacts.delete("plan");
    await writer.collection("notes").clear();
    const flow = await writer.workflows.add({ name: "deploy", source: "", description: "ship" });
    await writer.deps.add("left-pad@1.0.0");
    const got = [...first, ...(await take(events, 3))];
    expect(got).toEqual([
      { collection: "artifacts", name: "plan", op: "set", version: saved.version },
      { collection: "notes", name: "k", op: "set" },
      { collection: "artifacts", name: "plan", op: "delete" },
      { collection: "notes", name: null, op: "clear" },
      { collection: "workflows", name: "deploy", op: "set", version: flow.version },
    ]);
    await events.return?.();
  });

  it("keeps an unscoped watcher to the unscoped collections, and names only the collections asked for", async () => {
    const root = newRoot();
    const unscoped = await open(root, null);
    const ws = await open(root, "w");
    const all = unscoped.watch();
    const onlyDeps = ws.watch({ collections: ["deps", "artifacts"] });
    await ws.artifacts.save("a", 1);
    await ws.deps.add("left-pad@1.0.0");
    await unscoped.collection("notes").set("n", 1);
    expect(await take(all, 2)).toEqual([
      { collection: "deps", name: "left-pad", op: "set" },
      { collection: "notes", name: "n", op: "set" },
    ]);
    const mine = await take(onlyDeps, 2);
    expect(mine.map((e) => [e.collection, e.name])).toEqual([
      ["artifacts", "a"],
      ["deps", "left-pad"],
    ]);
  });

  it("ends when the signal aborts and when the storage closes", async () => {
    const root = newRoot();
    const s = await open(root);
    const controller = new AbortController();
    const aborted = s.watch({ signal: controller.signal });
    const pending = aborted.next();
    controller.abort();
    expect(await pending).toEqual({ value: undefined, done: true });
    const view = s.withWorkspace("v");
    const closing = view.watch();
    const next = closing.next();
    await s.close();
    expect(await next).toEqual({ value: undefined, done: true });
    expect(() => s.watch()).toThrow(expect.objectContaining({ code: "ERR_STORAGE_CLOSED" }));
  });
});

describe("watch() limits and errors", () => {
  it("sums up what a watcher that fell too far behind missed as one reset", async () => {
    const s: WorkspaceStorage = createStorage(new Map(), { root: "lag", workspaceId: "w" });
    const events = s.watch({ collections: ["notes"] });
    const notes = s.collection("notes");
    for (let i = 0; i < WATCH_BUFFER + 5; i++) await notes.set(`k${i}`, i);
    const got = await take(events, 5);
    expect(got[0]).toEqual({ collection: "*", name: null, op: "reset" });
    expect(got.slice(1).map((e) => e.name)).toEqual([
      `k${WATCH_BUFFER + 1}`,
      `k${WATCH_BUFFER + 2}`,
      `k${WATCH_BUFFER + 3}`,
      `k${WATCH_BUFFER + 4}`,
    ]);
  });

  it("refuses bad options and a store that cannot report changes, typed", async () => {
    const s = createStorage(new Map(), { root: "bad", workspaceId: "w" });
    expect(() => s.watch({ collections: ["Not Valid"] })).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_COLLECTION" }),
    );
    expect(() => s.watch({ collections: "notes" as never })).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }),
    );
    expect(() => s.watch({ signal: {} as never })).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
    // A real adapter whose driver (lib/backends/sql/adapters.ts) has no change feed.
    const adapter = new KeyvSqlite({ uri: "sqlite://:memory:", table: "keyv" });
    try {
      const plain = createStorage(adapter, { root: "plain", workspaceId: "w" });
      expect(() => plain.watch()).toThrow(expect.objectContaining({ code: "ERR_UNSUPPORTED_STORE" }));
    } finally {
      await adapter.disconnect();
    }
  });
});
