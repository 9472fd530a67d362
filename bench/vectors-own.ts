/**
 * The first search after the handle's own upserts, against a warm search, on the memory
 * backend: a handle that wrote rows itself must not reload its matrix for them, however many
 * (issue 22: more than the change log's 1,000 entries made it reload: 67× a warm search at 20k).
 * Each round overwrites `own` random rows (upserts in flight 500 at a time), then times the
 * first search and the one right after it.
 *
 *   npx tsx bench/vectors-own.ts [--tiny]      (alone: prints the rows)
 */
import { randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";
import { openStorage } from "../lib/index.js";
import { rng } from "../spec/vectors/reference.js";
import { type BenchRow, progress, ratios, row } from "./rows.js";

const GROUP = "vectors";
const D = 384;
const IN_FLIGHT = 500;

function vectors(n: number, seed: number): Float32Array[] {
  const next = rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: D }, next));
}

const label = (n: number) => (n >= 1000 ? `${n / 1000}k` : String(n));

export interface OwnCase {
  n: number;
  own: number;
}

export async function ownWritesSuite(cases: readonly OwnCase[], rounds: number): Promise<BenchRow[]> {
  const out: BenchRow[] = [];
  for (const { n, own } of cases) {
    const root = `kvwsbench_${randomBytes(4).toString("hex")}`;
    const storage = await openStorage({ url: `memory:${root}`, root, workspaceId: "w" });
    try {
      const data = vectors(n, 11);
      for (let i = 0; i < n; i += 1000) {
        await storage.vectors.upsertMany(data.slice(i, i + 1000).map((vector, j) => ({ id: `v${i + j}`, vector })));
      }
      const queries = vectors(8, 12);
      await storage.vectors.search(queries[0]!); // the cache is loaded: every round starts warm
      const pick = rng(13);
      const first: number[] = [];
      const warm: number[] = [];
      const rate: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const fresh = vectors(own, 100 + r);
        const ids = fresh.map(() => `v${Math.floor(((pick() + 4) / 8) * n) % n}`);
        const w0 = performance.now();
        for (let i = 0; i < own; i += IN_FLIGHT) {
          await Promise.all(fresh.slice(i, i + IN_FLIGHT).map((v, j) => storage.vectors.upsert(ids[i + j]!, v)));
        }
        rate.push((own / (performance.now() - w0)) * 1000);
        const t0 = performance.now();
        const found = await storage.vectors.search(fresh[own - 1]!, { k: 1 });
        const t1 = performance.now();
        await storage.vectors.search(queries[r % queries.length]!);
        const t2 = performance.now();
        if (found[0]?.id !== ids[own - 1]) throw new Error(`own upsert ${ids[own - 1]} was not found`);
        first.push(t1 - t0);
        warm.push(t2 - t1);
      }
      const where = `memory, n=${label(n)} d=${D}`;
      out.push(
        row(GROUP, `own upserts into a loaded cache (${where})`, "rows/s", rate, `${IN_FLIGHT} in flight`),
        row(GROUP, `first search after ${label(own)} own upserts (${where})`, "ms", first),
        row(GROUP, `warm search, same handle (${where})`, "ms", warm),
        row(
          GROUP,
          `first search after ${label(own)} own upserts ÷ warm (${where})`,
          "×",
          ratios(first, warm),
          "goal ≤ 3×",
        ),
      );
      progress(`vectors: own writes at n=${label(n)} done`);
    } finally {
      await storage.collection("vectors").clear();
      await storage.close();
    }
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const tiny = process.argv.includes("--tiny");
  const rows = await ownWritesSuite(
    tiny
      ? [{ n: 2000, own: 1500 }]
      : [
          { n: 20_000, own: 5000 },
          { n: 100_000, own: 5000 },
        ],
    tiny ? 2 : 3,
  );
  for (const r of rows)
    process.stdout.write(
      `${r.name}: median ${r.median.toFixed(2)} ${r.unit} (min ${r.min.toFixed(2)}, max ${r.max.toFixed(2)})\n`,
    );
}
