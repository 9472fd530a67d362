/**
 * The operator's path for data the index has never seen: keys written before the index
 * existed (older versions, plain Keyv over @keyv/redis), or an index lost to a partial
 * restore. Normal operation never needs it: every write through the driver keeps the index.
 *
 * It walks the keyspace with SCAN (never KEYS), so it is O(keys in the database) and meant
 * to be run once, not per request. Running it while the application writes is safe: each
 * batch is one atomic script that checks the key as it is at that moment.
 */
import KeyvRedis from "@keyv/redis";
import { createClient } from "@redis/client";
import { ConnectionError, InvalidArgumentError } from "../errors.js";
import {
  COLLECTIONS,
  SEPARATOR,
  validateCollection,
  validatePrefix,
  validateRoot,
  validateWorkspaceId,
  WORKSPACE_SEGMENT,
} from "../keys.js";
import { bookkeeping, DEFAULT_LOG_LIMIT, type RedisCommander, runScript, scanSortedSet } from "./redis.js";
import { REBUILD_ADD, REBUILD_PRUNE } from "./redis-scripts.js";

/** A Redis URL, a connected node-redis client, or a @keyv/redis adapter. */
export type RedisTarget = string | RedisCommander | KeyvRedis<unknown>;

export interface RebuildOptions {
  /** Keys per SCAN step and per script call; default 500. */
  batchSize?: number;
  /** Must match the driver's logLimit (default 1000). */
  logLimit?: number;
  /** Bound on connecting when `target` is a URL; default 5000 ms. */
  connectTimeoutMs?: number;
}

export interface RebuildScope {
  root: string;
  /** Rebuild this workspace's collections; omitted = the root's unscoped collections. */
  workspaceId?: string | null | undefined;
  /** Every workspace of the root, and its unscoped collections. */
  allWorkspaces?: boolean | undefined;
  /**
   * Collections to look for, besides those that already have an index; default: the built-in
   * ones. Listing them keeps a sibling root (`app:v2:…` next to root `app`) from being taken
   * for a collection of `app`.
   */
  collections?: readonly string[] | undefined;
}

export interface RebuildReport {
  prefix: string;
  /** String keys found under `<prefix>:`. */
  scanned: number;
  /** Index members added, or re-scored to the key's actual expiry. */
  added: number;
  /** Index members removed because their value is gone. */
  removed: number;
}

/** Rebuild the index of exactly one prefix. */
export async function rebuildIndex(
  target: RedisTarget,
  prefix: string,
  options: RebuildOptions = {},
): Promise<RebuildReport> {
  validatePrefix(prefix);
  return withClient(target, options, (client) => rebuildPrefix(client, prefix, settings(options)));
}

/** Find every collection prefix of a root (one workspace, unscoped, or all) and rebuild each. */
export async function rebuildIndexes(
  target: RedisTarget,
  scope: RebuildScope,
  options: RebuildOptions = {},
): Promise<RebuildReport[]> {
  const root = validateRoot(scope.root);
  const workspaceId = scope.workspaceId == null ? undefined : validateWorkspaceId(scope.workspaceId);
  if (workspaceId !== undefined && scope.allWorkspaces) {
    throw new InvalidArgumentError("give either a workspace id or allWorkspaces, not both");
  }
  const collections = new Set((scope.collections ?? COLLECTIONS).map(validateCollection));
  const config = settings(options);
  return withClient(target, options, async (client) => {
    const prefixes = await discover(client, root, workspaceId, scope.allWorkspaces === true, collections, config);
    const reports: RebuildReport[] = [];
    for (const prefix of prefixes) reports.push(await rebuildPrefix(client, prefix, config));
    return reports;
  });
}

interface Settings {
  batch: number;
  cap: string;
}

function settings(options: RebuildOptions): Settings {
  const batch = options.batchSize ?? 500;
  if (!Number.isInteger(batch) || batch < 1 || batch > 5000) {
    throw new InvalidArgumentError(`batchSize must be an integer from 1 to 5000, got ${batch}`);
  }
  return { batch, cap: String(Math.max(1, Math.floor(options.logLimit ?? DEFAULT_LOG_LIMIT))) };
}

export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

async function* scan(client: RedisCommander, pattern: string, count: number, type?: string): AsyncGenerator<string[]> {
  let cursor = "0";
  do {
    const args = ["SCAN", cursor, "MATCH", pattern, "COUNT", String(count)];
    if (type) args.push("TYPE", type);
    const [next, keys] = (await client.sendCommand(args)) as [string, string[]];
    if (keys.length > 0) yield keys.map(String);
    cursor = String(next);
  } while (cursor !== "0");
}

