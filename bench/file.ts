/**
 * Write throughput of the file backend: artifacts.save of 1 KB values, one at a time and
 * 500 at once, on stores that already hold 0, 1k, 10k (and with --full 50k) entries; in one
 * process and in two processes writing the same file at once.
 *
 * "before" is keyv-file 5.3.5 through plain Keyv under the same loads. It is not durable:
 * a write resolves when its debounced (100 ms) writeFile ends, without fsync, and two
 * processes overwrite each other's writes (we count how many survive).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Keyv } from "keyv";
import { KeyvFile } from "keyv-file";
import { Bench } from "tinybench";
import { openStorage, type WorkspaceStorage } from "../lib/index.js";
import { runLog } from "./file-log.js";
import { runWatch } from "./file-watch.js";
import {
  type BenchRow,
  interleaved,
  progress,
  type RoundOptions,
  ratios,
  row,
  type SuiteOptions,
  samples,
} from "./rows.js";
import { TS_NODE } from "./support.js";

const GROUP = "file";
const CONCURRENT = 500;
const PAYLOAD = { pad: "x".repeat(1024) };
const WRITER = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "file-writer.ts");

type Impl = "kvws" | "keyv-file";
const LABEL: Record<Impl, string> = { kvws: "kvws file", "keyv-file": "keyv-file 5.3.5 (before)" };

interface Opened {
  write(name: string): Promise<unknown>;
  close(): Promise<void>;
}

async function open(impl: Impl, path: string): Promise<Opened> {
  if (impl === "kvws") {
    const storage: WorkspaceStorage = await openStorage({ url: `file:${path}`, root: "bench", workspaceId: "w" });
    return { write: (name) => storage.artifacts.save(name, PAYLOAD), close: () => storage.close() };
  }
  const store = new KeyvFile({ filename: path });
  const keyv = new Keyv({ store });
  return {
    write: (name) => keyv.set(name, PAYLOAD),
    // keyv-file has no flush: one more awaited write waits for the pending save.
    close: async () => void (await keyv.set("__close", 1)),
  };
}

async function prefill(target: Opened, size: number): Promise<void> {
  const CHUNK = 2000;
  for (let i = 0; i < size; i += CHUNK) {
    await Promise.all(Array.from({ length: Math.min(CHUNK, size - i) }, (_, j) => target.write(`pre-${i + j}`)));
  }
}

function sizes(opts: SuiteOptions): number[] {
  if (opts.tiny) return [0, 100];
  return opts.full ? [0, 1000, 10_000, 50_000] : [0, 1000, 10_000];
}

function rounds(opts: SuiteOptions, size: number): RoundOptions {
  if (opts.tiny) return { rounds: 1, time: 0, iterations: 2 };
  // A write to a big store is a rewrite of megabytes plus fsync: fewer, still interleaved, rounds.
  return size >= 10_000 ? { rounds: 2, time: 0, iterations: 3 } : { rounds: 3, time: 200, iterations: 3 };
}

/** Both implementations, interleaved, in one process: sequential and 500-at-once saves. */
async function singleProcess(dir: string, size: number, opts: SuiteOptions): Promise<BenchRow[]> {
  const stores: Record<Impl, Opened> = {
    kvws: await open("kvws", join(dir, `kvws-${size}.json`)),
    "keyv-file": await open("keyv-file", join(dir, `keyvfile-${size}.json`)),
  };
  const out: BenchRow[] = [];
  try {
    progress(`file: one process, ${size} entries`);
    for (const store of Object.values(stores)) await prefill(store, size);
    // Names cycle over a fixed set, so the store stays near its nominal size while we write.
    let n = 0;
    const next = () => `w-${n++ % CONCURRENT}`;
    const seq = await interleaved(
      (["kvws", "keyv-file"] as const).map((impl) => ({ name: impl, fn: () => stores[impl].write(next()) })),
      { ...rounds(opts, size), warmup: false },
    );
    const conc = await interleaved(
      (["kvws", "keyv-file"] as const).map((impl) => ({
        name: impl,
        ops: CONCURRENT,
        fn: () => Promise.all(Array.from({ length: CONCURRENT }, () => stores[impl].write(next()))),
      })),
      { ...rounds(opts, size), warmup: false },
    );
    const perSecond = (ms: number[]) => ms.map((value) => 1000 / value);
    for (const [mode, results] of [
      ["sequential", seq],
      [`${CONCURRENT} concurrent`, conc],
    ] as const) {
      const ours = perSecond(samples(results, "kvws"));
      const before = perSecond(samples(results, "keyv-file"));
      out.push(
        row(
          GROUP,
          `${LABEL.kvws} ${mode}, ${size} entries`,
          "writes/s",
          ours,
          "durable: resolves after fsync + rename",
        ),
      );
      out.push(
        row(
          GROUP,
          `${LABEL["keyv-file"]} ${mode}, ${size} entries`,
          "writes/s",
          before,
          "not durable: resolves after a debounced writeFile, no fsync",
        ),
      );
      out.push(row(GROUP, `kvws / keyv-file ${mode}, ${size} entries`, "×", ratios(ours, before)));
    }
  } finally {
    for (const store of Object.values(stores)) await store.close();
  }
  return out;
}

