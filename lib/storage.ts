/**
 * Composition: config → backend adapter → scoped adapters → collections.
 */
import type { Keyv } from "keyv";
import type { AnyStore, Backend } from "./backends/driver.js";
import { openBackend } from "./backends/index.js";
import type {
  ArtifactStore,
  DepsStore,
  Embedder,
  VectorOptions,
  VectorStore,
  WorkflowStore,
} from "./collections/types.js";
import { parseConfig, type StorageConfig } from "./config.js";
import { InvalidConfigError } from "./errors.js";
import { type Keyspace, type KeyspaceOptions, keyspace as makeKeyspace } from "./keys.js";
import type { DropOptions } from "./lifecycle/drop.js";
import type { MigrateOptions } from "./lifecycle/migrate.js";
import { hostWorkspaces, type LifecycleHost, registrarFor } from "./lifecycle/registry.js";
import type { WorkspaceStats } from "./lifecycle/stats.js";
import type { ExportRecord, ImportOptions } from "./lifecycle/transfer.js";
import type { Quota, QuotaUsage } from "./quota.js";
import { driverFor } from "./scope.js";
import { Lru, ScopeState, type Shared, scopeOf, VIEW_LIMIT } from "./views.js";
import { type ChangeEvent, type WatchOptions, watchScope } from "./watch.js";

export interface StorageOptions {
  /** Turns workflow descriptions and queries into vectors; default: hashingEmbedder(). */
  embedder?: Embedder;
  /** Vector search options for the `vectors` collection and the workflow index. */
  vectors?: VectorOptions;
  /** Bound on connecting to a server backend; default 5000 ms. */
  connectTimeoutMs?: number;
  /** Bound on waiting for one reply from a server backend; default twice connectTimeoutMs. */
  commandTimeoutMs?: number;
  /** durability "replicated": how long a write waits for a replica; default 1000 ms, at most half commandTimeoutMs. */
  replicationTimeoutMs?: number;
}

export interface WorkspaceStorage {
  readonly keyspace: Keyspace;
  readonly workspaceId: string | undefined;
  /** A Keyv whose key k is stored at exactly keyspace.key(name, k), with no "keyv:" namespace in between. */
  collection<T = unknown>(name: string): Keyv<T>;
  readonly artifacts: ArtifactStore;
  readonly workflows: WorkflowStore;
  readonly vectors: VectorStore;
  readonly deps: DepsStore;
  /**
   * Same backend and connection, another scope; cheap enough per request. Views of one workspace
   * share its collections and stores (kept for the VIEW_LIMIT most recently used workspaces).
   */
  withWorkspace(workspaceId: string | null | undefined): WorkspaceStorage;
  /** Plain JSON: openStorage(it) elsewhere rebuilds the same scope. */
  toBootstrapConfig(): StorageConfig;
  /** The opened storage releases the backend and its views then refuse; a view's close() ends its watch() iterators. */
  close(): Promise<void>;
  /** Ids under this root that hold data, sorted, from the registry writes keep (never a SCAN). */
  listWorkspaces(): Promise<string[]>;
  /** Entries and bytes per collection of this scope that holds data. */
  stats(): Promise<WorkspaceStats>;
  /** Deletes every key of this workspace, data and bookkeeping; returns the data entries deleted. */
  dropWorkspace(options?: DropOptions): Promise<number>;
  /** One record per entry of this workspace, streamed. */
  exportWorkspace(): AsyncIterable<ExportRecord>;
  /** Writes the records into this workspace (merging, or after a drop with `replace`); returns entries written. */
  importWorkspace(
    records: AsyncIterable<ExportRecord> | Iterable<ExportRecord>,
    options?: ImportOptions,
  ): Promise<number>;
  /** Operator, on an unscoped storage: sets the quota of workspace `workspaceId` (null removes it). */
  setQuota(workspaceId: string, quota: Quota | null): Promise<void>;
  /** On a workspace storage: its quota (null: none) and what it holds now, counted as stats() counts. */
  quota(): Promise<QuotaUsage>;
  /** On an unscoped storage: moves the legacy data of every scoped collection into workspace `to`. */
  migrateLegacy(options: MigrateOptions): Promise<{ entries: number }>;
  /**
   * Every change any storage or process makes to this scope from now on, in order per name, until
   * `signal` aborts or the storage closes; `{ op: "reset" }` where changes may have been missed.
   */
  watch(options?: WatchOptions): AsyncIterableIterator<ChangeEvent>;
}

/**
 * A view: one scope of an opened backend. Views are cheap; what they serve (collections, stores)
 * belongs to the scope and is shared by every view of it (views.ts).
 */
class Storage implements WorkspaceStorage {
  readonly keyspace: Keyspace;
  readonly #shared: Shared;
  readonly #state: ScopeState;
  readonly #isOwner: boolean;

  constructor(shared: Shared, state: ScopeState, isOwner: boolean) {
    this.#shared = shared;
    this.#state = state;
    this.keyspace = state.keyspace;
    this.#isOwner = isOwner;
  }

  get workspaceId(): string | undefined {
    return this.keyspace.workspaceId;
  }

