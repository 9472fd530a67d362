// Two tenants on one embedded file store: what each sees, what they share, and the keys it produced.
// Run: npm run demo   (no server needed)
import { rmSync } from "node:fs";
import { openStorage } from "../lib/index.js";

const path = ".kvws-demo/store.json";
rmSync(".kvws-demo", { recursive: true, force: true });

const acme = await openStorage({ url: `file:${path}`, root: "demo", workspaceId: "acme" });
const globex = acme.withWorkspace("globex");
const legacy = acme.withWorkspace(null);

await acme.artifacts.save("report", { revenue: 42 }, { description: "Q3 numbers" });
await globex.artifacts.save("report", { revenue: 7 }, { description: "Q3 numbers" });
await legacy.artifacts.save("readme", "written before workspaces existed");
await acme.workflows.add({
  name: "summarise_report",
  source: "def run(r): ...",
  description: "summarise a quarterly report",
});
await globex.workflows.add({ name: "resize_images", source: "def run(i): ...", description: "resize product images" });
await acme.vectors.upsert("doc-1", [0.1, 0.9, 0.2], { title: "pricing" });
await acme.deps.add("lodash@^4.17.21");
await globex.deps.add("zod@^4.0.0");

console.log("acme   report  →", await acme.artifacts.load("report"));
console.log("globex report  →", await globex.artifacts.load("report"));
console.log(
  "acme   search 'quarterly summary' →",
  (await acme.workflows.search("quarterly summary")).map((w) => w.name),
);
console.log(
  "globex search 'quarterly summary' →",
  (await globex.workflows.search("quarterly summary")).map((w) => w.name),
);
console.log("deps (shared by every workspace) →", await legacy.deps.list());

console.log(`\nKey layout in ${path}:`);
for (const [label, storage] of [
  ["acme", acme],
  ["globex", globex],
  ["unscoped", legacy],
] as const) {
  for (const collection of ["artifacts", "workflows", "vectors", "deps"]) {
    const scoped = storage.collection(collection);
    for await (const [name] of scoped.iterator!(undefined)) {
      const key = storage.keyspace.key(collection, String(name));
      if (label === "unscoped" || storage.keyspace.isScoped(collection)) console.log(`  ${label.padEnd(8)} ${key}`);
    }
  }
}
console.log("\nbootstrap config for a worker →", JSON.stringify(acme.toBootstrapConfig()));
await acme.close();
