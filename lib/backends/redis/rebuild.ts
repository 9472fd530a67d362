/**
 * The operator's path for data the index has never seen: keys written before the index
 * existed (older versions, plain Keyv over @keyv/redis), or an index lost to a partial
 * restore. Normal operation never needs it: every write through the driver keeps the index.
 *
 * It walks the keyspace with SCAN (never KEYS) once per call, grouping keys by prefix, so it
 * is O(keys under the root) and meant to be run once, not per request. Running it while the
 * application writes is safe: each batch is one atomic script (admin only, see
 * scripts.ts) that checks the key as it is at that moment.
 *
 * It migrates an index of the layout before 0.3 (members scored by expiry) to the current one
 * (members scored 0, expiries in `<prefix>#ttl`), so pages are range reads again.
 *
 * It also migrates 0.1.0's bookkeeping: the `<prefix>#version` counter is deleted, and so is
 * the log it numbered (0.1.0 ids were `<counter>-<i>`, not time-based; readers reload once).
 */
import { InvalidArgumentError } from "../../errors.js";
import {
  COLLECTIONS,
  metaKey,
  SEPARATOR,
  tracksChanges,
  validateCollection,
  validatePrefix,
  validateRoot,
  validateWorkspaceId,
  WORKSPACE_SEGMENT,
} from "../../keys.js";
import { LOG_LIMIT } from "../change-log.js";
import { adoptStrings } from "./adopt.js";
import { ServerClock } from "./common.js";
import { keepsStringLayout } from "./driver.js";
import { scanSortedSet } from "./list.js";
import { type RedisTarget, withClient } from "./rebuild-target.js";
import { REBUILD_ADD, REBUILD_PRUNE, runScript } from "./scripts.js";
import type { RedisCommander } from "./tx.js";

export interface RebuildOptions {
  /** Keys per SCAN step and per script call; default 500. */
  batchSize?: number;
  /** Must match the driver's logLimit (default LOG_LIMIT). */
  logLimit?: number;
  /** Bound on connecting when `target` is a URL; default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * `target` is a URL naming one node of a Redis Cluster: every master is walked (SCAN is per
   * node), each key's index is rebuilt through the cluster client (routed by the key's slot).
   */
  cluster?: boolean;
  /** The driver's layout: with "hash", keys found are then moved into their collection's hash. */
  layout?: "keys" | "hash" | undefined;
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
  /** The workspace's keys are in the hash-tag layout (`<root>:ws:{<id>}:…`); only matters with a workspaceId. */
  hashTags?: boolean | undefined;
}

export interface RebuildReport {
  prefix: string;
  /** String keys found under `<prefix>:`. */
  scanned: number;
  /** Names whose index member was added or fixed (score 0, #ttl member = the key's actual expiry; layout before 0.3 migrated). */
  added: number;
  /** Index members removed because their value is gone. */
  removed: number;
  /** With layout "hash": values moved from string keys into the prefix's hash (hash.ts). */
  moved?: number;
}

/** Rebuild the index of exactly one prefix. */
export async function rebuildIndex(
  target: RedisTarget,
  prefix: string,
  options: RebuildOptions = {},
): Promise<RebuildReport> {
  validatePrefix(prefix);
  const config = settings(options);
  return withClient(target, options, async (client, nodes) => {
    const rebuild = new Rebuild(client, config);
    rebuild.want(prefix);
    for await (const keys of scanAll(nodes, `${globEscape(prefix)}${SEPARATOR}*`, config.batch)) {
      for (const key of keys) await rebuild.add(prefix, key.slice(prefix.length + SEPARATOR.length));
    }
    return (await rebuild.finish())[0] as RebuildReport;
  });
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
  const tagged = scope.hashTags === true;
  return withClient(target, options, (client, nodes) =>
    discover(client, nodes, root, workspaceId, tagged, scope.allWorkspaces === true, collections, config),
  );
}

