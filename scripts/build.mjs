// The build: tsc writes the declarations (dist/**/*.d.ts, what `types` points at), esbuild the
// JavaScript. Each entry (the package, the kvws CLI) becomes one module, with code both share in
// chunks, and every `await import()` of an engine stays a chunk of its own, loaded on first use.
// One module instead of some eighty is what a cold start of `memory:` saves: each ES module file
// costs its own resolve, read and compile (bench/coldstart.ts).
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(repo, "dist");
rmSync(dist, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [join(repo, "node_modules/typescript/bin/tsc"), "-p", join(repo, "tsconfig.build.json")],
  {
    stdio: "inherit",
  },
);
await build({
  absWorkingDir: repo,
  entryPoints: ["lib/index.ts", "lib/cli/kvws.ts"],
  outbase: "lib",
  outdir: "dist",
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // Dependencies and peers (keyv, @redis/client, pg, sqlite3, zod…) stay imports: the app's copies.
  packages: "external",
  sourcemap: true,
  logLevel: "warning",
});
