import type { PrefixStore } from "../backends/driver.js";
import type { ListOptions } from "./list.js";

export type { ListOptions } from "./list.js";

/** What a collection is built from: the store bound to its prefix. */
export interface CollectionContext {
  readonly store: PrefixStore;
}

export interface ArtifactInfo {
  name: string;
  description: string;
  /** Size in bytes of the stored payload (UTF-8 JSON text, or the raw bytes). */
  size: number;
  kind: "json" | "bytes";
  createdAt: string;
  updatedAt: string;
  metadata: Record<string, unknown>;
  /** Opaque; changes on every write of this artifact, the same in every process (see ifVersion). */
  version: string;
}

export interface SaveOptions {
  description?: string;
  metadata?: Record<string, unknown>;
  /** Time to live in ms (a positive integer): afterwards load, info, has and list no longer see it. */
  ttl?: number;
}

/** One artifact of artifacts.saveMany. */
export interface SaveItem extends SaveOptions {
  name: string;
  data: unknown;
}

export interface ArtifactStore {
  /**
   * With `ifVersion`, writes only if the artifact's version is that one (null: only if it does not
   * exist), atomically across processes; otherwise throws ConflictError and writes nothing.
   */
  save(name: string, data: unknown, options?: SaveOptions & { ifVersion?: string | null }): Promise<ArtifactInfo>;
  /**
   * Many artifacts in one write, all or nothing: every item is checked before anything is read or
   * written, and a name may come only once.
   */
  saveMany(items: readonly SaveItem[]): Promise<ArtifactInfo[]>;
  load(name: string): Promise<unknown>;
  /** The payloads in the order of `names`, undefined where missing. */
  loadMany(names: readonly string[]): Promise<unknown[]>;
  info(name: string): Promise<ArtifactInfo | undefined>;
  /**
   * Sorted by name (code point order). With options: names starting with `prefix`, strictly after
   * `after`, at most `limit`; paging with after = the last name of the previous page visits every
   * artifact once.
   */
  list(options?: ListOptions): Promise<ArtifactInfo[]>;
  has(name: string): Promise<boolean>;
  /** With `ifVersion`, deletes only if that is the artifact's version (else ConflictError). */
  delete(name: string, options?: { ifVersion?: string }): Promise<boolean>;
}

export interface Workflow {
  name: string;
  source: string;
  description: string;
  metadata: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  /** Opaque; changes on every add of this workflow, the same in every process (see ifVersion). */
  version: string;
}

export interface WorkflowStore {
  /** With `ifVersion`, as ArtifactStore.save: written only if that is the current version (null: absent). */
  add(
    workflow: {
      name: string;
      source: string;
      description: string;
      metadata?: Record<string, unknown>;
    },
    options?: { ifVersion?: string | null },
  ): Promise<Workflow>;
  get(name: string): Promise<Workflow | undefined>;
  /** Sorted by name; options as ArtifactStore.list. */
  list(options?: ListOptions): Promise<Workflow[]>;
  delete(name: string): Promise<boolean>;
  /** Best matches by description; with `filter`, only workflows whose metadata matches it. */
  search(
    query: string,
    options?: { limit?: number; filter?: MetadataFilter },
  ): Promise<Array<Workflow & { score: number }>>;
}

/**
 * A search filter over a row's top-level metadata fields, all of which must match (AND): per field a
 * bare value (deep equality) or an object of operators. Semantics in docs/vectors.md.
 */
export type MetadataFilter = Record<
  string,
  | unknown
  | {
      $eq?: unknown;
      $ne?: unknown;
      $gt?: number | string;
      $gte?: number | string;
      $lt?: number | string;
      $lte?: number | string;
      $in?: unknown[];
      $nin?: unknown[];
    }
>;

export interface VectorMatch {
  id: string;
  score: number;
  metadata: Record<string, unknown>;
}

export interface VectorRow {
  id: string;
  vector: ArrayLike<number>;
  metadata?: Record<string, unknown>;
}

export interface VectorStore {
  upsert(id: string, vector: ArrayLike<number>, metadata?: Record<string, unknown>): Promise<void>;
  /**
   * Many rows in one write (one round trip on Redis and SQL), all or nothing: every row is
   * validated, and all must share one dimension, before anything is written.
   */
  upsertMany(rows: ReadonlyArray<VectorRow>): Promise<void>;
  get(id: string): Promise<{ vector: Float32Array; metadata: Record<string, unknown> } | undefined>;
  delete(id: string): Promise<boolean>;
  count(): Promise<number>;
  /** The k best by cosine; with `filter`, the k best of the vectors whose metadata matches it. */
  search(query: ArrayLike<number>, options?: { k?: number; filter?: MetadataFilter }): Promise<VectorMatch[]>;
  /** Every id, sorted; options as ArtifactStore.list (a page of ids). */
  ids(options?: ListOptions): Promise<string[]>;
}

export interface DepsStore {
  add(spec: string): Promise<void>;
  remove(nameOrSpec: string): Promise<boolean>;
  list(): Promise<string[]>;
  has(nameOrSpec: string): Promise<boolean>;
}

/** Turns text into a vector for workflow search. The default is a deterministic feature-hashing embedder. */
export interface Embedder {
  readonly dimensions: number;
  embed(text: string): Promise<ArrayLike<number>> | ArrayLike<number>;
}

export interface VectorOptions {
  /** "int8": scan quantised rows, then re-rank the best candidates exactly in float32. */
  quantization?: "none" | "int8";
  /**
   * How many vector collections (one per workspace, plus each workspace's workflow index) a
   * storage keeps decoded in memory between searches, least recently used evicted first; default 64.
   */
  maxCachedWorkspaces?: number;
  /** Bytes of decoded vectors a storage keeps in memory between searches; default 1 GiB (2^30). */
  maxCacheBytes?: number;
}