interface Settings {
  batch: number;
  cap: string;
  hash: boolean;
}

function settings(options: RebuildOptions): Settings {
  const batch = options.batchSize ?? 500;
  if (!Number.isInteger(batch) || batch < 1 || batch > 5000) {
    throw new InvalidArgumentError(`batchSize must be an integer from 1 to 5000, got ${batch}`);
  }
  return {
    batch,
    cap: String(Math.max(1, Math.floor(options.logLimit ?? LOG_LIMIT))),
    hash: options.layout === "hash",
  };
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

/** SCAN is per node: on a cluster every master is walked in turn. */
async function* scanAll(nodes: readonly RedisCommander[], pattern: string, count: number): AsyncGenerator<string[]> {
  for (const node of nodes) yield* scan(node, pattern, count);
}

/** The prefixes seen by one walk, each with its pending names, rebuilt batch by batch. */
class Rebuild {
  readonly #pending = new Map<string, string[]>();
  readonly #reports = new Map<string, RebuildReport>();
  readonly #clock = new ServerClock();

  constructor(
    readonly client: RedisCommander,
    readonly config: Settings,
  ) {}

  want(prefix: string): void {
    if (!this.#reports.has(prefix)) this.#reports.set(prefix, { prefix, scanned: 0, added: 0, removed: 0 });
  }

  async add(prefix: string, name: string): Promise<void> {
    this.want(prefix);
    let names = this.#pending.get(prefix);
    if (!names) this.#pending.set(prefix, (names = []));
    names.push(name);
    if (names.length >= this.config.batch) await this.#flush(prefix);
  }

  #meta(prefix: string): string[] {
    return [metaKey(prefix, "index"), metaKey(prefix, "log"), metaKey(prefix, "ttl")];
  }

  #cap(prefix: string): string {
    return tracksChanges(prefix) ? this.config.cap : "";
  }

  async #flush(prefix: string): Promise<void> {
    const names = this.#pending.get(prefix) ?? [];
    this.#pending.delete(prefix);
    if (names.length === 0) return;
    const keys = names.map((name) => `${prefix}${SEPARATOR}${name}`);
    const [added, strings] = (await runScript(
      this.client,
      REBUILD_ADD,
      [...this.#meta(prefix), ...keys],
      [this.#cap(prefix), ...names],
    )) as [number, number];
    const report = this.#reports.get(prefix) as RebuildReport;
    report.added += Number(added);
    report.scanned += Number(strings);
  }

  async #prune(prefix: string, hashed: boolean): Promise<void> {
    const report = this.#reports.get(prefix) as RebuildReport;
    const meta = this.#meta(prefix);
    let names: string[] = [];
    const prune = async () => {
      const keys = names.map((name) => `${prefix}${SEPARATOR}${name}`);
      report.removed += Number(
        await runScript(this.client, REBUILD_PRUNE, [...meta, ...keys], [this.#cap(prefix), ...names]),
      );
      names = [];
    };
    // The index, then #ttl: a #ttl member without an index member is stray (its key is checked too).
    // In the hash layout #ttl names fields, not keys: it is the sweep's (hash.ts), not ours.
    const sets = hashed ? [meta[0]] : [meta[0], meta[2]];
    for (const set of sets as string[]) {
      for await (const [name] of scanSortedSet(this.client, set)) {
        names.push(name);
        if (names.length >= this.config.batch) await prune();
      }
      if (names.length > 0) await prune();
    }
  }

  /** 0.1.0 bookkeeping: its counter goes, with the log it numbered; untracked prefixes keep no log at all. */
  async #migrate(prefix: string): Promise<void> {
    const legacy = metaKey(prefix, "version");
    const hadCounter = Number(await this.client.sendCommand(["EXISTS", legacy])) > 0;
    const stale = [legacy];
    if (hadCounter || !tracksChanges(prefix)) stale.push(metaKey(prefix, "log"));
    await this.client.sendCommand(["DEL", ...stale]);
  }

  async finish(): Promise<RebuildReport[]> {
    const prefixes = [...this.#reports.keys()].sort();
    for (const prefix of prefixes) {
      await this.#flush(prefix);
      // A prefix already in the hash layout is one whatever the caller said: its strays move in too.
      const hashed =
        !keepsStringLayout(prefix) &&
        (this.config.hash || Number(await this.client.sendCommand(["EXISTS", metaKey(prefix, "data")])) > 0);
      await this.#prune(prefix, hashed);
      await this.#migrate(prefix);
      if (hashed) {
        const report = this.#reports.get(prefix) as RebuildReport;
        report.moved = (await adoptStrings(this.client, prefix, this.#clock)).moved;
      }
    }
    return prefixes.map((prefix) => this.#reports.get(prefix) as RebuildReport);
  }
}

// A key with no name part names a prefix only if it is bookkeeping (0.1.0's included).
const META_SUFFIX = /#(data|index|ttl|version|log)$/;
// A collection, optionally with the vector index the library keeps beside it (metaKey "vectors"),
// in braces in the hash-tag layout's unscoped prefixes (`<root>:{deps}`).
const SEGMENT = /^(?:([a-z][a-z0-9_-]*)|\{([a-z][a-z0-9_-]*)\})(#vectors)?$/;
/** A workspace id segment, `{<id>}` in the hash-tag layout. */
const untag = (segment: string) => (segment.startsWith("{") && segment.endsWith("}") ? segment.slice(1, -1) : segment);

/**
 * Collection prefixes under a root, found from the keys themselves in one SCAN: data keys
 * `<base>:<collection>[#vectors]:<name>` of the wanted collections, and any prefix that has
 * bookkeeping already (so an index whose values are all gone is emptied too). Each prefix is
 * rebuilt from the same walk: its keys are handed over as they come.
 */
async function discover(
  client: RedisCommander,
  nodes: readonly RedisCommander[],
  root: string,
  workspaceId: string | undefined,
  hashTags: boolean,
  allWorkspaces: boolean,
  collections: ReadonlySet<string>,
  config: Settings,
): Promise<RebuildReport[]> {
  const { batch } = config;
  const rebuild = new Rebuild(client, config);
  const wsBase = `${root}${SEPARATOR}${WORKSPACE_SEGMENT}${SEPARATOR}`;
  const idSegment = hashTags ? `{${workspaceId}}` : workspaceId;
  const pattern = workspaceId === undefined ? `${globEscape(root)}:*` : `${globEscape(wsBase + idSegment)}:*`;
  const consider = async (key: string): Promise<void> => {
    let base = root;
    let rest = key.slice(root.length + 1);
    if (key.startsWith(wsBase)) {
      if (workspaceId === undefined && !allWorkspaces) return;
      const after = key.slice(wsBase.length);
      const cut = after.indexOf(SEPARATOR);
      if (cut <= 0) return;
      const id = after.slice(0, cut);
      try {
        validateWorkspaceId(untag(id));
      } catch {
        return;
      }
      base = wsBase + id;
      rest = after.slice(cut + 1);
    }
    const cut = rest.indexOf(SEPARATOR);
    if (cut < 0) {
      const suffix = META_SUFFIX.exec(rest);
      if (!suffix) return;
      const segment = rest.slice(0, -suffix[0].length);
      if (SEGMENT.test(segment)) rebuild.want(`${base}${SEPARATOR}${segment}`);
      return;
    }
    const match = SEGMENT.exec(rest.slice(0, cut));
    if (match && collections.has((match[1] ?? match[2]) as string))
      await rebuild.add(`${base}${SEPARATOR}${match[0]}`, rest.slice(cut + 1));
  };
  for await (const keys of scanAll(nodes, pattern, batch)) for (const key of keys) await consider(key);
  return rebuild.finish();
}

export type { RedisTarget } from "./rebuild-target.js";
