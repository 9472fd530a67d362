// Floor: what Map+Set bookkeeping costs vs a bare Map set, to see what's left to win.
const N = 5_000_000;
const m = new Map(); const names = new Set<string>(); const prefixes = new Map([["b:ws:w:artifacts", { names }]]);
const v = '{"value":{"a":1}}';
let t0 = performance.now();
for (let i = 0; i < N; i++) m.set(`keyv:k${i % 5000}`, v);
console.log("bare", ((performance.now() - t0) * 1e6) / N, "ns");
t0 = performance.now();
const p = "b:ws:w:artifacts";
for (let i = 0; i < N; i++) { const n = `k${i % 5000}`; m.set(`${p}:${n}`, v); prefixes.get(p)!.names.add(n); }
console.log("tracked", ((performance.now() - t0) * 1e6) / N, "ns");
