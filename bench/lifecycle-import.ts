/**
 * `kvws import` against the raw MSET script a user would otherwise run (bench/import-raw.ts), on
 * the same NDJSON file and the same private redis-server, each command in a process of its own
 * (peak RSS from VmHWM), interleaved round by round. Two file sizes, ten times apart: the wall
 * time ratio (goal ≤ 1.3) and whether peak memory grows with the input (goal: flat). The server's
 * CPU per entry (INFO cpu) and each process's own tell the server's share from the client's. Both
 * load their modules before the clock starts (KVWS_BENCH_PRELOAD): coldstart.ts measures start-up.
 */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { createClient } from "@redis/client";
import { type BenchRow, progress, ratios, row, type SuiteOptions } from "./rows.js";
import { serverCpuSeconds } from "./server-cpu.js";
import { TS_NODE } from "./support.js";

const GROUP = "lifecycle";
const VALUE = { n: 1, text: "x".repeat(100), tags: ["a", "b"] };
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const execute = promisify(execFile);

type Admin = ReturnType<typeof createClient>;

interface Run {
  ms: number;
  maxRssBytes: number;
  /** The process's own CPU, start-up included. */
  cpuMs: number;
  /** The server's. */
  cpuMicrosPerEntry: number;
}

async function timed(admin: Admin, entries: number, args: string[]): Promise<Run> {
  const cpu0 = await serverCpuSeconds([admin]);
  const { stdout } = await execute(process.execPath, [...TS_NODE, ...args], {
    env: { ...process.env, KVWS_BENCH_PRELOAD: "1" },
    timeout: 600_000,
    maxBuffer: 1024 * 1024,
  });
  const cpu = (await serverCpuSeconds([admin])) - cpu0;
  const out = JSON.parse(stdout) as { ms: number; maxRssBytes: number; cpuMs: number };
  return { ...out, cpuMicrosPerEntry: (cpu * 1e6) / entries };
}

/** Deletes what a round wrote (key by key, DEL: freed before the next round; never FLUSHDB). */
async function wipe(admin: Admin, pattern: string): Promise<void> {
  for await (const keys of admin.scanIterator({ MATCH: pattern, COUNT: 5000 })) {
    if (keys.length > 0) await admin.del(keys);
  }
}

export async function importVsRaw(url: string, admin: Admin, dir: string, opts: SuiteOptions): Promise<BenchRow[]> {
  const sizes = opts.tiny ? [2_000, 20_000] : opts.full ? [20_000, 200_000, 2_000_000] : [20_000, 200_000];
  const rounds = opts.tiny ? 1 : 3;
  const rows: BenchRow[] = [];
  const peak = new Map<number, { kvws: number[]; raw: number[] }>();
  for (const size of sizes) {
    const file = join(dir, `import-${size}.ndjson`);
    const lines: string[] = [];
    for (let i = 0; i < size; i++) lines.push(JSON.stringify({ collection: "notes", name: `n${i}`, value: VALUE }));
    writeFileSync(file, `${lines.join("\n")}\n`);
    const kvws: Run[] = [];
    const hashed: Run[] = [];
    const raw: Run[] = [];
    for (let round = 0; round < rounds; round++) {
      const id = `imp${size}r${round}`;
      const library = () =>
        timed(admin, size, [here("./lifecycle-worker.ts"), "--url", url, "--root", "app", "import", id, "--in", file]);
      // The hash layout keeps no index beside the values: one HSET per batch instead of ZADD + MSET.
      const hash = () =>
        timed(admin, size, [
          here("./lifecycle-worker.ts"),
          ...["--url", url, "--root", "app", "--redis-layout", "hash", "import", `h${id}`, "--in", file],
        ]);
      const plain = () => timed(admin, size, [here("./import-raw.ts"), url, `app:ws:raw${id}:`, file]);
      const sides = [
        async () => kvws.push(await library()),
        async () => hashed.push(await hash()),
        async () => raw.push(await plain()),
      ];
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) await side();
      await wipe(admin, `app:ws:*${id}:*`);
      await wipe(admin, "app#workspaces*");
    }
    const label = `${size} entries`;
    const ms = (runs: Run[]) => runs.map((r) => r.ms);
    rows.push(row(GROUP, `import ${label}: kvws import`, "ms", ms(kvws)));
    rows.push(row(GROUP, `import ${label}: raw MSET script`, "ms", ms(raw), "readline, JSON.parse, MSET per batch"));
    rows.push(row(GROUP, `import ${label}: kvws / raw MSET wall time`, "×", ratios(ms(kvws), ms(raw)), "goal ≤ 1.3"));
    rows.push(row(GROUP, `import ${label}: kvws --redis-layout hash`, "ms", ms(hashed)));
    rows.push(
      row(
        GROUP,
        `import ${label}: kvws --redis-layout hash / raw MSET wall time`,
        "×",
        ratios(ms(hashed), ms(raw)),
        "no index beside the values",
      ),
    );
    rows.push(
      row(
        GROUP,
        `import ${label}: server CPU kvws / raw`,
        "×",
        ratios(
          kvws.map((r) => r.cpuMicrosPerEntry),
          raw.map((r) => r.cpuMicrosPerEntry),
        ),
        "INFO cpu per entry: the index (ZADD) beside each value",
      ),
    );
    rows.push(
      row(
        GROUP,
        `import ${label}: client CPU kvws / raw`,
        "×",
        ratios(
          kvws.map((r) => r.cpuMs),
          raw.map((r) => r.cpuMs),
        ),
        "each process's user+sys, start-up included",
      ),
    );
    rows.push(
      row(
        GROUP,
        `import peak RSS ${label}: kvws`,
        "MB",
        kvws.map((r) => r.maxRssBytes / 2 ** 20),
      ),
    );
    rows.push(
      row(
        GROUP,
        `import peak RSS ${label}: raw MSET script`,
        "MB",
        raw.map((r) => r.maxRssBytes / 2 ** 20),
      ),
    );
    peak.set(size, { kvws: kvws.map((r) => r.maxRssBytes), raw: raw.map((r) => r.maxRssBytes) });
    progress(
      `lifecycle: import ${size} kvws ${Math.round(ms(kvws)[0] ?? 0)} ms, raw ${Math.round(ms(raw)[0] ?? 0)} ms`,
    );
  }
  const [lo, hi] = [sizes[0] as number, sizes.at(-1) as number];
  const at = (size: number) => peak.get(size) ?? { kvws: [], raw: [] };
  const grown = (side: "kvws" | "raw") => at(hi)[side].map((bytes, i) => bytes - (at(lo)[side][i] ?? bytes));
  const flat = `${hi / lo}× the input; 1.0 = flat`;
  rows.push(
    row(GROUP, `import peak RSS growth ${lo}→${hi} entries: kvws`, "×", ratios(at(hi).kvws, at(lo).kvws), flat),
    row(
      GROUP,
      `import peak RSS growth ${lo}→${hi} entries: raw MSET script`,
      "×",
      ratios(at(hi).raw, at(lo).raw),
      flat,
    ),
    row(
      GROUP,
      `import peak RSS growth ${lo}→${hi} entries: kvws beyond the raw script's`,
      "MB",
      grown("kvws").map((bytes, i) => (bytes - (grown("raw")[i] ?? 0)) / 2 ** 20),
      "what the library adds to the growth a plain Node process shows; 0 = flat",
    ),
  );
  return rows;
}
