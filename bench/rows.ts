/**
 * What every suite returns, and the small amount of statistics the suites share.
 * Timing itself is tinybench's job; this file only turns its per-round results into rows.
 */
import { Bench, type FnOptions } from "tinybench";

export interface BenchRow {
  group: string;
  name: string;
  unit: string;
  min: number;
  median: number;
  max: number;
  note?: string;
}

export interface SuiteOptions {
  full: boolean;
  tiny: boolean;
}

export { REDIS_URL } from "../spec/support/env.js";

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function row(group: string, name: string, unit: string, values: readonly number[], note?: string): BenchRow {
  if (values.length === 0) throw new Error(`bench row ${group}/${name} has no samples`);
  return {
    group,
    name,
    unit,
    min: Math.min(...values),
    median: median(values),
    max: Math.max(...values),
    ...(note === undefined ? {} : { note }),
  };
}

/** Per-round ratios a[i] / b[i]: both were measured in the same round, so drift cancels. */
export function ratios(a: readonly number[], b: readonly number[]): number[] {
  return a.map((value, i) => value / (b[i] as number));
}

export interface Task {
  name: string;
  fn: () => Promise<unknown>;
  /** Operations one call of fn performs; results are reported per operation. */
  ops?: number;
  beforeEach?: FnOptions["beforeEach"];
  beforeAll?: FnOptions["beforeAll"];
}

export interface RoundOptions {
  /** Rounds; in each, every task runs once, in alternating order, so slow drift hits all alike. */
  rounds: number;
  /** tinybench time budget per task per round, ms. */
  time: number;
  /** tinybench minimum iterations per task per round. */
  iterations: number;
  warmup?: boolean;
}

/**
 * Runs the tasks for several short interleaved rounds and returns, per task, each round's
 * median latency in milliseconds per operation. Alternating the order round by round keeps
 * "the one that ran first" from looking faster or slower.
 */
export async function interleaved(tasks: readonly Task[], options: RoundOptions): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>(tasks.map((task) => [task.name, []]));
  for (let round = 0; round < options.rounds; round++) {
    const bench = new Bench({
      time: options.time,
      iterations: options.iterations,
      warmup: options.warmup ?? round === 0,
      warmupTime: Math.min(100, options.time),
      warmupIterations: Math.min(8, options.iterations),
      throws: true,
    });
    const order = round % 2 === 0 ? tasks : [...tasks].reverse();
    for (const task of order) {
      const fnOptions: FnOptions = { async: true };
      if (task.beforeEach) fnOptions.beforeEach = task.beforeEach;
      if (task.beforeAll) fnOptions.beforeAll = task.beforeAll;
      bench.add(task.name, task.fn, fnOptions);
    }
    await bench.run();
    for (const task of tasks) {
      const result = bench.getTask(task.name)?.result;
      if (!result || !("latency" in result)) {
        const error = result && "error" in result ? result.error : undefined;
        throw new Error(`bench task ${task.name} did not complete`, { cause: error });
      }
      out.get(task.name)?.push(result.latency.p50 / (task.ops ?? 1));
    }
  }
  return out;
}

/** The samples of one task, which must exist (a typo in a task name is a bug, not a zero). */
export function samples(results: Map<string, number[]>, name: string): number[] {
  const values = results.get(name);
  if (!values || values.length === 0) throw new Error(`no samples for bench task ${name}`);
  return values;
}

export const toMicros = (ms: readonly number[]): number[] => ms.map((value) => value * 1000);

const t0 = Date.now();

/** A progress line on stderr (stdout is the table), so a long run shows where it is. */
export function progress(message: string): void {
  process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1)}s] ${message}\n`);
}

/**
 * Growth from the smallest to the largest size, per series, round by round: 1.0 is flat.
 * `what` names the other data that grew ("keys", "rows").
 */
export function growth(
  group: string,
  label: string,
  bySize: Map<number, Record<string, number[]>>,
  what = "keys",
): BenchRow[] {
  const all = [...bySize.keys()].sort((a, b) => a - b);
  const lo = all[0];
  const hi = all.at(-1);
  if (lo === undefined || hi === undefined || lo === hi) return [];
  const first = bySize.get(lo) as Record<string, number[]>;
  const last = bySize.get(hi) as Record<string, number[]>;
  return Object.keys(first).map((series) =>
    row(
      group,
      `${label} growth ${lo}→${hi} other ${what}: ${series}`,
      "×",
      ratios(last[series] as number[], first[series] as number[]),
      `${hi / lo}× more other ${what}; 1.0 = flat`,
    ),
  );
}
