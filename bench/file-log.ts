/**
 * The file store's durable, sequential path beside the floor it is measured against: one
 * `artifacts.save` after another (each awaited, as an agent does) on stores of 1k and 20k
 * entries, interleaved round by round with a synced append of the same bytes (open, write,
 * fdatasync, close) on the same disk. Then: opening a store of 100k entries, and one
 * compaction of it (its time, its extra disk space, and the latency of saves issued while it runs).
 */
import { appendFileSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openFileBackend } from "../lib/backends/file/open.js";
import { FileStore } from "../lib/backends/file/store.js";
import { openStorage, type WorkspaceStorage } from "../lib/index.js";
import { type BenchRow, interleaved, median, progress, ratios, row, type SuiteOptions, samples } from "./rows.js";

const GROUP = "file";
const value = (i: number) => ({ i, note: "x".repeat(100) });
const sizeOf = (path: string) => (existsSync(path) ? statSync(path).size : 0);

type Compactable = FileStore & { compact?: () => Promise<{ bytes: number } | undefined> };

async function prefill(storage: WorkspaceStorage, path: string, size: number): Promise<void> {
  const CHUNK = 5000;
  for (let i = 0; i < size; i += CHUNK) {
    const count = Math.min(CHUNK, size - i);
    await Promise.all(Array.from({ length: count }, (_, j) => storage.artifacts.save(`pre-${i + j}`, value(i + j))));
  }
  // The store object the storage writes through: a compaction the prefill started in the
  // background must not run under the measurements (it is measured on its own).
  const backend = await openFileBackend(path);
  await (backend.store as Compactable).compact?.();
  await backend.close();
}

/** Bytes one save adds to the disk: the log's growth per save when there is a log, else one entry's share of the file. */
async function bytesPerSave(storage: WorkspaceStorage, path: string, entries: number): Promise<number> {
  const log = `${path}.log`;
  if (!existsSync(log)) return Math.max(1, Math.round(sizeOf(path) / entries));
  const before = sizeOf(log);
  for (let i = 0; i < 10; i++) await storage.artifacts.save(`probe-${i}`, value(i));
  const grown = sizeOf(log) - before;
  return grown > 0 ? Math.round(grown / 10) : Math.round(sizeOf(path) / entries);
}

async function syncedAppend(path: string, bytes: Buffer): Promise<void> {
  const handle = await open(path, "a");
  try {
    await handle.write(bytes);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

async function sequential(dir: string, size: number, opts: SuiteOptions): Promise<Map<string, number[]>> {
  const path = join(dir, `seq-${size}.json`);
  const storage = await openStorage({ url: `file:${path}`, root: "bench", workspaceId: "w" });
  try {
    progress(`file log: sequential saves, ${size} entries`);
    await prefill(storage, path, size);
    const bytes = Buffer.alloc(await bytesPerSave(storage, path, size), "x");
    const floor = join(dir, `append-${size}.bin`);
    appendFileSync(floor, "");
    let n = 0;
    const results = await interleaved(
      [
        { name: "save", fn: () => storage.artifacts.save(`w-${n++ % 500}`, value(n)) },
        { name: "append", fn: () => syncedAppend(floor, bytes) },
      ],
      opts.tiny ? { rounds: 1, time: 0, iterations: 3 } : { rounds: 4, time: 300, iterations: 20 },
    );
    results.set("bytes", [bytes.length]);
    return results;
  } finally {
    await storage.close();
  }
}

/** Opening a store of `size` entries in a fresh FileStore (what a new process pays), and one compaction of it. */
async function bigStore(dir: string, size: number, opts: SuiteOptions): Promise<BenchRow[]> {
  const path = join(dir, `big-${size}.json`);
  const storage = await openStorage({ url: `file:${path}`, root: "bench", workspaceId: "w" });
  progress(`file log: filling ${size} entries`);
  await prefill(storage, path, size);
  // Writes after the last compaction: the log a new process replays on top of the snapshot.
  for (let i = 0; i < size; i += 5000) {
    await Promise.all(
      Array.from({ length: 5000 }, (_, j) => storage.artifacts.save(`pre-${(i + j) % size}`, value(i))),
    );
    if (sizeOf(`${path}.log`) * 3 > sizeOf(path)) break;
  }
  await storage.close();
  const out = [await timeOpen(path, size, opts)];
  const probe = new FileStore(path) as Compactable;
  if (typeof probe.compact !== "function") return out;
  await probe.open();
  try {
    progress(`file log: compaction of ${size} entries`);
    const times: number[] = [];
    const latencies: number[] = [];
    let extra = 0;
    for (let round = 0; round < (opts.tiny ? 1 : 3); round++) {
      // A writer keeps saving, one at a time, while the compaction runs.
      let running = true;
      let n = 0;
      const writer = (async () => {
        while (running) {
          const t0 = performance.now();
          await probe.set(`bench:ws:w:artifacts:during-${n++ % 100}`, JSON.stringify(value(n)));
          latencies.push(performance.now() - t0);
        }
      })();
      const t0 = performance.now();
      const result = await probe.compact();
      times.push(performance.now() - t0);
      running = false;
      await writer;
      extra = Math.max(extra, result?.bytes ?? 0);
    }
    out.push(
      row(
        GROUP,
        `compaction of ${size} entries`,
        "ms",
        times,
        `${(extra / 1e6).toFixed(1)} MB extra disk while it runs`,
      ),
      row(
        GROUP,
        `save while compacting ${size} entries`,
        "ms",
        latencies,
        `${latencies.length} saves; median ${median(latencies).toFixed(2)} ms`,
      ),
    );
  } finally {
    await probe.close();
  }
  out.push(await timeOpen(path, size, opts, "just compacted"));
  return out;
}

async function timeOpen(path: string, size: number, opts: SuiteOptions, label?: string): Promise<BenchRow> {
  const mb = (file: string) => (sizeOf(file) / 1e6).toFixed(1);
  const opens: number[] = [];
  for (let i = 0; i < (opts.tiny ? 1 : 5); i++) {
    const t0 = performance.now();
    const store = new FileStore(path);
    await store.open();
    opens.push(performance.now() - t0);
    await store.close();
  }
  const name = `open a file store of ${size} entries${label ? `, ${label}` : ""}`;
  return row(GROUP, name, "ms", opens, `snapshot ${mb(path)} MB + log ${mb(`${path}.log`)} MB`);
}

export async function runLog(opts: SuiteOptions): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "kvws-bench-filelog-"));
  try {
    const out: BenchRow[] = [];
    const saves = new Map<number, number[]>();
    for (const size of opts.tiny ? [100] : [1000, 20_000]) {
      const results = await sequential(dir, size, opts);
      const save = samples(results, "save");
      const append = samples(results, "append");
      const bytes = samples(results, "bytes")[0];
      saves.set(size, save);
      out.push(
        row(GROUP, `durable sequential save, ${size} entries`, "ms", save),
        row(GROUP, `synced append of the same ${bytes} bytes, ${size} entries`, "ms", append),
        row(GROUP, `save / synced append, ${size} entries`, "×", ratios(save, append)),
      );
    }
    const [lo, hi] = [...saves.keys()];
    if (lo !== undefined && hi !== undefined) {
      out.push(row(GROUP, `durable save ${hi} / ${lo} entries`, "×", ratios(saves.get(hi) ?? [], saves.get(lo) ?? [])));
    }
    out.push(...(await bigStore(dir, opts.tiny ? 1000 : 100_000, opts)));
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
