import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

// The README's first contact is `npm install && npm run demo`: it must not compile SQLite
// (most of a fresh install's time here), while `npm test` still runs every SQLite test against
// the real sqlite3, built once by scripts/ensure-sqlite3.mjs.
const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const ensure = join(repo, "scripts", "ensure-sqlite3.mjs");
const manifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};
const lock = JSON.parse(readFileSync(join(repo, "package-lock.json"), "utf8")) as {
  packages: Record<string, { version?: string; hasInstallScript?: boolean }>;
};

/** `^x.y.z` as node-semver reads it for x >= 1: same major, not below x.y.z. */
function satisfiesCaret(version: string, range: string): boolean {
  const want = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(range);
  const have = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (!want || !have) throw new Error(`not a plain caret range / version: ${range} / ${version}`);
  const [w, h] = [want.slice(1).map(Number), have.slice(1).map(Number)];
  if (h[0] !== w[0]) return false;
  return h[1]! > w[1]! || (h[1] === w[1] && h[2]! >= w[2]!);
}

const npm = (args: string[], cwd: string) =>
  spawnSync("npm", args, { cwd, encoding: "utf8", timeout: 60_000, shell: process.platform === "win32" });

describe("a fresh install", () => {
  it("runs no dependency's build: every install script in the lockfile is reviewed, sqlite3's denied", () => {
    const policy = manifest.allowScripts ?? {};
    const withScripts = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== "" && entry.hasInstallScript)
      .map(([path]) => path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length));
    expect(withScripts.filter((name) => !(name in policy))).toEqual([]);
    expect(policy.sqlite3).toBe(false);
    // esbuild's postinstall only checks the platform binary it ships in a package: no compiler.
    expect(Object.keys(policy).filter((name) => policy[name])).toEqual(["esbuild"]);
    // A pinned allow (`esbuild@0.28.2`) is refused when the lockfile has no resolved URLs
    // (omit-lockfile-registry-resolved), which is how this lockfile is written: names only.
    expect(Object.keys(policy).filter((key) => /.@/.test(key))).toEqual([]);
  });

  it("holds one sqlite3, the lockfile's, in the range the peer dependency asks of apps", () => {
    const copies = Object.keys(lock.packages).filter((path) => /(^|\/)node_modules\/sqlite3$/.test(path));
    expect(copies).toEqual(["node_modules/sqlite3"]);
    const version = lock.packages["node_modules/sqlite3"]!.version!;
    expect(satisfiesCaret(version, manifest.peerDependencies.sqlite3!)).toBe(true);
    expect(satisfiesCaret(version, manifest.devDependencies.sqlite3!)).toBe(true);
  });

  it("npm test and npm run bench build sqlite3's addon before anything loads it", () => {
    expect(manifest.scripts.pretest).toMatch(/^node scripts\/ensure-sqlite3\.mjs && /);
    expect(manifest.scripts.prebench).toBe("node scripts/ensure-sqlite3.mjs");
  });
});

describe("scripts/ensure-sqlite3.mjs", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** A project whose sqlite3 is a stand-in with an install script: building it writes built.js. */
  function project(): string {
    const dir = mkdtempSync(join(tmpdir(), "kvws-ensure-"));
    dirs.push(dir);
    const pkg = join(dir, "node_modules", "sqlite3");
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      join(dir, "package.json"),
      JSON.stringify({
        name: "p",
        version: "1.0.0",
        dependencies: { sqlite3: "5.1.7" },
        allowScripts: manifest.allowScripts,
      }),
    );
    writeFileSync(
      join(pkg, "package.json"),
      JSON.stringify({ name: "sqlite3", version: "5.1.7", main: "index.js", scripts: { install: "node build.js" } }),
    );
    writeFileSync(join(pkg, "index.js"), 'module.exports = require("./built.js");\n');
    writeFileSync(join(pkg, "build.js"), 'require("fs").writeFileSync("built.js", "module.exports = 1;\\n");\n');
    return dir;
  }

  it("does nothing, silently, when sqlite3 loads", () => {
    const out = execFileSync(process.execPath, [ensure], { cwd: repo, encoding: "utf8", stdio: "pipe" });
    expect(out).toBe("");
  });

  it("builds an installed but unbuilt sqlite3 through the allowScripts denial, once", () => {
    const dir = project();
    const built = join(dir, "node_modules", "sqlite3", "built.js");
    // An npm that predates allowScripts builds sqlite3 at install (slowly) and has no such key.
    if (npm(["config", "get", "strict-allow-scripts"], dir).stdout.trim() !== "undefined") {
      expect(npm(["rebuild"], dir).status).toBe(0); // what an install runs: the denial holds
      expect(existsSync(built)).toBe(false);
    }
    const first = spawnSync(process.execPath, [ensure, dir], { encoding: "utf8", timeout: 60_000 });
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/Building sqlite3 5\.1\.7's native addon/);
    expect(existsSync(built)).toBe(true);
    const again = spawnSync(process.execPath, [ensure, dir], { encoding: "utf8", timeout: 60_000 });
    expect([again.status, again.stdout, again.stderr]).toEqual([0, "", ""]);
  });

  it("fails with the command to run when sqlite3 is not installed at all", () => {
    const dir = mkdtempSync(join(tmpdir(), "kvws-ensure-"));
    dirs.push(dir);
    writeFileSync(join(dir, "package.json"), "{}");
    const run = spawnSync(process.execPath, [ensure, dir], { encoding: "utf8" });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/sqlite3 is not installed .*run `npm install`/);
  });

  it("fails, naming what a source build needs, when the build does not make it load", () => {
    const dir = project();
    writeFileSync(join(dir, "node_modules", "sqlite3", "build.js"), "process.exit(1);\n");
    const run = spawnSync(process.execPath, [ensure, dir], { encoding: "utf8", timeout: 60_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/Could not build sqlite3 5\.1\.7[\s\S]*build-essential/);
  });
});
