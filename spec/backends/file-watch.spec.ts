// storage.watch() on the file store (lib/backends/file/watch.ts, store.ts): other processes'
// changes through the files, per log record, across compactions; nothing of other workspaces;
// no watcher until someone listens, none after; the process kept up only while someone listens.
import { execFile, spawn } from "node:child_process";
import { appendFileSync, readdirSync, readFileSync, readlinkSync, statSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DRIVER } from "../../lib/backends/driver.js";
import { FileStore } from "../../lib/backends/file/store.js";
import { FILE_WATCH_POLL_MS, FileWatch } from "../../lib/backends/file/watch.js";
import { type ChangeEvent, createStorage, openStorage } from "../../lib/index.js";
import { tempDir } from "../support/env.js";
import { captureWarnings } from "../support/warnings.js";

const run = promisify(execFile);
const writer = fileURLToPath(new URL("../fixtures/file-watch-writer.ts", import.meta.url));
const idle = fileURLToPath(new URL("../fixtures/file-watch-idle.ts", import.meta.url));

/** Runs the writer fixture; resolves to the versions it saved in workspace `ws`, in order. */
async function writeElsewhere(path: string, ops: unknown[][], ws = "a"): Promise<string[]> {
  const { stdout } = await run(process.execPath, ["--import", "tsx", writer, path, "fw", JSON.stringify(ops)], {
    timeout: 60_000,
  });
  return stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { ws: string; version: string })
    .filter((saved) => saved.ws === ws)
    .map((saved) => saved.version);
}

/** Events until `stop` says enough, failing after `ms` instead of hanging. */
async function collect(
  it: AsyncIterator<ChangeEvent>,
  stop: (events: ChangeEvent[]) => boolean,
  ms = 20_000,
): Promise<ChangeEvent[]> {
  const out: ChangeEvent[] = [];
  const deadline = Date.now() + ms;
  while (!stop(out)) {
    const next = await Promise.race([
      it.next(),
      new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now()))),
    ]);
    if (next === "timeout") throw new Error(`timed out with ${JSON.stringify(out.slice(-8))} (${out.length} events)`);
    if (next.done) break;
    out.push(next.value);
  }
  return out;
}

/** inotify watches this process holds on `dir` (Linux: /proc/self/fdinfo lists each one). */
function inotifyWatchesOn(dir: string): number {
  const ino = statSync(dir, { bigint: true }).ino.toString(16);
  let count = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== "anon_inode:inotify") continue;
    const info = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
    for (const match of info.matchAll(/^inotify wd:\S+ ino:([0-9a-f]+) /gm)) if (match[1] === ino) count++;
  }
  return count;
}

const byName = (a: ChangeEvent, b: ChangeEvent) => String(a.name).localeCompare(String(b.name));

