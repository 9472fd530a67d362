/**
 * Vector ingest on the memory backend, by how many rows the workspace already holds: an upsert's
 * cost must not depend on rows it does not touch. A fresh handle each round, no search first, so
 * the dimension is found the way an ingest-only worker finds it.
 */
import { createStorage } from "../lib/index.js";
import { rng } from "../spec/vectors/reference.js";
import { type BenchRow, progress, ratios, row } from "./rows.js";

const GROUP = "vectors";
const D = 384;
const BATCH = 1000;

function vectors(n: number, seed: number): Float32Array[] {
  const next = rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: D }, next));
}

interface Round {
  /** µs per awaited upsert, one after another, once the workspace holds n rows. */
  upsertUs: number;
  /** Rows per second through upsertMany in batches of BATCH, from empty to n. */
  manyRate: number;
}

async function round(n: number, data: readonly Float32Array[]): Promise<Round> {
  const storage = createStorage(new Map(), { root: "bench", workspaceId: "w" });
  const t0 = performance.now();
  for (let i = 0; i < n; i += BATCH) {
    await storage.vectors.upsertMany(data.slice(i, i + BATCH).map((vector, j) => ({ id: `v${i + j}`, vector })));
  }
  const manyRate = (n / (performance.now() - t0)) * 1000;
  const t1 = performance.now();
  for (let j = 0; j < BATCH; j++) await storage.vectors.upsert(`new${j}`, data[j]!);
  const upsertUs = ((performance.now() - t1) * 1000) / BATCH;
  await storage.close();
  return { upsertUs, manyRate };
}

export async function ingestSuite(sizes: readonly number[], rounds: number): Promise<BenchRow[]> {
  const data = vectors(Math.max(...sizes), 11);
  const bySize = new Map<number, Round[]>(sizes.map((n) => [n, []]));
  // Sizes interleaved per round, so drift hits every size alike and the ratio is from one run.
  for (let r = 0; r < rounds; r++) {
    for (const n of sizes) {
      progress(`vectors: ingest n=${n} round ${r + 1}/${rounds}`);
      bySize.get(n)!.push(await round(n, data));
    }
  }
  const out: BenchRow[] = [];
  for (const n of sizes) {
    const rs = bySize.get(n)!;
    out.push(
      row(
        GROUP,
        `upsert into ${n} rows (d=${D}, memory, awaited one by one)`,
        "µs",
        rs.map((x) => x.upsertUs),
      ),
      row(
        GROUP,
        `upsertMany ${n} rows from empty (d=${D}, memory, batches of ${BATCH})`,
        "rows/s",
        rs.map((x) => x.manyRate),
      ),
    );
  }
  const small = bySize.get(Math.min(...sizes))!;
  const large = bySize.get(Math.max(...sizes))!;
  out.push(
    row(
      GROUP,
      `upsert cost at ${Math.max(...sizes)} rows / at ${Math.min(...sizes)}`,
      "x",
      ratios(
        large.map((x) => x.upsertUs),
        small.map((x) => x.upsertUs),
      ),
      "flat in n is 1.0",
    ),
  );
  return out;
}
