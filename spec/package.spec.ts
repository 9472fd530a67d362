import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const manifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as {
  engines: { node: string };
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Every runtime import specifier of the library sources: what an install must provide. */
function runtimeImports(dir: string): Set<string> {
  const found = new Set<string>();
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    const text = readFileSync(join(entry.parentPath, entry.name), "utf8");
    // `import type` is erased by tsc, so it needs no runtime dependency.
    // Static imports, and what loads on first use: `import("x")`, and `createRequire(…)("x")` (lib/zod.ts).
    const loads = [
      ...text.matchAll(/^(?:import|export)(?! type)[^;]*?from "([^".][^"]*)"/gms),
      ...text.matchAll(/\bimport\("([^".][^"]*)"\)/g),
      ...text.matchAll(/createRequire\([^)]*\)\("([^".][^"]*)"\)/g),
    ];
    for (const match of loads) {
      found.add(
        (match[1] as string).startsWith("@") ? match[1]!.split("/").slice(0, 2).join("/") : match[1]!.split("/")[0]!,
      );
    }
  }
  return found;
}

describe("the published package", () => {
  it("npm pack ships dist, README, LICENSE and package.json — no sources, specs or benches", () => {
    if (!existsSync(join(repo, "dist", "index.js"))) {
      throw new Error("dist/index.js is missing: run `npm run build` before this test (CI does)");
    }
    const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
      cwd: repo,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 60_000,
    });
    const files = (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining(["LICENSE", "README.md", "package.json", "dist/index.js", "dist/index.d.ts"]),
    );
    const stray = files.filter(
      (f) => !/^(LICENSE|README\.md|package\.json)$/.test(f) && !/^dist\/.+\.(js|d\.ts)$/.test(f),
    );
    expect(stray).toEqual([]);
    expect(files.some((f) => /^(lib|spec|bench|scripts|examples)\//.test(f))).toBe(false);
  });

  it("carries the MIT license text", () => {
    const text = readFileSync(join(repo, "LICENSE"), "utf8");
    expect(text).toMatch(/^MIT License/);
    expect(text).toContain("Copyright (c) 2026 keyv-workspaces contributors");
  });

  it("declares the Node range that can require() it and depends only on what lib imports", () => {
    expect(manifest.engines.node).toBe(">=20.19");
    const imports = runtimeImports(join(repo, "lib"));
    const builtins = [...imports].filter((name) => name.startsWith("node:"));
    const packages = [...imports].filter((name) => !name.startsWith("node:")).sort();
    expect(builtins.length).toBeGreaterThan(0);
    // keyv, pg and sqlite3 are peer dependencies: the app brings its own copy (pg and sqlite3 when it uses them).
    expect(packages).toEqual([...Object.keys(manifest.dependencies), ...Object.keys(manifest.peerDependencies)].sort());
    expect(manifest.devDependencies["keyv-file"]).toBeDefined();
  });

  it("has no `any` in its public types", () => {
    const dist = join(repo, "dist");
    expect(existsSync(join(dist, "index.d.ts")), "dist/ is missing: run `npm run build` first").toBe(true);
    const offenders: string[] = [];
    for (const entry of readdirSync(dist, { withFileTypes: true, recursive: true })) {
      if (!entry.isFile() || !entry.name.endsWith(".d.ts")) continue;
      const text = readFileSync(join(entry.parentPath, entry.name), "utf8")
        .replace(/\/\*[\s\S]*?\*\//g, "")
        .replace(/\/\/.*$/gm, "");
      for (const line of text.split("\n")) if (/\bany\b/.test(line)) offenders.push(`${entry.name}: ${line.trim()}`);
    }
    expect(offenders).toEqual([]);
  });
});
