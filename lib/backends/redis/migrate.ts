/**
 * Re-keying an existing (untagged) deployment into the hash-tag layout, on a standalone Redis,
 * before it moves to a cluster (`redis-cli --cluster import`, docs/cluster.md):
 *
 *   <root>:ws:<id>:<rest>        → <root>:ws:{<id>}:<rest>
 *   <root>:<collection><rest>    → <root>:{<collection>}<rest>   (rest = ":<name>" or "#<bookkeeping>")
 *   <depsPrefix><rest>           → {<depsPrefix>}<rest>
 *
 * One prefix (values and bookkeeping) moves in one script, so no reader sees it half moved. A
 * key whose new name is taken already (the app wrote the new layout meanwhile) is left where
 * it is and reported: the new data wins. Index members are names, not keys, so they stay valid;
 * the indexes are rebuilt afterwards anyway, which also drops members whose value expired.
 */
import { createHash } from "node:crypto";
import { InvalidArgumentError } from "../../errors.js";
import {
  COLLECTIONS,
  SEPARATOR,
  validateCollection,
  validateDepsPrefix,
  validateRoot,
  validateWorkspaceId,
  WORKSPACE_SEGMENT,
} from "../../keys.js";
import { type RebuildReport, rebuildIndexes } from "./rebuild.js";
import { runScript, type Script } from "./scripts.js";
import type { RedisCommander } from "./tx.js";
import { redact } from "./url.js";

export interface MigrateLayoutOptions {
  root: string;
  /** Collections directly under the root to move, besides the built-in ones (e.g. unscoped collections of your own). */
  collections?: readonly string[];
  /** A custom deps prefix in use (KVWS_DEPS_PREFIX); it becomes `{<depsPrefix>}`. */
  depsPrefix?: string;
  /** Count what would move, change nothing. */
  dryRun?: boolean;
  /** Keys per SCAN step; default 1000. */
  batchSize?: number;
  connectTimeoutMs?: number;
}

export interface MigrateLayoutReport {
  /** Prefixes (collection of a workspace, or an unscoped collection) found in the old layout. */
  prefixes: number;
  /** Keys renamed (or, in a dry run, that would be). */
  moved: number;
  /** Old keys left in place because their new name already held a key. */
  conflicts: string[];
  /** The index rebuild that followed (empty in a dry run). */
  rebuilt: RebuildReport[];
}

// KEYS = old1, new1, old2, new2, …; returns { moved, conflicting old keys }.
const MOVE_SOURCE = `
local moved = 0
local conflicts = {}
for i = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('RENAMENX', KEYS[i], KEYS[i + 1]) == 1 then
      moved = moved + 1
    else
      conflicts[#conflicts + 1] = KEYS[i]
    end
  end
end
return {moved, conflicts}
`;
const MOVE: Script = { source: MOVE_SOURCE, sha: createHash("sha1").update(MOVE_SOURCE).digest("hex") };

