/**
 * `kvws rebuild-index`: the operator's repair for Redis data written outside the library (older
 * versions, raw Keyv, redis-cli). It walks the root with SCAN once (lib/backends/redis/rebuild.ts),
 * indexes what it finds, and registers every workspace and collection that holds data, so
 * listWorkspaces(), stats(), exports and drops see them. Memory and file stores list exactly and
 * keep no separate index, so there is nothing to rebuild there.
 */
import { openBackend, redact, schemeOf } from "../backends/index.js";
import { type RebuildReport, rebuildIndex, rebuildIndexes } from "../backends/redis/rebuild.js";
import { sentinelMasterUrl } from "../backends/redis/sentinel-query.js";
import { isSentinelUrl } from "../backends/redis/sentinel-url.js";
import { UnsupportedStoreError } from "../errors.js";
import { COLLECTIONS, SEPARATOR, validateCollection, WORKSPACE_SEGMENT } from "../keys.js";
import { collectionsPrefix, workspacesPrefix } from "../lifecycle/registry.js";
import type { WorkspaceStorage } from "../storage.js";
import type { Io, Values } from "./command.js";

const SEGMENT = /^([a-z][a-z0-9_-]*)(?:#vectors)?$/;

/** Which registries a rebuilt prefix with data belongs in: [workspace id or undefined, collection]. */
function owner(root: string, prefix: string): [string | undefined, string] | undefined {
  const ws = `${root}${SEPARATOR}${WORKSPACE_SEGMENT}${SEPARATOR}`;
  if (prefix.startsWith(ws)) {
    const [segment, collection, ...rest] = prefix.slice(ws.length).split(SEPARATOR);
    // A cluster's hash-tag layout keeps the id in braces: `<root>:ws:{<id>}:<collection>`.
    const id = segment?.startsWith("{") && segment.endsWith("}") ? segment.slice(1, -1) : segment;
    const match = SEGMENT.exec(collection ?? "");
    return id && match && rest.length === 0 ? [id, match[1] as string] : undefined;
  }
  if (!prefix.startsWith(`${root}${SEPARATOR}`)) return undefined;
  const match = SEGMENT.exec(prefix.slice(root.length + 1));
  return match ? [undefined, match[1] as string] : undefined;
}

export async function rebuild(
  storage: WorkspaceStorage,
  id: string | undefined,
  values: Values,
  io: Io,
): Promise<void> {
  // Behind Sentinel the repair runs on the master the Sentinels name now.
  const url = isSentinelUrl(io.url) ? await sentinelMasterUrl(io.url) : io.url;
  const scheme = schemeOf(url);
  if (scheme !== "redis:" && scheme !== "rediss:") {
    throw new UnsupportedStoreError(
      `rebuild-index repairs Redis indexes; ${scheme ?? "this"} stores list their keys exactly and keep no index to rebuild`,
    );
  }
  const { root } = storage.keyspace;
  const extra = typeof values.collections === "string" ? values.collections.split(",").filter(Boolean) : [];
  // Collections already registered are looked for too: custom ones the caller need not name.
  const scopes = id !== undefined ? [storage.withWorkspace(id)] : [storage];
  if (values.all) for (const other of await storage.listWorkspaces()) scopes.push(storage.withWorkspace(other));
  const known = new Set<string>([...COLLECTIONS, ...extra.map((c) => validateCollection(c))]);
  for (const scope of scopes) for (const collection of Object.keys(await scope.stats())) known.add(collection);

  const started = Date.now();
  const reports: RebuildReport[] = [];
  const prefixes = Array.isArray(values.prefix) ? values.prefix : [];
  const options = { layout: io.redisLayout, ...(io.cluster ? { cluster: true } : {}) };
  for (const prefix of prefixes) reports.push(await rebuildIndex(url, prefix, options));
  if (prefixes.length === 0 || id !== undefined || values.all) {
    reports.push(
      ...(await rebuildIndexes(
        url,
        {
          root,
          workspaceId: id,
          allWorkspaces: values.all === true,
          collections: [...known],
          ...(io.cluster ? { hashTags: true } : {}),
        },
        options,
      )),
    );
  }

  const backend = await openBackend(url, { cluster: io.cluster, redisLayout: io.redisLayout });
  try {
    for (const report of reports) {
      const found = owner(root, report.prefix);
      if (!found || report.scanned === 0) continue;
      const [workspaceId, collection] = found;
      const ks = storage.keyspace.withWorkspace(workspaceId);
      if (workspaceId !== undefined && !ks.isScoped(collection)) continue;
      await backend.driver.scope(collectionsPrefix(ks)).set(collection, "1");
      if (workspaceId !== undefined)
        await backend.driver.scope(workspacesPrefix(storage.keyspace)).set(workspaceId, "1");
    }
  } finally {
    await backend.close();
  }
  for (const { prefix, scanned, added, removed, moved } of reports) {
    io.stdout.write(
      `${prefix}: ${scanned} keys scanned, ${added} index entries added or fixed, ${removed} removed${moved === undefined ? "" : `, ${moved} moved into the hash`}\n`,
    );
  }
  io.stderr.write(`${reports.length} prefixes rebuilt on ${redact(url)} in ${Date.now() - started} ms\n`);
}
