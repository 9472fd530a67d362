import { Keyv } from "keyv";
import { createStorage } from "/work/main/lib/index.ts";
const mode = process.argv[2];
const val = { a: 1, b: "hello world", c: [1, 2, 3] };
const c = mode === "raw" ? new Keyv() : createStorage(new Map(), { root: "b", workspaceId: "w" }).collection("artifacts");
const t0 = performance.now();
for (let i = 0; i < 2_000_000; i++) await c.set(`k${i % 5000}`, val);
console.log(mode, ((performance.now() - t0) * 1000) / 2e6);
