/**
 * A deliberately naive model of what a root should hold: plain Maps per workspace, and
 * the shared deps list. The property test drives the library and this model with the
 * same operations and demands they agree, and derives from it the exact set of keys
 * the store may contain.
 */
import { existsSync } from "node:fs";
import { openMemoryBackend } from "../../lib/backends/memory.js";
import { keyspace } from "../../lib/index.js";
import { rawRedis } from "./env.js";
import { diskEntries, diskKeys } from "./file-disk.js";
import { sqlRows } from "./sql.js";

/** Collections used through storage.collection(); "notes" is a prefix of the others on purpose. */
export const COLLECTIONS = ["notes", "notes2", "notes-x"] as const;
export type CollectionId = (typeof COLLECTIONS)[number];

export type ArtifactValue = { kind: "json"; value: unknown } | { kind: "bytes"; value: Uint8Array };

export interface WorkspaceModel {
  artifacts: Map<string, ArtifactValue>;
  collections: Map<CollectionId, Map<string, unknown>>;
  vectors: Map<string, number[]>;
  workflows: Map<string, { source: string; description: string }>;
}

/** The workspace id as a Map key: null (unscoped) becomes "". Valid ids are never empty. */
export const wsKey = (id: string | null): string => id ?? "";

export class Model {
  readonly workspaces = new Map<string, WorkspaceModel>();
  /** package name → spec; one list shared by every workspace of the root. */
  readonly deps = new Map<string, string>();

  constructor(readonly ids: readonly (string | null)[]) {
    for (const id of ids) {
      this.workspaces.set(wsKey(id), {
        artifacts: new Map(),
        collections: new Map(COLLECTIONS.map((c) => [c, new Map()])),
        vectors: new Map(),
        workflows: new Map(),
      });
    }
  }

  of(id: string | null): WorkspaceModel {
    const found = this.workspaces.get(wsKey(id));
    if (!found) throw new Error(`workspace ${id} is not in the model`);
    return found;
  }

  /**
   * Every data key the store must hold, and nothing else may hold data under the
   * prefixes we use. Bookkeeping keys (`<prefix>#…`) are checked separately.
   */
  expectedKeys(root: string): Set<string> {
    const out = new Set<string>();
    for (const id of this.ids) {
      const ks = keyspace({ root, workspaceId: id });
      const m = this.of(id);
      for (const name of m.artifacts.keys()) out.add(ks.key("artifacts", name));
      for (const [c, entries] of m.collections) for (const k of entries.keys()) out.add(ks.key(c, k));
      for (const id of m.vectors.keys()) out.add(ks.key("vectors", id));
      for (const name of m.workflows.keys()) out.add(ks.key("workflows", name));
    }
    const ks = keyspace({ root });
    for (const pkg of this.deps.keys()) out.add(ks.key("deps", pkg));
    return out;
  }

  /** Every prefix the workspaces of this model may write under (data at `p:`, bookkeeping at `p#`). */
  prefixes(root: string): Array<{ prefix: string; workspace: string | null; collection: string }> {
    const out: Array<{ prefix: string; workspace: string | null; collection: string }> = [];
    for (const id of this.ids) {
      const ks = keyspace({ root, workspaceId: id });
      for (const c of ["artifacts", "vectors", "workflows", ...COLLECTIONS]) {
        out.push({ prefix: ks.prefix(c), workspace: id, collection: c });
      }
    }
    out.push({ prefix: keyspace({ root }).prefix("deps"), workspace: null, collection: "deps" });
    return out;
  }

  /**
   * Problems with the raw keys of a root: a key outside every prefix of the model (a leak),
   * a data key the model does not have (a write that went to the wrong place or a delete
   * that did not happen), a missing key, or a workflow index entry of a deleted workflow.
   */
  rawKeyProblems(root: string, raw: readonly string[]): string[] {
    const problems: string[] = [];
    const expected = this.expectedKeys(root);
    const prefixes = this.prefixes(root);
    const registries = this.registryKeys(root);
    for (const key of raw) {
      if (expected.has(key) || registries.has(key)) continue;
      const owner = prefixes.find(({ prefix }) => key.startsWith(`${prefix}#`));
      if (!owner) {
        problems.push(`unexpected key ${JSON.stringify(key)}`);
        continue;
      }
      // The workflow search index keeps one entry per workflow beside the workflows.
      const index = `${owner.prefix}#vectors:`;
      if (owner.collection === "workflows" && key.startsWith(index)) {
        const name = key.slice(index.length);
        if (!this.of(owner.workspace).workflows.has(name)) {
          problems.push(`workflow index entry of a missing workflow: ${JSON.stringify(key)}`);
        }
      }
    }
    const present = new Set(raw);
    for (const key of expected) if (!present.has(key)) problems.push(`missing key ${JSON.stringify(key)}`);
    // The workspace registry never misses a workspace that holds data (lib/lifecycle/registry.ts).
    for (const id of this.ids) {
      if (id === null || !this.holdsData(id)) continue;
      const entry = `${root}#workspaces:${id}`;
      if (!present.has(entry)) problems.push(`workspace ${JSON.stringify(id)} holds data but is not registered`);
    }
    return problems;
  }

