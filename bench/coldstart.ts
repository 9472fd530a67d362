/**
 * Cold start: a fresh process that imports the package, opens `memory:` and saves once, beside
 * the same with plain Keyv over a Map (spec/fixtures/cold-start.mjs does both). Wall time is the
 * child's whole life, spawn to exit, as a user would time `node app.js`; RSS is its peak
 * (bench/peak-rss.mjs). Interleaved rounds, so load on the machine hits both alike.
 *
 * Rounds: quick 9, --full 21, --tiny 2 (a smoke test).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type BenchRow, progress, ratios, row, type SuiteOptions } from "./rows.js";

const GROUP = "coldstart";
const fixture = fileURLToPath(new URL("../spec/fixtures/cold-start.mjs", import.meta.url));
const repo = fileURLToPath(new URL("..", import.meta.url));

async function once(args: string[]): Promise<{ ms: number; rssMiB: number }> {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [fixture, ...args], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (code !== 0) throw new Error(`cold-start.mjs ${args.join(" ")} exited with ${code}: ${stderr}`);
  const { maxRssKiB } = JSON.parse(stdout) as { maxRssKiB: number };
  return { ms, rssMiB: maxRssKiB / 1024 };
}

export async function run(opts: SuiteOptions): Promise<BenchRow[]> {
  const rounds = opts.tiny ? 2 : opts.full ? 21 : 9;
  const ours = { ms: [] as number[], rss: [] as number[] };
  const keyv = { ms: [] as number[], rss: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (["kvws", "keyv"] as const) : (["keyv", "kvws"] as const);
    for (const which of order) {
      const result = await once(which === "kvws" ? ["kvws", "memory:"] : ["keyv"]);
      const into = which === "kvws" ? ours : keyv;
      into.ms.push(result.ms);
      into.rss.push(result.rssMiB);
    }
  }
  progress(`coldstart: ${rounds} rounds`);
  const what = "import, open memory:, one save; a fresh process";
  return [
    row(GROUP, "wall time, keyv-workspaces", "ms", ours.ms, what),
    row(GROUP, "wall time, plain Keyv over a Map", "ms", keyv.ms, "import keyv, new Keyv, one set"),
    row(GROUP, "wall time ÷ plain Keyv", "×", ratios(ours.ms, keyv.ms), "per round; goal ≤ 1.6×"),
    row(GROUP, "peak RSS, keyv-workspaces", "MiB", ours.rss, what),
    row(GROUP, "peak RSS, plain Keyv over a Map", "MiB", keyv.rss),
    row(GROUP, "peak RSS ÷ plain Keyv", "×", ratios(ours.rss, keyv.rss), "per round"),
  ];
}