const COLLECTION_HEAD = /^([a-z][a-z0-9_-]*)([#:].*)$/;

/** Where a key of the old layout goes: [its prefix, its new name], or undefined when it is not one. */
export function taggedKey(
  key: string,
  root: string,
  collections: ReadonlySet<string>,
  depsPrefix?: string,
): [prefix: string, key: string] | undefined {
  if (depsPrefix !== undefined && (key.startsWith(`${depsPrefix}:`) || key.startsWith(`${depsPrefix}#`))) {
    return [depsPrefix, `{${depsPrefix}}${key.slice(depsPrefix.length)}`];
  }
  // The lifecycle registries (lib/lifecycle/registry.ts) move into one tag each, like a prefix.
  for (const [old, tagged] of [
    [`${root}#workspaces`, `{${root}#workspaces}`],
    [`${root}${SEPARATOR}#collections`, `{${root}#collections}`],
  ] as const) {
    if (key.startsWith(`${old}${SEPARATOR}`) || key.startsWith(`${old}#`))
      return [old, `${tagged}${key.slice(old.length)}`];
  }
  if (!key.startsWith(`${root}${SEPARATOR}`)) return undefined;
  const wsBase = `${root}${SEPARATOR}${WORKSPACE_SEGMENT}${SEPARATOR}`;
  if (key.startsWith(wsBase)) {
    const after = key.slice(wsBase.length);
    const cut = after.indexOf(SEPARATOR);
    if (cut <= 0) return undefined;
    const id = after.slice(0, cut);
    try {
      validateWorkspaceId(id); // "{id}" (already tagged) fails here
    } catch {
      return undefined;
    }
    const rest = after.slice(cut + 1);
    const collection = COLLECTION_HEAD.exec(rest)?.[1] ?? rest;
    return [`${wsBase}${id}${SEPARATOR}${collection}`, `${wsBase}{${id}}${SEPARATOR}${rest}`];
  }
  const match = COLLECTION_HEAD.exec(key.slice(root.length + SEPARATOR.length));
  if (!match || !collections.has(match[1] as string)) return undefined;
  return [`${root}${SEPARATOR}${match[1]}`, `${root}${SEPARATOR}{${match[1]}}${match[2]}`];
}

async function* scan(client: RedisCommander, pattern: string, count: number): AsyncGenerator<string[]> {
  let cursor = "0";
  do {
    const [next, keys] = (await client.sendCommand(["SCAN", cursor, "MATCH", pattern, "COUNT", String(count)])) as [
      string,
      string[],
    ];
    yield keys.map(String);
    cursor = String(next);
  } while (cursor !== "0");
}

const globEscape = (text: string) => text.replace(/[*?[\]\\]/g, "\\$&");

/**
 * Re-keys every key of `root` (and of a custom deps prefix) on the standalone Redis at `url`
 * into the hash-tag layout, one prefix per atomic step, then rebuilds the indexes. Meant to run
 * once, with the application stopped (or pointed at the new layout already). Refuses a cluster
 * node: cross-slot renames are impossible there — migrate first, then import.
 */
export async function migrateLayout(url: string, options: MigrateLayoutOptions): Promise<MigrateLayoutReport> {
  const root = validateRoot(options.root);
  const depsPrefix = options.depsPrefix === undefined ? undefined : validateDepsPrefix(options.depsPrefix);
  const collections = new Set([...COLLECTIONS, ...(options.collections ?? []).map(validateCollection)]);
  const batch = options.batchSize ?? 1000;
  if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) {
    throw new InvalidArgumentError(`batchSize must be an integer from 1 to 10000, got ${batch}`);
  }
  const timeouts = options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs };
  // Loaded here, not at import: lib/index.ts exports this for every app, most never call it.
  const { connectRedis } = await import("./open.js");
  const connection = await connectRedis(url, timeouts);
  const report: MigrateLayoutReport = { prefixes: 0, moved: 0, conflicts: [], rebuilt: [] };
  try {
    const client = connection.commander;
    if (/cluster_enabled:1/.test(String(await client.sendCommand(["INFO", "cluster"])))) {
      throw new InvalidArgumentError(
        `${redact(url)} is a cluster node: migrate the layout on the standalone Redis first, then move it with redis-cli --cluster import`,
      );
    }
    // Grouped first, moved after: a prefix's keys come from many SCAN steps, and renamed keys
    // must not be seen (and counted) again by the same walk.
    const groups = new Map<string, [string, string][]>();
    const patterns = [`${globEscape(root)}${SEPARATOR}*`, `${globEscape(root)}#workspaces*`];
    if (depsPrefix !== undefined && !depsPrefix.startsWith(`${root}${SEPARATOR}`))
      patterns.push(`${globEscape(depsPrefix)}*`);
    for (const pattern of patterns) {
      for await (const keys of scan(client, pattern, batch)) {
        for (const key of keys) {
          const target = taggedKey(key, root, collections, depsPrefix);
          if (!target) continue;
          let group = groups.get(target[0]);
          if (!group) groups.set(target[0], (group = []));
          if (!group.some(([old]) => old === key)) group.push([key, target[1]]);
        }
      }
    }
    report.prefixes = groups.size;
    for (const pairs of groups.values()) {
      if (options.dryRun) {
        report.moved += pairs.length;
        continue;
      }
      const [moved, conflicts] = (await runScript(client, MOVE, pairs.flat(), [])) as [number, string[]];
      report.moved += Number(moved);
      report.conflicts.push(...conflicts.map(String));
    }
    if (!options.dryRun) {
      report.rebuilt = await rebuildIndexes(client, {
        root,
        allWorkspaces: true,
        collections: [...collections],
      });
    }
    return report;
  } finally {
    await connection.close();
  }
}