  holdsData(id: string | null): boolean {
    const m = this.of(id);
    return (
      m.artifacts.size + m.vectors.size + m.workflows.size > 0 ||
      [...m.collections.values()].some((entries) => entries.size > 0)
    );
  }

  /**
   * Keys the registries may hold: the root's workspace ids, each scope's collection names, and
   * their indexes on Redis. An emptied workspace may stay registered, so these may be present.
   */
  registryKeys(root: string): Set<string> {
    const out = new Set<string>([`${root}#workspaces#index`]);
    for (const id of this.ids) {
      const base = id === null ? root : `${root}:ws:${id}`;
      if (id !== null) out.add(`${root}#workspaces:${id}`);
      out.add(`${base}:#collections#index`);
      for (const c of ["artifacts", "vectors", "workflows", "deps", ...COLLECTIONS])
        out.add(`${base}:#collections:${c}`);
    }
    return out;
  }
}

const REGISTRY_INDEX = /(#workspaces\}?|:#collections|#collections\})#index$/;

/** Every key a backend holds for `root`, read around the library (raw client, raw file, raw Map). */
export async function rawKeys(backend: string, url: string, root: string): Promise<string[]> {
  if (backend === "redis" || backend === "redis-hash") {
    const client = await rawRedis();
    try {
      // Anywhere in the key, not only at its start: a key that gained a stray namespace
      // in front of the root ("keyv:<root>:…") is a leak too.
      const keys: string[] = [];
      const pattern = `*${root.replace(/[*?[\]\\]/g, "\\$&")}*`;
      for await (const batch of client.scanIterator({ MATCH: pattern, COUNT: 1000 })) keys.push(...batch);
      // A registry entry a data write carries is its index member alone (lib/backends/redis/driver.ts),
      // and the hash layout keeps `<prefix>:<name>` as field <name> of `<prefix>#data`: each is read
      // as the key `<prefix>:<name>` it stands for.
      const logical = new Set<string>();
      for (const key of keys) {
        if (REGISTRY_INDEX.test(key)) {
          logical.add(key);
          for (const member of await client.zRange(key, 0, -1))
            logical.add(`${key.slice(0, -"#index".length)}:${member}`);
        } else if (backend === "redis-hash" && key.endsWith("#data")) {
          for (const field of await client.hKeys(key)) logical.add(`${key.slice(0, -"#data".length)}:${field}`);
        } else logical.add(key);
      }
      return [...logical].sort();
    } finally {
      await client.quit();
    }
  }
  if (backend === "file") {
    const path = url.slice("file:".length);
    // The store creates its file on the first write; what it holds is the snapshot plus its log.
    if (!existsSync(path)) return [];
    return (await diskKeys(path)).sort();
  }
  if (backend === "memory") {
    return [...(openMemoryBackend(url).store as Map<string, unknown>).keys()].sort();
  }
  if (backend === "sqlite" || backend === "postgres") return (await sqlRows(backend, url, root)).map(([key]) => key);
  throw new Error(`no raw reader for backend ${backend}`);
}

/** Code-unit order, as the library sorts listings. */
export function sorted<T extends string>(values: Iterable<T>): T[] {
  return [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Every key of a root with its raw value, to prove an operation changed nothing at all. */
export async function rawDump(backend: string, url: string, root: string): Promise<Record<string, unknown>> {
  const keys = await rawKeys(backend, url, root);
  const out: Record<string, unknown> = {};
  if (backend === "redis") {
    const client = await rawRedis();
    try {
      // Concurrent commands share one pipeline.
      const values = await Promise.all(
        keys.map(async (key) => {
          const type = String(await client.sendCommand(["TYPE", key]));
          if (type === "string") return client.sendCommand(["GET", key]);
          if (type === "zset") return client.sendCommand(["ZRANGE", key, "0", "-1", "WITHSCORES"]);
          if (type === "hash") return client.sendCommand(["HGETALL", key]);
          if (type === "list") return client.sendCommand(["LRANGE", key, "0", "-1"]);
          if (type === "set") return client.sendCommand(["SORT", key, "ALPHA"]);
          return `<${type}>`;
        }),
      );
      keys.forEach((key, i) => {
        out[key] = values[i];
      });
    } finally {
      await client.quit();
    }
    return out;
  }
  if (backend === "file") {
    const path = url.slice("file:".length);
    if (!existsSync(path)) return out;
    for (const [key, value, expires] of await diskEntries(path)) out[key] = [value, expires];
    return out;
  }
  if (backend === "sqlite" || backend === "postgres") {
    for (const [key, value, expires] of await sqlRows(backend, url, root)) out[key] = [value, expires];
    return out;
  }
  const map = openMemoryBackend(url).store as Map<string, unknown>;
  for (const key of keys) out[key] = map.get(key);
  return out;
}
