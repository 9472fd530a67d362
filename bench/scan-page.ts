/**
 * Paging: the first page of 100 (`artifacts.list({ limit: 100 })`) of ONE workspace holding
 * 1M artifacts (--full; 100k by default, 2,000 with --tiny), against the same page of a
 * workspace holding 100, interleaved in the same rounds, on Redis and on the memory backend.
 * Neither should grow with the workspace: on Redis a page is a range read of the index, in memory
 * a binary search of the sorted names the store keeps once a prefix was paged (lib/backends/sorted-names.ts).
 */
import { createStorage, openStorage, type WorkspaceStorage } from "../lib/index.js";
import {
  type BenchRow,
  interleaved,
  progress,
  REDIS_URL,
  type RoundOptions,
  ratios,
  row,
  type SuiteOptions,
  samples,
} from "./rows.js";
import { benchRoot, withRedisRoot } from "./support.js";

const GROUP = "scan";
const ENTRIES = 100;
const PAYLOAD = { text: "z".repeat(80) };

function rounds(opts: SuiteOptions): RoundOptions {
  return opts.tiny ? { rounds: 2, time: 5, iterations: 2 } : { rounds: 4, time: 250, iterations: 5 };
}

function pageSize(opts: SuiteOptions): number {
  if (opts.tiny) return 2000;
  return opts.full ? 1_000_000 : 100_000;
}

/** The first page of 100 in a big workspace and in a 100-entry one, interleaved in the same rounds. */
export async function pageRows(opts: SuiteOptions): Promise<BenchRow[]> {
  const root = benchRoot("page");
  const redis = await withRedisRoot(root, async () => {
    const big = await openStorage({ url: REDIS_URL, root, workspaceId: "big" });
    try {
      return await firstPage("redis", big, opts);
    } finally {
      await big.close();
    }
  });
  // The hash layout sorts the collection's names (HKEYS) for every page: O(names of that collection).
  const hashRoot = benchRoot("hpage");
  const hashed = await withRedisRoot(hashRoot, async () => {
    const big = await openStorage({ url: REDIS_URL, root: hashRoot, workspaceId: "big", redisLayout: "hash" });
    try {
      return await firstPage("redis hash layout", big, opts);
    } finally {
      await big.close();
    }
  });
  const memory = createStorage(new Map(), { root, workspaceId: "big" });
  try {
    return [...redis, ...hashed, ...(await firstPage("memory", memory, opts))];
  } finally {
    await memory.close();
  }
}

async function firstPage(backend: string, big: WorkspaceStorage, opts: SuiteOptions): Promise<BenchRow[]> {
  const size = pageSize(opts);
  const small = big.withWorkspace("small");
  progress(`scan: filling one ${backend} workspace with ${size} artifacts`);
  // Through the library (setMany: one write per 1000), so the listing is the one writes keep.
  const stored = { description: "", size: 0, kind: "json", metadata: {}, data: PAYLOAD };
  const IN_FLIGHT = 8;
  let inFlight: Array<Promise<unknown>> = [];
  for (let start = 0; start < size; start += 1000) {
    const batch = [];
    for (let i = start; i < Math.min(size, start + 1000); i++)
      batch.push({ key: `a${i}`, value: { name: `a${i}`, ...stored } });
    inFlight.push(big.collection("artifacts").setMany(batch));
    if (inFlight.length >= IN_FLIGHT) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
  for (let i = 0; i < ENTRIES; i++) await small.artifacts.save(`a${i}`, { i, ...PAYLOAD });
  const page = (s: WorkspaceStorage) => async () => {
    const list = await s.artifacts.list({ limit: 100 });
    if (list.length !== 100) throw new Error(`first page held ${list.length} artifacts, expected 100`);
  };
  // The very first page of a memory workspace sorts its names once; it is timed on its own.
  const t0 = performance.now();
  await page(big)();
  const firstEver = performance.now() - t0;
  progress(`scan: ${backend} first page of 100 at ${size}`);
  const results = await interleaved(
    [
      { name: "big", fn: page(big) },
      { name: "small", fn: page(small) },
    ],
    rounds(opts),
  );
  const bigMs = samples(results, "big");
  const smallMs = samples(results, "small");
  return [
    row(
      GROUP,
      `${backend} first page of 100, workspace of ${size} artifacts`,
      "ms",
      bigMs,
      `artifacts.list({ limit: 100 }); the workspace's first page ever: ${firstEver.toFixed(1)} ms`,
    ),
    row(GROUP, `${backend} first page of 100, workspace of ${ENTRIES} artifacts`, "ms", smallMs),
    row(
      GROUP,
      `${backend} first page of 100: ${size} / ${ENTRIES} artifacts`,
      "×",
      ratios(bigMs, smallMs),
      "1.0 = flat",
    ),
  ];
}
