/**
 * What watch() costs on the file store: a durable save to a store someone watches beside one to a
 * store nobody watches (1k entries each, interleaved round by round), and how late a watcher hears
 * another store's save: with fs.watch, and with polling alone (file systems where fs.watch is
 * silent). The other store is a second FileStore on the same file, which reaches the watcher the
 * way another process does: through the files only.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "../lib/backends/file/store.js";
import { FILE_WATCH_POLL_MS } from "../lib/backends/file/watch.js";
import { type ChangeEvent, createStorage, openStorage, type WorkspaceStorage } from "../lib/index.js";
import { type BenchRow, interleaved, progress, ratios, row, type SuiteOptions, samples } from "./rows.js";

const GROUP = "file";
const value = (i: number) => ({ i, note: "x".repeat(100) });

async function filled(path: string, size: number): Promise<WorkspaceStorage> {
  const storage = await openStorage({ url: `file:${path}`, root: "bench", workspaceId: "w" });
  await Promise.all(Array.from({ length: size }, (_, i) => storage.artifacts.save(`pre-${i}`, value(i))));
  return storage;
}

async function saves(dir: string, opts: SuiteOptions): Promise<BenchRow[]> {
  const size = opts.tiny ? 100 : 1000;
  progress(`file watch: watched and unwatched saves, ${size} entries`);
  const plain = await filled(join(dir, "plain.json"), size);
  const watched = await filled(join(dir, "watched.json"), size);
  const stop = new AbortController();
  let heard = 0;
  const draining = (async () => {
    for await (const _ of watched.watch({ signal: stop.signal })) heard++; // drained as a real watcher would
  })();
  try {
    let n = 0;
    const results = await interleaved(
      [
        { name: "unwatched", fn: () => plain.artifacts.save(`w-${n++ % 500}`, value(n)) },
        { name: "watched", fn: () => watched.artifacts.save(`w-${n++ % 500}`, value(n)) },
      ],
      opts.tiny ? { rounds: 1, time: 0, iterations: 3 } : { rounds: 4, time: 300, iterations: 20 },
    );
    const unwatched = samples(results, "unwatched");
    const watchedSaves = samples(results, "watched");
    return [
      row(GROUP, `durable save, ${size} entries, unwatched`, "ms", unwatched),
      row(GROUP, `durable save, ${size} entries, watched`, "ms", watchedSaves, `${heard} events heard`),
      row(GROUP, `watched / unwatched durable save, ${size} entries`, "×", ratios(watchedSaves, unwatched)),
    ];
  } finally {
    stop.abort();
    await draining;
    await plain.close();
    await watched.close();
  }
}

/** Milliseconds from the call of another store's save() to the watcher's event, `count` times. */
async function noticeLatency(path: string, fsWatch: boolean, count: number): Promise<number[]> {
  const watcherStore = new FileStore(path, { watch: { fsWatch } });
  const writerStore = new FileStore(path);
  await watcherStore.open();
  await writerStore.open();
  const watcher = createStorage(watcherStore, { root: "bench", workspaceId: "w" });
  const writer = createStorage(writerStore, { root: "bench", workspaceId: "w" });
  await writer.artifacts.save("seed", 0);
  await watcher.artifacts.has("seed");
  const events: AsyncIterator<ChangeEvent> = watcher.watch({ collections: ["artifacts"] });
  const out: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      // A random pause first: a save right after the last one was heard would find the watcher
      // still catching up (it reads again until the files stop changing), not waiting for a poll.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 1.25 * FILE_WATCH_POLL_MS));
      const name = `n-${i}`;
      const t0 = performance.now();
      await writer.artifacts.save(name, value(i));
      for (;;) {
        const next = await events.next();
        if (next.done) throw new Error("watch ended");
        if (next.value.name === name) break;
      }
      out.push(performance.now() - t0);
    }
  } finally {
    await events.return?.();
    await watcherStore.close();
    await writerStore.close();
  }
  return out;
}

export async function runWatch(opts: SuiteOptions): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "kvws-bench-filewatch-"));
  try {
    const out = await saves(dir, opts);
    const count = opts.tiny ? 3 : 40;
    progress("file watch: how late another store's save is heard");
    out.push(
      row(
        GROUP,
        "another store's save heard by a watcher (fs.watch)",
        "ms",
        await noticeLatency(join(dir, "a.json"), true, count),
      ),
      row(
        GROUP,
        "another store's save heard by a watcher (polling alone)",
        "ms",
        await noticeLatency(join(dir, "b.json"), false, count),
        `poll every ${FILE_WATCH_POLL_MS} ms`,
      ),
    );
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
