import { createStorage } from "/work/main/lib/index.ts";
import { defaultKernel } from "/work/main/lib/vectors/kernel.ts";
import { rng } from "/work/main/spec/vectors/reference.ts";
const n = 100_000, d = 384;
const next = rng(5);
const data = Array.from({ length: n }, () => Float32Array.from({ length: d }, next));
const s = createStorage(new Map(), { root: "b", workspaceId: "w" });
for (let i = 0; i < n; i += 1000) await s.vectors.upsertMany(data.slice(i, i + 1000).map((vector, j) => ({ id: `v${i + j}`, vector })));
const qs = Array.from({ length: 16 }, () => Float32Array.from({ length: d }, next));
await s.vectors.search(qs[0]!, { k: 10 });
const words = n * d;
const plain = defaultKernel().memory(words * 4 + 64);
new Float32Array(plain.buffer, 0, words).fill(1);
for (let r = 0; r < 5; r++) {
  let t0 = performance.now();
  for (let i = 0; i < 30; i++) await s.vectors.search(qs[i % 16]!, { k: 10 });
  const sm = (performance.now() - t0) / 30;
  t0 = performance.now();
  for (let i = 0; i < 30; i++) plain.sumF32(0, words);
  const rm = (performance.now() - t0) / 30;
  console.log(`search ${sm.toFixed(2)} ms (${(1000 / sm).toFixed(0)} qps) read ${rm.toFixed(2)} ms -> ${((100 * rm) / sm).toFixed(0)}%`);
}
