import { createStorage } from "/work/main/lib/index.ts";
for (const n of [100, 10_000, 100_000]) {
  const s = createStorage(new Map(), { root: "b", workspaceId: "w" });
  for (let i = 0; i < n; i += 1000) await Promise.all(Array.from({ length: Math.min(1000, n - i) }, (_, j) => s.artifacts.save(`a${String(i + j).padStart(6, "0")}`, { i: i + j })));
  let t0 = performance.now();
  await s.artifacts.list({ limit: 100 });
  const first = performance.now() - t0;
  const ts: number[] = [];
  for (let r = 0; r < 50; r++) { await s.artifacts.save(`z${r}`, 1); t0 = performance.now(); await s.artifacts.list({ limit: 100 }); ts.push(performance.now() - t0); }
  ts.sort((a, b) => a - b);
  console.log(n, "first-ever", first.toFixed(3), "ms; later (after a write each)", ts[25]!.toFixed(3), "ms");
}