describe("watch() on the file store", () => {
  let dir: ReturnType<typeof tempDir>;
  let path = "";
  const opened: Array<{ close(): Promise<void> }> = [];
  const open = async (workspaceId = "a") => {
    const s = await openStorage({ url: `file:${path}`, root: "fw", workspaceId });
    opened.push(s);
    return s;
  };
  /** A store of its own (not the process's shared one) that notices nothing until it is read. */
  const openQuiet = async () => {
    const store = new FileStore(path, { watch: { fsWatch: false, pollMs: 3_600_000 } });
    await store.open();
    opened.push(store);
    return createStorage(store, { root: "fw", workspaceId: "a" });
  };
  beforeEach(() => {
    dir = tempDir();
    path = join(dir.path, "store.json");
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    dir.remove();
  });

  it("reports another process's changes to this workspace, in order, with versions, and nothing else", async () => {
    const watcher = await open("a");
    await watcher.artifacts.save("seed", 0);
    const events = watcher.watch();
    const ops = [
      ["save", "a", "plan", { v: 1 }],
      ["save", "b", "plan", { secret: 1 }],
      ["set", "a", "notes", "k", "v"],
      ["save", "a", "plan", { v: 2 }],
      ["set", "b", "notes", "k", "x"],
      ["delete", "a", "plan"],
      ["set", "a", "notes", "j", "w"],
      ["clear", "b", "notes"],
      ["clear", "a", "notes"],
      ["save", "a", "done", true],
    ];
    const [child, got] = await Promise.all([
      writeElsewhere(path, ops),
      collect(events, (all) => all.some((e) => e.name === "done")),
    ]);
    expect(got.slice(0, 5)).toEqual([
      { collection: "artifacts", name: "plan", op: "set", version: child[0] },
      { collection: "notes", name: "k", op: "set" },
      { collection: "artifacts", name: "plan", op: "set", version: child[1] },
      { collection: "artifacts", name: "plan", op: "delete" },
      { collection: "notes", name: "j", op: "set" },
    ]);
    // Another process's clear() is one record of deletes: a delete per name it removed.
    expect(got.slice(5, 7).sort(byName)).toEqual([
      { collection: "notes", name: "j", op: "delete" },
      { collection: "notes", name: "k", op: "delete" },
    ]);
    expect(got.slice(7)).toEqual([{ collection: "artifacts", name: "done", op: "set", version: child[2] }]);
    await events.return?.();
  }, 60_000);

  it("reports every write of a tail read at once, not only its outcome", async () => {
    const watcher = await openQuiet();
    await watcher.artifacts.save("seed", 0);
    const events = watcher.watch();
    const versions = await writeElsewhere(path, [
      ["save", "a", "x", 1],
      ["save", "a", "x", 2],
      ["delete", "a", "x"],
      ["set", "a", "notes", "k", "same"],
      ["set", "a", "notes", "k", "same"],
      ["save", "a", "y", 1],
    ]);
    await watcher.artifacts.has("y"); // reading catches up: the six records in one tail
    expect(await collect(events, (all) => all.length === 6)).toEqual([
      { collection: "artifacts", name: "x", op: "set", version: versions[0] },
      { collection: "artifacts", name: "x", op: "set", version: versions[1] },
      { collection: "artifacts", name: "x", op: "delete" },
      // Written again unchanged: still a write, reported as on every engine.
      { collection: "notes", name: "k", op: "set" },
      { collection: "notes", name: "k", op: "set" },
      { collection: "artifacts", name: "y", op: "set", version: versions[2] },
    ]);
  }, 60_000);

  it("after another process compacted, reports what differs from memory, without a reset", async () => {
    const watcher = await openQuiet();
    await watcher.artifacts.save("seed", 0);
    await watcher.artifacts.save("gone", 0);
    const events = watcher.watch();
    const versions = await writeElsewhere(path, [
      ["save", "a", "x", 1],
      ["save", "a", "z", 1],
      ["save", "b", "x", "secret"],
      ["compact"],
      ["save", "a", "y", 1],
      ["delete", "a", "z"],
      ["delete", "a", "gone"],
      ["save", "a", "x", 2],
    ]);
    expect(JSON.parse(readFileSync(path, "utf8")).generation).toBeGreaterThanOrEqual(2);
    await watcher.artifacts.has("y"); // a new snapshot: memory is compared with the files
    const got = await collect(events, (all) => all.length === 3);
    expect(got.sort(byName)).toEqual([
      { collection: "artifacts", name: "gone", op: "delete" },
      { collection: "artifacts", name: "x", op: "set", version: versions[3] },
      { collection: "artifacts", name: "y", op: "set", version: versions[2] },
    ]);
  }, 60_000);

  it("converges on the files' state while another process writes and compacts", async () => {
    const watcher = await open("a");
    await watcher.artifacts.save("seed", 0);
    const events = watcher.watch({ collections: ["artifacts"] });
    const ops: unknown[][] = [];
    for (let i = 0; i < 60; i++) {
      const ws = i % 3 === 0 ? "b" : "a";
      ops.push(["save", ws, `${ws === "b" ? "b" : "n"}-${i % 8}`, i]);
      if (i % 7 === 6) ops.push(["delete", "a", `n-${i % 8}`]);
      if (i % 10 === 9) ops.push(["compact"]);
    }
    ops.push(["save", "a", "done", true]);
    const model = new Map<string, string | undefined>(
      (await watcher.artifacts.list()).map((info) => [info.name, info.version]),
    );
    const seen: ChangeEvent[] = [];
    const apply = async (event: ChangeEvent) => {
      seen.push(event);
      if (event.op === "reset") {
        model.clear();
        for (const info of await watcher.artifacts.list()) model.set(info.name, info.version);
      } else if (event.op === "set") model.set(String(event.name), event.version);
      else if (event.op === "delete") model.delete(String(event.name));
      else model.clear();
    };
    // Until the child is done and the model matches what the files hold then.
    const list = async () => new Map((await watcher.artifacts.list()).map((info) => [info.name, info.version]));
    const finished = writeElsewhere(path, ops).then(list);
    const same = (a: Map<string, unknown>, b: Map<string, unknown>) =>
      a.size === b.size && [...a].every(([name, version]) => b.get(name) === version);
    let final: Map<string, string> | undefined;
    let next = events.next();
    const deadline = Date.now() + 30_000;
    while (!(final && same(model, final))) {
      const timeout = new Promise<"timeout">((resolve) =>
        setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now())),
      );
      const step = await Promise.race([next, final ? timeout : finished, timeout]);
      if (step === "timeout") throw new Error(`no convergence: ${JSON.stringify(seen.slice(-8))}`);
      if (step instanceof Map) {
        final = step;
        continue;
      }
      if (step.done) break;
      await apply(step.value);
      next = events.next();
    }
    await events.return?.();
    expect(JSON.parse(readFileSync(path, "utf8")).generation).toBeGreaterThanOrEqual(4);
    expect(final && same(model, final)).toBe(true);
    expect(seen.every((e) => e.op === "reset" || (e.collection === "artifacts" && !e.name?.startsWith("b-")))).toBe(
      true,
    );
    expect(seen.filter((e) => e.op === "set").every((e) => typeof e.version === "string")).toBe(true);
  }, 60_000);

  it("reports this process's own writes once, never again when the log is read after another's", async () => {
    const watcher = await open("a");
    await watcher.artifacts.save("seed", 0);
    const events = watcher.watch();
    const mine = await watcher.artifacts.save("mine", 1);
    const [theirs] = await writeElsewhere(path, [["save", "a", "theirs", 1]]);
    expect(await collect(events, (all) => all.some((e) => e.name === "theirs"))).toEqual([
      { collection: "artifacts", name: "mine", op: "set", version: mine.version },
      { collection: "artifacts", name: "theirs", op: "set", version: theirs },
    ]);
  }, 60_000);

  it("reports a raw clear() of the whole file by another store as a reset, then what followed", async () => {
    const watcher = await openQuiet();
    await watcher.artifacts.save("seed", 0);
    const other = new FileStore(path);
    await other.open();
    opened.push(other);
    const events = watcher.watch();
    await other.clear();
    const saved = await createStorage(other, { root: "fw", workspaceId: "a" }).artifacts.save("after", 1);
    await watcher.artifacts.has("after");
    expect(await collect(events, (all) => all.length === 2)).toEqual([
      { collection: "*", name: null, op: "reset" },
      { collection: "artifacts", name: "after", op: "set", version: saved.version },
    ]);
  });

  it("warns once when the files cannot be read, and keeps watching", async () => {
    const watcher = await open("a");
    await watcher.artifacts.save("seed", 0);
    const events = watcher.watch();
    const warnings = captureWarnings("KVWS_FILE_WATCH_READ");
    try {
      // Bytes that are no record: damage, which a reader refuses (StoreCorruptError) rather than skips.
      const size = statSync(`${path}.log`).size;
      appendFileSync(`${path}.log`, Buffer.alloc(32, 0xff));
      while ((await warnings.all()).length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      await new Promise((resolve) => setTimeout(resolve, 3 * FILE_WATCH_POLL_MS)); // polled again meanwhile
      const told = await warnings.all();
      expect(told).toHaveLength(1);
      expect(told[0]?.message).toMatch(/damaged header/);
      // Repaired, the file is watched as before.
      truncateSync(`${path}.log`, size);
      const other = new FileStore(path);
      await other.open();
      opened.push(other);
      const saved = await createStorage(other, { root: "fw", workspaceId: "a" }).artifacts.save("later", 1);
      expect(await collect(events, (all) => all.length === 1)).toEqual([
        { collection: "artifacts", name: "later", op: "set", version: saved.version },
      ]);
      await events.return?.();
    } finally {
      warnings.stop();
    }
  });

  it("takes back a write the disk refused: its set is followed by a delete once memory is read again", async () => {
    // A real full disk (needs root, as spec/backends/file-fs-errors.spec.ts): a tmpfs over the directory.
    await run("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", dir.path]);
    try {
      const watcher = await open("a");
      const notes = watcher.collection("notes");
      await notes.set("small", "x".repeat(100_000));
      const events = watcher.watch({ collections: ["notes"] });
      const refused = await notes.set("big", "y".repeat(200_000)).catch((error: unknown) => error);
      expect(refused).toMatchObject({ code: "ERR_STORAGE_FULL" });
      expect(await notes.get("big")).toBeUndefined();
      expect(await collect(events, (all) => all.length === 2)).toEqual([
        { collection: "notes", name: "big", op: "set" },
        { collection: "notes", name: "big", op: "delete" },
      ]);
      await events.return?.();
    } finally {
      for (const s of opened.splice(0)) await s.close();
      await run("umount", [dir.path]);
    }
  });

  it("polls as often as docs/collaboration.md says", () => {
    const doc = readFileSync(fileURLToPath(new URL("../../docs/collaboration.md", import.meta.url)), "utf8");
    expect(doc).toContain(`checks its two files every ${FILE_WATCH_POLL_MS} ms`);
  });

  it("notices another store's write by polling alone", async () => {
    const store = new FileStore(path, { watch: { fsWatch: false } });
    await store.open();
    opened.push(store);
    const watcher = createStorage(store, { root: "fw", workspaceId: "a" });
    const other = new FileStore(path);
    await other.open();
    opened.push(other);
    const events = watcher.watch();
    const saved = await createStorage(other, { root: "fw", workspaceId: "a" }).artifacts.save("p", 1);
    expect(await collect(events, (all) => all.length === 1)).toEqual([
      { collection: "artifacts", name: "p", op: "set", version: saved.version },
    ]);
  });

  it.runIf(process.platform === "linux")(
    "watches the files only while someone listens: no fs.watch for unwatched writes, none after",
    async () => {
      const storage = await open("a");
      for (let i = 0; i < 20; i++) await storage.artifacts.save(`k${i}`, i);
      expect(inotifyWatchesOn(dir.path)).toBe(0);
      const one = storage.watch();
      const two = storage.withWorkspace("b").watch();
      expect(inotifyWatchesOn(dir.path)).toBe(1);
      await one.return?.();
      expect(inotifyWatchesOn(dir.path)).toBe(1);
      await two.return?.();
      expect(inotifyWatchesOn(dir.path)).toBe(0);
      // Closing the store stops its watch too, and ends what was listening through the driver.
      const own = new FileStore(join(dir.path, "own.json"));
      await own.open();
      const changes: unknown[] = [];
      own[DRIVER].watch?.((change) => changes.push(change));
      expect(inotifyWatchesOn(dir.path)).toBe(1);
      await own.close();
      expect(inotifyWatchesOn(dir.path)).toBe(0);
      expect(() => own[DRIVER].watch?.(() => {})).toThrow(expect.objectContaining({ code: "ERR_STORAGE_CLOSED" }));
    },
  );

  it("keeps the process up while someone listens, and not after close() or the iterator's end", async () => {
    const closed = await run(process.execPath, ["--import", "tsx", idle, path, "close"], { timeout: 20_000 });
    expect(closed.stdout.trim()).toBe('{"done":true}');
    // Nothing but the watch keeps this child up until our save reaches it; then it ends the iterator, not the storage.
    const child = spawn(process.execPath, ["--import", "tsx", idle, path, "wait"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    await new Promise<void>((resolve) =>
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes("watching")) resolve();
      }),
    );
    const writer = await openStorage({ url: `file:${path}`, root: "idle", workspaceId: "w" });
    opened.push(writer);
    const saved = await writer.artifacts.save("y", 2);
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    expect(await exited).toBe(0);
    clearTimeout(timer);
    expect(out.trim().split("\n")).toEqual([
      "watching",
      JSON.stringify({ value: { collection: "artifacts", name: "y", op: "set", version: saved.version }, done: false }),
    ]);
  }, 60_000);

  it("where fs.watch cannot start, warns once and keeps polling", async () => {
    const warnings = captureWarnings("KVWS_FILE_WATCH");
    let watch: FileWatch | undefined;
    try {
      const noticed = new Promise<void>((resolve) => {
        watch = new FileWatch(join(dir.path, "missing", "store.json"), resolve, { pollMs: 10 });
      });
      expect(watch?.watching).toBe(false);
      await noticed;
      const told = await warnings.all();
      expect(told).toHaveLength(1);
      expect(told[0]?.message).toContain(`polling every ${FILE_WATCH_POLL_MS} ms`);
    } finally {
      watch?.stop();
      warnings.stop();
    }
  });
});
