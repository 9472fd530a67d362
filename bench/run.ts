/**
 * npm run bench [-- --tiny | --full] [--only isolation,scan,file,vectors] [--out DIR]
 *
 * Runs the selected suites, prints a table, and writes <out>/<date>-<commit>.json plus the
 * scan chart. Quick mode (no flag) is the default; --tiny is for smoke tests (numbers are
 * meaningless), --full adds the big store sizes.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { writeReport } from "./report.js";
import type { BenchRow, SuiteOptions } from "./rows.js";

export const SUITES = ["isolation", "scan", "file", "vectors"] as const;
type SuiteName = (typeof SUITES)[number];

interface Suite {
  run(opts: SuiteOptions): Promise<BenchRow[]>;
}

function usage(message: string): never {
  console.error(`${message}\nusage: npm run bench -- [--tiny|--full] [--only ${SUITES.join(",")}] [--out DIR]`);
  process.exit(2);
}

async function load(name: SuiteName): Promise<Suite> {
  try {
    return (await import(`./${name}.js`)) as Suite;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ERR_MODULE_NOT_FOUND" && String((error as Error).message).includes(`${name}`)) {
      throw new Error(
        `bench suite "${name}" is missing (bench/${name}.ts not found). ` +
          `Run the others with --only ${SUITES.filter((s) => s !== name).join(",")}`,
        { cause: error },
      );
    }
    throw error;
  }
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
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
