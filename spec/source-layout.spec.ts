// The shape issue 18 asked of lib/: small files, no import cycles, one folder per engine.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const lib = join(dirname(fileURLToPath(import.meta.url)), "..", "lib");
const MAX_LINES = 350;

const sources = readdirSync(lib, { withFileTypes: true, recursive: true })
  .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
  .map((entry) => join(entry.parentPath, entry.name));

/** Relative imports that exist at run time (`import type` is erased, so it cannot form a cycle). */
function runtimeEdges(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const edges: string[] = [];
  for (const match of text.matchAll(/^(?:import|export)(?! type )[^;]*?from "(\.[^"]+)"/gms)) {
    edges.push(resolve(dirname(file), (match[1] as string).replace(/\.js$/, ".ts")));
  }
  for (const match of text.matchAll(/^import "(\.[^"]+)"|import\("(\.[^"]+)"\)/gm)) {
    edges.push(resolve(dirname(file), ((match[1] ?? match[2]) as string).replace(/\.js$/, ".ts")));
  }
  return edges;
}

/** Every cycle's path, found by a depth-first walk (white/grey/black). */
function cycles(): string[][] {
  const graph = new Map(sources.map((file) => [file, runtimeEdges(file)]));
  const state = new Map<string, "open" | "done">();
  const found: string[][] = [];
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === "open") found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, "done");
  };
  for (const file of sources) if (!state.has(file)) visit(file);
  return found.map((cycle) => cycle.map((file) => relative(lib, file)));
}

describe("lib/ layout", () => {
  it("finds the sources it checks", () => {
    expect(sources.length).toBeGreaterThan(50);
  });

  it(`keeps every source file at most ${MAX_LINES} lines`, () => {
    const long = sources
      .map((file) => [relative(lib, file), readFileSync(file, "utf8").split("\n").length] as const)
      .filter(([, lines]) => lines > MAX_LINES);
    expect(long).toEqual([]);
  });

  it("has no import cycle", () => {
    expect(cycles()).toEqual([]);
  });

  it("keeps each server or file engine in its own folder", () => {
    const top = readdirSync(join(lib, "backends"));
    expect(top.filter((name) => /^(redis|file|sql|keyv-file)[-.]/.test(name))).toEqual([]);
    expect(top).toEqual(expect.arrayContaining(["redis", "file", "sql"]));
  });
});