async function rebuildPrefix(client: RedisCommander, prefix: string, { batch, cap }: Settings): Promise<RebuildReport> {
  const report: RebuildReport = { prefix, scanned: 0, added: 0, removed: 0 };
  const meta = bookkeeping(prefix);
  const start = prefix.length + SEPARATOR.length;
  // `<prefix>:*` never matches the prefix's own `<prefix>#…` keys; TYPE skips hashes, sets, …
  for await (const keys of scan(client, `${globEscape(prefix)}${SEPARATOR}*`, batch, "string")) {
    report.scanned += keys.length;
    const names = keys.map((key) => key.slice(start));
    report.added += Number(await runScript(client, REBUILD_ADD, [...meta, ...keys], [cap, ...names]));
  }
  let names: string[] = [];
  const prune = async () => {
    const keys = names.map((name) => `${prefix}${SEPARATOR}${name}`);
    report.removed += Number(await runScript(client, REBUILD_PRUNE, [...meta, ...keys], [cap, ...names]));
    names = [];
  };
  for await (const [name] of scanSortedSet(client, meta[0])) {
    names.push(name);
    if (names.length >= batch) await prune();
  }
  if (names.length > 0) await prune();
  return report;
}

const INDEX_SUFFIX = "#index";
// A collection, optionally with the vector index the library keeps beside it (metaKey "vectors").
const SEGMENT = /^([a-z][a-z0-9_-]*)(#vectors)?$/;

/**
 * Collection prefixes under a root, found from the keys themselves: data keys
 * `<base>:<collection>[#vectors]:<name>` of the wanted collections, and any prefix that has
 * an index already (so an index whose values are all gone is emptied too).
 */
async function discover(
  client: RedisCommander,
  root: string,
  workspaceId: string | undefined,
  allWorkspaces: boolean,
  collections: ReadonlySet<string>,
  { batch }: Settings,
): Promise<string[]> {
  const wsBase = `${root}${SEPARATOR}${WORKSPACE_SEGMENT}${SEPARATOR}`;
  const pattern = workspaceId === undefined ? `${globEscape(root)}:*` : `${globEscape(wsBase + workspaceId)}:*`;
  const found = new Set<string>();
  const consider = (key: string) => {
    let base = root;
    let rest = key.slice(root.length + 1);
    if (key.startsWith(wsBase)) {
      if (workspaceId === undefined && !allWorkspaces) return;
      const after = key.slice(wsBase.length);
      const cut = after.indexOf(SEPARATOR);
      if (cut <= 0) return;
      const id = after.slice(0, cut);
      try {
        validateWorkspaceId(id);
      } catch {
        return;
      }
      base = wsBase + id;
      rest = after.slice(cut + 1);
    }
    const cut = rest.indexOf(SEPARATOR);
    if (cut < 0) {
      // A key with no name part: only an index tells us of a prefix.
      if (!rest.endsWith(INDEX_SUFFIX)) return;
      const segment = rest.slice(0, -INDEX_SUFFIX.length);
      if (SEGMENT.test(segment)) found.add(`${base}${SEPARATOR}${segment}`);
      return;
    }
    const match = SEGMENT.exec(rest.slice(0, cut));
    if (match && collections.has(match[1] as string)) found.add(`${base}${SEPARATOR}${match[0]}`);
  };
  for await (const keys of scan(client, pattern, batch)) for (const key of keys) consider(key);
  return [...found].sort();
}

async function withClient<T>(
  target: RedisTarget,
  options: RebuildOptions,
  work: (client: RedisCommander) => Promise<T>,
): Promise<T> {
  if (typeof target !== "string") {
    const client =
      target instanceof KeyvRedis
        ? ((await target.getClient()) as unknown as RedisCommander)
        : (target as RedisCommander);
    return work(client);
  }
  const client = createClient({
    url: target,
    socket: { connectTimeout: options.connectTimeoutMs ?? 5000, reconnectStrategy: false },
  });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    throw new ConnectionError(`cannot connect to Redis: ${(error as Error).message}`, { cause: error });
  }
  try {
    return await work(client as unknown as RedisCommander);
  } finally {
    await client.quit().catch(() => {});
  }
}
