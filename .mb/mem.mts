import { Keyv } from "keyv";
import { createStorage } from "/work/main/lib/index.ts";
const N = 200000;
async function time(fn: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await fn(i);
  return ((performance.now() - t0) * 1000) / N;
}
const val = { a: 1, b: "hello world", c: [1, 2, 3] };
for (let r = 0; r < 5; r++) {
  const raw = new Keyv();
  const s = createStorage(new Map(), { root: "b", workspaceId: "w" });
  const c = s.collection("artifacts");
  const out: string[] = [];
  for (const [op, f, g] of [
    ["set", (i: number) => raw.set(`k${i % 5000}`, val), (i: number) => c.set(`k${i % 5000}`, val)],
    ["get", (i: number) => raw.get(`k${i % 5000}`), (i: number) => c.get(`k${i % 5000}`)],
    ["del", (i: number) => raw.delete(`k${i % 5000}`), (i: number) => c.delete(`k${i % 5000}`)],
  ] as const) {
    const a = await time(f); const b = await time(g);
    out.push(`${op} ${a.toFixed(2)}/${b.toFixed(2)} ${(b / a).toFixed(2)}x`);
  }
  console.log(out.join(" | "));
}
