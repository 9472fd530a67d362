/**
 * What quotas cost on the in-process engines (memory, file), per write, in interleaved rounds:
 *
 * - "off": the same store with no quota feature involved, its driver's scope opened without
 *   `{ quota }` (what every write was before quotas: no check at all);
 * - "none": a workspace without a quota, in a store where no workspace has one;
 * - "other": a workspace without a quota, while another workspace of the same store has one
 *   (its writes then pass the per-prefix lookup of the counts);
 * - "quota": a workspace under a quota far above its use (the check and the counting).
 *
 * Ratios are to "off", round by round. Memory: 100 `collection().set` or `artifacts.save` per
 * call, overwriting 100 names (so the quota'd workspace does not grow). File: durable
 * `artifacts.save`, one at a time (each an append + fdatasync) and 100 at once (one batch).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DRIVER, type Driver, type WithDriver } from "../lib/backends/driver.js";
import { openFileBackend } from "../lib/backends/file/open.js";
import { MemoryStore } from "../lib/backends/memory.js";
import { createStorage, type WorkspaceStorage } from "../lib/index.js";
import {
  type BenchRow,
  interleaved,
  progress,
  type RoundOptions,
  ratios,
  row,
  type SuiteOptions,
  samples,
  type Task,
  toMicros,
} from "./rows.js";

const GROUP = "quota-local";
const NAMES = 100;
const VALUE = { n: 1, text: "x".repeat(100) };
const HIGH = { maxEntries: 1_000_000_000, maxBytes: 1_000_000_000_000 };
const VARIANTS = ["off", "none", "other", "quota"] as const;
type Variant = (typeof VARIANTS)[number];
const LABEL: Record<Variant, string> = {
  off: "no quota feature (scope without { quota })",
  none: "workspace without a quota",
  other: "workspace without a quota, another has one",
  quota: "workspace under a quota",
};

/** The store's driver as it would be without quotas: scopes opened without `{ quota }`, no book. */
function featureOff(store: WithDriver): WithDriver {
  const inner: Driver = store[DRIVER];
  const driver: Driver = { scope: (prefix) => inner.scope(prefix) };
  return { [DRIVER]: driver };
}

interface Side {
  variant: Variant;
  ws: WorkspaceStorage;
}

/** Four storages over stores of one kind; `fresh` makes each variant its own store. */
async function sides(fresh: () => Promise<WithDriver>): Promise<Side[]> {
  const out: Side[] = [];
  for (const variant of VARIANTS) {
    const store = await fresh();
    const operator = createStorage((variant === "off" ? featureOff(store) : store) as never, {
      root: "bench",
      workspaceId: null,
    });
    if (variant === "quota") await operator.setQuota("w", HIGH);
    if (variant === "other") await operator.setQuota("elsewhere", HIGH);
    out.push({ variant, ws: operator.withWorkspace("w") });
  }
  return out;
}

function rows(label: string, results: Map<string, number[]>, name: (variant: Variant) => string): BenchRow[] {
  const off = samples(results, name("off"));
  const out: BenchRow[] = [];
  for (const variant of VARIANTS) {
    const values = samples(results, name(variant));
    out.push(row(GROUP, `${label}: ${LABEL[variant]}`, "µs/op", toMicros(values)));
    if (variant !== "off") {
      out.push(row(GROUP, `${label}: ${LABEL[variant]} / no quota feature`, "×", ratios(values, off)));
    }
  }
  return out;
}

async function memory(rounds: RoundOptions): Promise<BenchRow[]> {
  const all = await sides(async () => new MemoryStore());
  const out: BenchRow[] = [];
  for (const op of ["collection().set", "artifacts.save"] as const) {
    const name = (variant: Variant) => `memory ${op} ${variant}`;
    const tasks: Task[] = all.map(({ variant, ws }) => {
      const notes = ws.collection("notes");
      return {
        name: name(variant),
        ops: NAMES,
        fn:
          op === "collection().set"
            ? async () => {
                for (let i = 0; i < NAMES; i++) await notes.set(`n${i}`, VALUE);
              }
            : async () => {
                for (let i = 0; i < NAMES; i++) await ws.artifacts.save(`a${i}`, VALUE);
              },
      };
    });
    progress(`${GROUP}: memory ${op}`);
    out.push(...rows(`memory ${op}`, await interleaved(tasks, rounds), name));
  }
  return out;
}

async function file(opts: SuiteOptions): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "kvws-bench-quota-"));
  const backends: Array<{ close(): Promise<void> }> = [];
  let n = 0;
  try {
    const all = await sides(async () => {
      const backend = await openFileBackend(join(dir, `s${n++}.json`));
      backends.push(backend);
      return backend.store as unknown as WithDriver;
    });
    const rounds: RoundOptions = opts.tiny
      ? { rounds: 1, time: 0, iterations: 2 }
      : { rounds: 9, time: 400, iterations: 10 };
    const out: BenchRow[] = [];
    // One at a time: each save is its own append + fdatasync. 100 at once: one batch (group
    // commit) shares the fdatasync, so the per-write work the check adds to is what is left.
    for (const [label, batch] of [
      ["one at a time", 1],
      [`${NAMES} at once`, NAMES],
    ] as const) {
      const name = (variant: Variant) => `file artifacts.save ${label} ${variant}`;
      const tasks: Task[] = all.map(({ variant, ws }) => ({
        name: name(variant),
        ops: batch,
        fn: () => Promise.all(Array.from({ length: batch }, (_, i) => ws.artifacts.save(`a${i}`, VALUE))),
      }));
      progress(`${GROUP}: file artifacts.save ${label}`);
      out.push(...rows(`file durable artifacts.save, ${label}`, await interleaved(tasks, rounds), name));
    }
    return out;
  } finally {
    for (const backend of backends) await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(opts: SuiteOptions): Promise<BenchRow[]> {
  const rounds: RoundOptions = opts.tiny
    ? { rounds: 1, time: 0, iterations: 2 }
    : { rounds: 9, time: 250, iterations: 50 };
  return [...(await memory(rounds)), ...(await file(opts))];
}