/** A long-lived writer process (fixtures/file-writer.ts), driven line by line over stdin/stdout. */
class Writer {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  #waiting: { resolve: (line: string) => void; reject: (error: Error) => void } | undefined;
  #failure: Error | undefined;
  #stderr = "";

  constructor(args: string[]) {
    this.#child = spawn(process.execPath, [...TS_NODE, WRITER, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let buffer = "";
    this.#child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline = buffer.indexOf("\n");
      while (newline >= 0) {
        this.#push(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf("\n");
      }
    });
    this.#child.stderr?.on("data", (chunk: Buffer) => (this.#stderr += chunk.toString()));
    const fail = (error: Error) => {
      this.#failure ??= error;
      this.#waiting?.reject(this.#failure);
      this.#waiting = undefined;
    };
    this.#child.on("error", fail);
    this.#child.on("exit", (code) =>
      fail(new Error(`bench writer ${args.join(" ")} exited (${code}): ${this.#stderr}`)),
    );
  }

  #push(line: string): void {
    if (this.#waiting) {
      this.#waiting.resolve(line);
      this.#waiting = undefined;
    } else this.#lines.push(line);
  }

  /** The next line the writer prints; rejects if it dies first. */
  next(): Promise<string> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => (this.#waiting = { resolve, reject }));
  }

  send(line: string): void {
    this.#child.stdin?.write(`${line}\n`);
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once("exit", resolve));
    this.send("exit");
    const timer = setTimeout(() => this.#child.kill(), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Names the writers stored that are still in the file at the end. */
async function survivors(impl: Impl, path: string, tag: string): Promise<number> {
  if (impl === "keyv-file") {
    const { cache } = JSON.parse(readFileSync(path, "utf8")) as { cache: Array<[string, unknown]> };
    return cache.filter(([key]) => key.includes(tag)).length;
  }
  const storage = await openStorage({ url: `file:${path}`, root: "bench", workspaceId: "w" });
  try {
    return (await storage.artifacts.list()).filter((info) => info.name.includes(tag)).length;
  } finally {
    await storage.close();
  }
}

/** Two processes writing the same file at once; the duration is measured by the writers themselves. */
async function twoProcesses(dir: string, size: number, opts: SuiteOptions): Promise<BenchRow[]> {
  const out: BenchRow[] = [];
  // Sequential writes on a big store take a rewrite each: fewer of them keep quick mode quick.
  const counts = { seq: opts.tiny ? 5 : size >= 10_000 ? 6 : 20, concurrent: opts.tiny ? 20 : CONCURRENT };
  for (const impl of ["kvws", "keyv-file"] as const) {
    const path = join(dir, `two-${impl}-${size}.json`);
    const store = await open(impl, path);
    await prefill(store, size);
    await store.close();
    const writers = [new Writer([impl, path]), new Writer([impl, path])];
    try {
      for (const w of writers) expect(await w.next(), "ready");
      for (const mode of ["seq", "concurrent"] as const) {
        progress(`file: two processes, ${impl} ${mode}, ${size} entries`);
        const count = counts[mode];
        let round = 0;
        let written = 0;
        let survived = 0;
        const bench = new Bench({
          time: 0,
          iterations: opts.tiny ? 1 : opts.full ? 3 : 2,
          warmup: false,
          throws: true,
          retainSamples: true,
        });
        bench.add(`${impl} ${mode}`, async () => {
          const tag = `p${mode}${round++}x`;
          for (const [i, w] of writers.entries()) w.send(`go ${tag}${i} ${count} ${mode}`);
          const times = (await Promise.all(writers.map((w) => w.next()))).map(
            (line) => JSON.parse(line) as { start: number; end: number },
          );
          written += 2 * count;
          survived += await survivors(impl, path, tag);
          const wall = Math.max(...times.map((t) => t.end)) - Math.min(...times.map((t) => t.start));
          return { overriddenDuration: Math.max(wall, 1) };
        });
        await bench.run();
        const result = bench.tasks[0]?.result;
        if (!result || !("latency" in result) || !result.latency.samples) {
          throw new Error(`two-process bench ${impl} ${mode} did not complete`);
        }
        const rates = [...result.latency.samples].map((ms) => (2 * count * 1000) / ms);
        const lost = written - survived;
        out.push(
          row(
            GROUP,
            `${LABEL[impl]} two processes ${mode === "seq" ? "sequential" : `${count} concurrent each`}, ${size} entries`,
            "writes/s",
            rates,
            `${survived}/${written} writes survived${lost > 0 ? ` (${lost} lost)` : ""}`,
          ),
        );
      }
    } finally {
      await Promise.all(writers.map((w) => w.stop()));
    }
  }
  return out;
}

function expect(actual: string, wanted: string): void {
  if (actual !== wanted)
    throw new Error(`bench writer said ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`);
}

export async function run(opts: { full: boolean; tiny: boolean }): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "kvws-bench-file-"));
  try {
    const out: BenchRow[] = [];
    for (const size of sizes(opts)) out.push(...(await singleProcess(dir, size, opts)));
    // Two processes: empty and 1k in quick mode (enough to see contention), the big stores with --full.
    const twoSizes = opts.tiny ? [0] : opts.full ? [0, 10_000, 50_000] : [0, 1000];
    for (const size of twoSizes) out.push(...(await twoProcesses(dir, size, opts)));
    out.push(...(await runLog(opts)));
    out.push(...(await runWatch(opts)));
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
