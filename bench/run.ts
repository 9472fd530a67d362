/**
 * npm run bench [-- --tiny | --full] [--only isolation,scan,file,vectors,load,lifecycle,cluster,sql,sentinel,coldstart,quota-local,quota-redis,quota-sql] [--out DIR]
 *
 * Runs the selected suites, prints a table, and writes <out>/<date>-<commit>.json plus the
 * scan chart. Quick mode (no flag) is the default; --tiny is for smoke tests (numbers are
 * meaningless), --full adds the big store sizes.
 */
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type RunJson, updateBenchDoc } from "./docs.js";
import { writeReport } from "./report.js";
import type { BenchRow, SuiteOptions } from "./rows.js";
import { SUITES } from "./suites.js";

type SuiteName = (typeof SUITES)[number];

interface Suite {
  run(opts: SuiteOptions): Promise<BenchRow[]>;
}

function usage(message: string): never {
  console.error(`${message}\nusage: npm run bench -- [--tiny|--full] [--only ${SUITES.join(",")}] [--out DIR]`);
  process.exit(2);
}

const here = dirname(fileURLToPath(import.meta.url));

async function load(name: SuiteName): Promise<Suite> {
  // Checked up front so that a suite which exists but fails to import reports its own error.
  if (![".ts", ".js"].some((ext) => existsSync(join(here, `${name}${ext}`)))) {
    throw new Error(
      `bench suite "${name}" is missing (bench/${name}.ts not found). ` +
        `Run the others with --only ${SUITES.filter((s) => s !== name).join(",")}`,
    );
  }
  const suite = (await import(`./${name}.js`)) as Partial<Suite>;
  if (typeof suite.run !== "function") throw new Error(`bench/${name}.ts does not export run(opts)`);
  return suite as Suite;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tiny: { type: "boolean", default: false },
      full: { type: "boolean", default: false },
      only: { type: "string" },
      out: { type: "string" },
    },
    strict: true,
  });
  if (values.tiny && values.full) usage("--tiny and --full exclude each other");
  const selected = (values.only
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean) ?? [...SUITES]) as SuiteName[];
  for (const name of selected) {
    if (!SUITES.includes(name)) usage(`unknown suite "${name}"`);
  }
  const opts: SuiteOptions = { tiny: values.tiny ?? false, full: values.full ?? false };
  const outDir = resolve(values.out ?? process.env.KVWS_BENCH_OUT ?? "bench/results");
  // Load every selected suite first: a missing one fails before minutes of measuring.
  const suites = await Promise.all(selected.map(async (name) => [name, await load(name)] as const));
  const rows: BenchRow[] = [];
  const started = Date.now();
  for (const [name, suite] of suites) {
    const t0 = Date.now();
    process.stderr.write(`[bench] ${name}...\n`);
    rows.push(...(await suite.run(opts)));
    process.stderr.write(`[bench] ${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const mode = opts.tiny ? "tiny" : opts.full ? "full" : "quick";
  const written = await writeReport(rows, {
    outDir,
    args: process.argv.slice(2),
    mode,
    suites: selected,
    seconds: (Date.now() - started) / 1000,
  });
  for (const path of written) process.stderr.write(`[bench] wrote ${path}\n`);
  // Only a run of every suite, with real sizes, into the repository's results speaks for docs/bench.md.
  const defaultOut = resolve(here, "results");
  if (mode !== "tiny" && selected.length === SUITES.length && outDir === defaultOut) {
    const json = written.find((path) => path.endsWith(".json")) as string;
    const latest = join(defaultOut, "latest.json");
    copyFileSync(json, latest);
    updateBenchDoc(join(here, "..", "docs", "bench.md"), JSON.parse(readFileSync(latest, "utf8")) as RunJson);
    process.stderr.write(`[bench] wrote ${latest} and the latest numbers of docs/bench.md\n`);
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
