#!/usr/bin/env node
// Builds sqlite3's native addon once, before the tests (and the bench) need it.
// The SQLite tests run against the real sqlite3 package, but `npm install` does not build it:
// package.json's allowScripts denies its install script, because compiling SQLite from source
// is most of a first install (about 70 s of CPU) and the demo, lint, typecheck and build never
// load it. The package itself is installed from the lockfile as usual (exact version, its
// JavaScript and types); only the addon is built here, by sqlite3's own install script, so it
// is the same build a plain `npm install sqlite3` makes (a prebuilt download where there is
// network, else a build from source). An npm that predates allowScripts has built it already,
// and then this does nothing.
// It builds the SQLite that sqlite3 bundles, not the system's libsqlite3 (`npm_config_sqlite=/usr`,
// 6x less CPU here): that would test another SQLite (Debian's 3.40 vs the bundled 3.44 apps get)
// and needs its headers, which a machine may lack.
// Usage: node scripts/ensure-sqlite3.mjs [projectDir]   (default: this repository)
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), ".."));

/** "ok", "missing" (not in node_modules) or "unbuilt" (installed, its addon does not load). */
function probe() {
  // A child process: a failed load leaves nothing cached here, and the check sees the addon afresh.
  const child = spawnSync(
    process.execPath,
    [
      "-e",
      `const r = require("node:module").createRequire(${JSON.stringify(join(root, "package.json"))});
       try { r.resolve("sqlite3/package.json"); } catch { process.exit(3); }
       r("sqlite3");`,
    ],
    { encoding: "utf8" },
  );
  if (child.status === 0) return { state: "ok" };
  return { state: child.status === 3 ? "missing" : "unbuilt", detail: child.stderr.trim().split("\n").slice(-3) };
}

const first = probe();
if (first.state === "ok") process.exit(0);
if (first.state === "missing") {
  console.error(`sqlite3 is not installed in ${root}: run \`npm install\` (or \`npm ci\`) first.`);
  process.exit(1);
}

const version = createRequire(join(root, "package.json"))("sqlite3/package.json").version;
console.error(
  `Building sqlite3 ${version}'s native addon for the SQLite tests, once for this node_modules ` +
    "(npm install skips it: see allowScripts in package.json). From source this takes about " +
    "70 s of CPU, 1-3 minutes on 2 cores…",
);
const started = Date.now();
// --dangerously-allow-all-scripts lifts the allowScripts denial for this one package only:
// `npm rebuild sqlite3` rebuilds nothing else.
const built = spawnSync("npm", ["rebuild", "sqlite3", "--dangerously-allow-all-scripts"], {
  cwd: root,
  stdio: ["ignore", "inherit", "inherit"],
  shell: process.platform === "win32",
});
const after = probe();
if (built.status !== 0 || after.state !== "ok") {
  console.error(
    `Could not build sqlite3 ${version} (npm rebuild exited ${built.status}).\n` +
      "Building it from source needs Python 3, make and a C/C++ compiler (Debian/Ubuntu: apt-get install python3 build-essential).\n" +
      (after.detail ? `Loading it still fails with:\n  ${after.detail.join("\n  ")}` : ""),
  );
  process.exit(1);
}
console.error(`Built sqlite3 ${version} in ${Math.round((Date.now() - started) / 1000)} s.`);
