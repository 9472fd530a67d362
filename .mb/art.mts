import { Keyv } from "keyv";
import { createStorage } from "/work/main/lib/index.ts";
const N = 20000;
const doc = { title: "plan", steps: Array.from({ length: 8 }, (_, i) => ({ id: i, text: `step ${i} do the thing`, done: i % 2 === 0 })) };
async function time(fn: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await fn(i);
  return ((performance.now() - t0) * 1000) / N;
}
for (let r = 0; r < 5; r++) {
  const raw = new Keyv();
  const s = createStorage(new Map(), { root: "b", workspaceId: "w" });
  const rs = await time((i) => raw.set(`k${i % 1000}`, doc));
  const ss = await time((i) => s.artifacts.save(`k${i % 1000}`, doc));
  const rg = await time((i) => raw.get(`k${i % 1000}`));
  const sg = await time((i) => s.artifacts.load(`k${i % 1000}`));
  console.log(`set ${rs.toFixed(2)} save ${ss.toFixed(2)} ${(ss / rs).toFixed(2)}x | get ${rg.toFixed(2)} load ${sg.toFixed(2)} ${(sg / rg).toFixed(2)}x`);
}