  #open(): void {
    const error = this.#state.closedCheck();
    if (error) throw error;
  }

  #host(): LifecycleHost {
    this.#open();
    const state = this.#state;
    return {
      keyspace: this.keyspace,
      registrar: this.#shared.registrar,
      store: (prefix, collection) => state.context(prefix, collection).store,
      plain: (prefix) => state.plain(prefix),
      withWorkspace: (id) => (this.withWorkspace(id) as Storage).#host(),
    };
  }

  collection<T = unknown>(name: string): Keyv<T> {
    return this.#state.collection<T>(name);
  }

  get artifacts(): ArtifactStore {
    return this.#state.artifacts;
  }

  get vectors(): VectorStore {
    return this.#state.vectors;
  }

  get workflows(): WorkflowStore {
    return this.#state.workflows;
  }

  get deps(): DepsStore {
    return this.#state.deps;
  }

  withWorkspace(workspaceId: string | null | undefined): WorkspaceStorage {
    this.#open();
    const state = scopeOf(this.#shared, workspaceId, () => this.keyspace.withWorkspace(workspaceId));
    return new Storage(this.#shared, state, false);
  }

  toBootstrapConfig(): StorageConfig {
    const { url } = this.#shared.backend;
    if (!url) {
      throw new InvalidConfigError(
        "url",
        "this storage was created from a store without a url; pass { url } to createStorage() to get a bootstrap config",
      );
    }
    const { root, workspaceId, unscoped, depsPrefix, hashTags } = this.keyspace;
    return {
      url,
      root,
      workspaceId: workspaceId ?? null,
      unscoped: [...unscoped],
      ...(depsPrefix === undefined ? {} : { depsPrefix }),
      ...(this.#shared.backend.cluster ? { cluster: true } : {}),
      ...(hashTags ? { hashTags: true } : {}),
      ...(this.#shared.backend.redisLayout ? { redisLayout: "hash" as const } : {}),
      ...(this.#shared.backend.durability ? { durability: "replicated" as const } : {}),
    };
  }

  async listWorkspaces(): Promise<string[]> {
    return hostWorkspaces(this.#host());
  }

  async stats(): Promise<WorkspaceStats> {
    // Lifecycle code loads on first use: most processes never export, drop or migrate.
    return (await import("./lifecycle/stats.js")).scopeStats(this.#host());
  }

  async dropWorkspace(options?: DropOptions): Promise<number> {
    return (await import("./lifecycle/drop.js")).dropWorkspace(this.#host(), options);
  }

  async *exportWorkspace(): AsyncGenerator<ExportRecord> {
    // A generator, so a closed storage rejects on the first next() rather than throwing here.
    yield* (await import("./lifecycle/transfer.js")).exportWorkspace(this.#host());
  }

  async importWorkspace(
    records: AsyncIterable<ExportRecord> | Iterable<ExportRecord>,
    options?: ImportOptions,
  ): Promise<number> {
    return (await import("./lifecycle/transfer.js")).importWorkspace(this.#host(), records, options);
  }

  async setQuota(workspaceId: string, quota: Quota | null): Promise<void> {
    return (await import("./lifecycle/quota.js")).setQuota(
      this.#host(),
      this.#shared.backend.driver,
      workspaceId,
      quota,
    );
  }

  async quota(): Promise<QuotaUsage> {
    return (await import("./lifecycle/quota.js")).readQuota(this.#host(), this.#shared.backend.driver);
  }

  async migrateLegacy(options: MigrateOptions): Promise<{ entries: number }> {
    return (await import("./lifecycle/migrate.js")).migrateLegacy(this.#host(), options);
  }

  watch(options?: WatchOptions): AsyncIterableIterator<ChangeEvent> {
    this.#open();
    const { watchers } = this.#shared;
    return watchScope(this.#shared.backend.driver, this.keyspace, options, (end) => {
      watchers.set(end, this);
      return () => watchers.delete(end);
    });
  }

  /**
   * The owner releases the backend (when it opened it) and every view then refuses. A view owns
   * nothing but its watch() iterators: its close() ends those, and the view stays usable.
   */
  async close(): Promise<void> {
    for (const [end, owner] of [...this.#shared.watchers]) if (owner === this || this.#isOwner) end();
    if (!this.#isOwner || this.#shared.closed) return;
    this.#shared.closed = true;
    if (this.#shared.owned) await this.#shared.backend.close();
  }
}

function ownerOf(backend: Backend, owned: boolean, options: StorageOptions, ks: Keyspace): Storage {
  const shared: Shared = {
    backend,
    owned,
    options,
    registrar: registrarFor(backend.driver),
    closed: false,
    watchers: new Map(),
    scopes: new Lru(VIEW_LIMIT),
  };
  return new Storage(shared, new ScopeState(shared, ks), true);
}

/** Wrap a store the app already has. close() never disconnects it. */
export function createStorage(
  store: AnyStore,
  options: KeyspaceOptions & StorageOptions & { url?: string },
): WorkspaceStorage {
  const ks = makeKeyspace(options);
  const backend: Backend = { store, driver: driverFor(store), url: options.url ?? "", close: async () => {} };
  return ownerOf(backend, false, options, ks);
}

/** Open the backend a config names, scoped as it says. */
export async function openStorage(config: StorageConfig, options: StorageOptions = {}): Promise<WorkspaceStorage> {
  const parsed = parseConfig(config);
  const ks = makeKeyspace(parsed);
  const backend = await openBackend(parsed.url, {
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    ...(options.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: options.commandTimeoutMs }),
    ...(parsed.cluster ? { cluster: true } : {}),
    ...(parsed.redisLayout === undefined ? {} : { redisLayout: parsed.redisLayout }),
    ...(parsed.durability === undefined ? {} : { durability: parsed.durability }),
    ...(options.replicationTimeoutMs === undefined ? {} : { replicationTimeoutMs: options.replicationTimeoutMs }),
  });
  return ownerOf(backend, true, options, ks);
}
