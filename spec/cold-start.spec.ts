// What a process loads when it only uses `memory:`: no engine's client (they load when a URL of
// their scheme is opened, lib/backends/index.ts) and no zod (lib/zod.ts). Checked in fresh
// processes through the built package, as an app loads it; the same probe on a `redis://` and a
// `sqlite:` URL shows it does see a client load.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { deleteUnder, REDIS_URL, rawRedis, tempDir } from "./support/env.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const fixture = join(repo, "spec", "fixtures", "cold-start.mjs");
const trace = join(repo, "spec", "fixtures", "load-trace.mjs");
const dir = tempDir();
afterAll(() => dir.remove());

/** Engine clients (and zod) by the package folder their files live in. */
const HEAVY: Record<string, RegExp> = {
  "@redis/client": /node_modules\/@redis\/client\//,
  "@keyv/redis": /node_modules\/@keyv\/redis\//,
  pg: /node_modules\/pg\//,
  sqlite3: /node_modules\/sqlite3\//,
  zod: /node_modules\/zod\//,
};

let runs = 0;

/** Runs the fixture in a fresh process; the packages of HEAVY that it loaded (ES or CommonJS), and its pid. */
function loadedBy(args: string[]): { heavy: string[]; ours: string[]; pid: number } {
  if (!existsSync(join(repo, "dist", "index.js"))) {
    throw new Error("dist/index.js is missing: run `npm run build` before this test (CI does)");
  }
  const out = join(dir.path, `trace-${runs++}.txt`);
  const run = spawnSync(process.execPath, ["--import", trace, fixture, ...args], {
    cwd: repo,
    encoding: "utf8",
    timeout: 30_000,
    env: { ...process.env, KVWS_LOAD_TRACE: out },
  });
  expect(run.status, run.stderr).toBe(0);
  const { cjs } = JSON.parse(run.stdout) as { cjs: string[] };
  const files = [...readFileSync(out, "utf8").split("\n").filter(Boolean), ...cjs];
  const heavy = Object.keys(HEAVY).filter((name) => files.some((file) => HEAVY[name]!.test(file)));
  return { heavy, ours: files.filter((file) => /\/dist\//.test(file)), pid: run.pid as number };
}

describe("cold start", () => {
  it("import, open memory: and one save load no engine client and no zod", () => {
    const { heavy, ours } = loadedBy(["kvws", "memory:"]);
    expect(ours.length).toBeGreaterThan(0); // the probe saw the package itself load
    expect(heavy).toEqual([]);
  });

  it("loads the package as a few bundled modules, not a file per source file (scripts/build.mjs)", () => {
    // Each ES module file costs a resolve, a read and a compile: the per-file build loaded 82 here.
    const { ours } = loadedBy(["kvws", "memory:"]);
    expect(new Set(ours).size).toBeLessThan(30);
  });

  it("the probe sees @redis/client and @keyv/redis load once a redis:// URL is opened", async () => {
    const { heavy, pid } = loadedBy(["kvws", REDIS_URL, "--open-only"]);
    const client = await rawRedis();
    try {
      await deleteUnder(client, `cold${pid}`);
    } finally {
      client.destroy();
    }
    expect(heavy).toEqual(expect.arrayContaining(["@redis/client", "@keyv/redis"]));
    expect(heavy).not.toContain("pg");
    expect(heavy).not.toContain("sqlite3");
  });

  it("and sqlite3 once a sqlite: URL is opened", () => {
    const { heavy } = loadedBy(["kvws", `sqlite:${join(dir.path, "cold.db")}`, "--open-only"]);
    expect(heavy).toContain("sqlite3");
    expect(heavy).not.toContain("@redis/client");
  });
});
