import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import * as lib from "../lib/index.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const fixture = join(repo, "spec", "fixtures", "require-package.cjs");

describe("loading from CommonJS", () => {
  it("require('keyv-workspaces') loads the built package with every export", () => {
    // CI builds dist/ before the tests; a missing build must fail loudly, never skip this check.
    if (!existsSync(join(repo, "dist", "index.js"))) {
      throw new Error("dist/index.js is missing: run `npm run build` before this test (CI does)");
    }
    // The package's self-reference resolves its own name from inside the repository.
    const run = spawnSync(process.execPath, [fixture], { cwd: repo, encoding: "utf8", timeout: 20_000 });
    expect(run.stderr).not.toMatch(/ERR_PACKAGE_PATH_NOT_EXPORTED|ERR_REQUIRE_ESM|ERR_REQUIRE_ASYNC_MODULE/);
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { exported: string[]; kinds: Record<string, unknown>; loaded: unknown };
    expect(out.exported).toEqual(Object.keys(lib).sort());
    expect(out.kinds).toEqual({
      openStorage: "function",
      keyspace: "function",
      KeyvWorkspacesError: "function",
      invalidRootIsTyped: true,
    });
    expect(out.loaded).toEqual({ ok: true });
  });
});
