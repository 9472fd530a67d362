// Rebuilds the Redis per-prefix index for data written before it existed. See docs/redis-index.md.
//
//   npx tsx scripts/rebuild-index.ts <redis-url> <root> [workspaceId]      one workspace (or, without an id, the root's unscoped collections)
//   npx tsx scripts/rebuild-index.ts <redis-url> <root> --all-workspaces   every workspace of the root, and its unscoped collections
//   npx tsx scripts/rebuild-index.ts <redis-url> --prefix <prefix> ...     exact prefixes (e.g. a custom depsPrefix)
//   --collections a,b   also look for these custom collections (besides the built-in ones and any already indexed)
//
// Prints one line per prefix and exits 0; a bad argument exits 2, any other failure 1.

import { redact } from "../lib/backends/index.js";
import { type RebuildReport, rebuildIndex, rebuildIndexes } from "../lib/backends/redis-rebuild.js";
import { KeyvWorkspacesError } from "../lib/errors.js";
import { COLLECTIONS } from "../lib/keys.js";

const USAGE = `usage:
  rebuild-index <redis-url> <root> [workspaceId] [--collections a,b]
  rebuild-index <redis-url> <root> --all-workspaces [--collections a,b]
  rebuild-index <redis-url> --prefix <prefix> [--prefix <prefix> ...]`;

function usage(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

const positional: string[] = [];
const prefixes: string[] = [];
let allWorkspaces = false;
let extra: string[] = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i] as string;
  if (arg === "--all-workspaces") allWorkspaces = true;
  else if (arg === "--prefix") prefixes.push(argv[++i] ?? usage("--prefix needs a value"));
  else if (arg === "--collections") extra = (argv[++i] ?? usage("--collections needs a value")).split(",");
  else if (arg === "-h" || arg === "--help") usage("");
  else if (arg.startsWith("--")) usage(`unknown option ${arg}`);
  else positional.push(arg);
}
const [url, root, workspaceId, ...rest] = positional;
if (!url || !/^rediss?:\/\//.test(url)) usage("the first argument must be a redis:// or rediss:// URL");
if (rest.length > 0) usage(`unexpected arguments: ${rest.join(" ")}`);
if (prefixes.length > 0 && root !== undefined) usage("give either --prefix or a root, not both");
if (prefixes.length === 0 && root === undefined) usage("give a root (or --prefix)");

function show(report: RebuildReport): void {
  const { prefix, scanned, added, removed } = report;
  process.stdout.write(
    `${prefix}: ${scanned} keys scanned, ${added} index entries added or fixed, ${removed} removed\n`,
  );
}

try {
  const started = Date.now();
  const reports: RebuildReport[] = [];
  for (const prefix of prefixes) reports.push(await rebuildIndex(url, prefix));
  if (root !== undefined) {
    const scope = { root, workspaceId, allWorkspaces, collections: [...COLLECTIONS, ...extra.filter(Boolean)] };
    reports.push(...(await rebuildIndexes(url, scope)));
  }
  reports.forEach(show);
  process.stdout.write(`${reports.length} prefixes rebuilt on ${redact(url)} in ${Date.now() - started} ms\n`);
} catch (error) {
  if (error instanceof KeyvWorkspacesError && error.code !== "ERR_CONNECTION") usage(`${error.code}: ${error.message}`);
  process.stderr.write(`rebuild failed: ${(error as Error).message}\n`);
  process.exit(1);
}
