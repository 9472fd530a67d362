// Module hooks that run the bench's TypeScript the way the published package is built: esbuild's
// transform without keepNames. tsx always sets keepNames, which wraps every function the library
// creates in a name-defining call and moves it to dictionary mode: measured here, a
// withWorkspace(id).collection() view took 80 µs and 16.5 KB under tsx against 26 µs and 6.5 KB
// from dist/, so figures taken through tsx charged users for a cost dist/ does not have.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { transformSync } from "esbuild";

/** `./x.js` written in a bench or lib source names `./x.ts` when only that exists (as tsc resolves it). */
export async function resolve(specifier, context, next) {
  const local = /^(\.|\/|file:)/.test(specifier) && specifier.endsWith(".js") && context.parentURL?.startsWith("file:");
  if (local && !existsSync(new URL(specifier, context.parentURL))) {
    const ts = new URL(specifier.replace(/\.js$/, ".ts"), context.parentURL);
    if (existsSync(ts)) return { url: ts.href, format: "module", shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (!url.startsWith("file:") || !/\.(m?ts)$/.test(url) || url.includes("/node_modules/")) return next(url, context);
  const path = fileURLToPath(url);
  const { code } = transformSync(readFileSync(path, "utf8"), {
    loader: "ts",
    format: "esm",
    target: "node20",
    sourcefile: path,
    sourcemap: "inline",
  });
  return { format: "module", source: code, shortCircuit: true };
}
