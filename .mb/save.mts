import { createStorage } from "/work/main/lib/index.ts";
const doc = { title: "plan", steps: Array.from({ length: 8 }, (_, i) => ({ id: i, text: `step ${i} do the thing`, done: i % 2 === 0 })) };
const s = createStorage(new Map(), { root: "b", workspaceId: "w" });
for (let i = 0; i < 200000; i++) await s.artifacts.save(`k${i % 1000}`, doc);
