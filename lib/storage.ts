/**
 * Composition: config → backend adapter → scoped adapters → collections.
 */
import type { Keyv } from "keyv";
import type { AnyStore, Backend, PrefixStore } from "./backends/driver.js";
import { openBackend } from "./backends/index.js";
import { createArtifactStore } from "./collections/artifacts.js";
import { createDepsStore } from "./collections/deps.js";
import { hashingEmbedder } from "./collections/embedder.js";
import type {
  ArtifactStore,
  DepsStore,
  Embedder,
  VectorOptions,
  VectorStore,
  WorkflowStore,
} from "./collections/types.js";
import { createVectorStore } from "./collections/vectors.js";
import { createWorkflowStore } from "./collections/workflows.js";
import { parseConfig, type StorageConfig } from "./config.js";
import { InvalidConfigError, StorageClosedError } from "./errors.js";
import { guarded } from "./guarded.js";
import { type Keyspace, type KeyspaceOptions, keyspace as makeKeyspace, metaKey, quotaBase } from "./keys.js";
import type { DropOptions } from "./lifecycle/drop.js";
import type { MigrateOptions } from "./lifecycle/migrate.js";
import {
  hostWorkspaces,
  type LifecycleHost,
  type Registrar,
  registrarFor,
  registrationGate,
  registrationsFor,
} from "./lifecycle/registry.js";
import type { WorkspaceStats } from "./lifecycle/stats.js";
import type { ExportRecord, ImportOptions } from "./lifecycle/transfer.js";
import type { Quota, QuotaUsage } from "./quota.js";
import { driverFor, ScopedStore, scopedKeyv } from "./scope.js";
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
  /** Same backend and connection, another scope. */
  withWorkspace(workspaceId: string | null | undefined): WorkspaceStorage;
  /** Plain JSON: openStorage(it) elsewhere rebuilds the same scope. */
  toBootstrapConfig(): StorageConfig;
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

/** One opened backend, shared by a storage and all its withWorkspace views. */
interface Shared {
  readonly backend: Backend;
  /** Whether close() of the owning storage releases the backend (false for the caller's own store). */
  readonly owned: boolean;
  readonly options: StorageOptions;
  readonly registrar: Registrar;
  closed: boolean;
  /** Open watch() iterators and the storage that made each: ended when it (or the owner) closes. */
  readonly watchers: Map<() => void, Storage>;
}

interface Context {
  readonly store: PrefixStore;
  keyv?: Keyv;
}

class Storage implements WorkspaceStorage {
  readonly keyspace: Keyspace;
  readonly #shared: Shared;
  readonly #isOwner: boolean;
  readonly #contexts = new Map<string, Context>();
  readonly #closedCheck = () => (this.#closed || this.#shared.closed ? this.#closedError() : undefined);
  readonly #open = () => {
    const error = this.#closedCheck();
    if (error) throw error;
  };
  #closed = false;
  #artifacts?: ArtifactStore;
  #workflows?: WorkflowStore;
  #vectors?: VectorStore;
  #deps?: DepsStore;

  constructor(shared: Shared, keyspace: Keyspace, isOwner: boolean) {
    this.#shared = shared;
    this.keyspace = keyspace;
    this.#isOwner = isOwner;
  }

  get workspaceId(): string | undefined {
    return this.keyspace.workspaceId;
  }

  #closedError(): StorageClosedError {
    const scope =
      this.workspaceId === undefined ? "unscoped storage" : `storage of workspace ${JSON.stringify(this.workspaceId)}`;
    return new StorageClosedError(`${scope} is closed (its backend was released by close())`);
  }

  #context(prefix: string, collection: string): Context {
    let context = this.#contexts.get(prefix);
    if (!context) {
      const { registrar } = this.#shared;
      const registrations = registrationsFor(registrar, this.keyspace, collection);
      // A closed storage is refused before it registers anything.
      const gate = registrationGate(registrar, registrations);
      context = { store: guarded(this.#scope(prefix), this.#closedCheck, gate) };
      this.#contexts.set(prefix, context);
    }
    return context;
  }

  #plain(prefix: string): PrefixStore {
    return guarded(this.#scope(prefix), this.#closedCheck);
  }

  #scope(prefix: string): PrefixStore {
    const quota = quotaBase(this.keyspace.workspacePrefix, prefix);
    return this.#shared.backend.driver.scope(prefix, quota === undefined ? undefined : { quota });
  }

  #host(): LifecycleHost {
    this.#open();
    return {
      keyspace: this.keyspace,
      registrar: this.#shared.registrar,
      store: (prefix, collection) => this.#context(prefix, collection).store,
      plain: (prefix) => this.#plain(prefix),
      withWorkspace: (id) => (this.withWorkspace(id) as Storage).#host(),
    };
  }

  collection<T = unknown>(name: string): Keyv<T> {
    const context = this.#context(this.keyspace.prefix(name), name);
    context.keyv ??= scopedKeyv(new ScopedStore(context.store));
    return context.keyv as Keyv<T>;
  }

  #vectorStore(prefix: string, collection: string): VectorStore {
    return createVectorStore(this.#context(prefix, collection), this.#shared.options.vectors, {
      owner: this.#shared,
    });
  }

  get artifacts(): ArtifactStore {
    this.#artifacts ??= createArtifactStore(this.#context(this.keyspace.prefix("artifacts"), "artifacts"));
    return this.#artifacts;
  }

  get vectors(): VectorStore {
    this.#vectors ??= this.#vectorStore(this.keyspace.prefix("vectors"), "vectors");
    return this.#vectors;
  }

  get workflows(): WorkflowStore {
    if (!this.#workflows) {
      const prefix = this.keyspace.prefix("workflows");
      // The workflow index sits beside the workflows (same scope, same ACL pattern), apart from the user's vectors.
      const index = this.#vectorStore(metaKey(prefix, "vectors"), "workflows");
      const embedder = this.#shared.options.embedder ?? hashingEmbedder();
      this.#workflows = createWorkflowStore(this.#context(prefix, "workflows"), index, embedder);
    }
    return this.#workflows;
  }

  get deps(): DepsStore {
    this.#deps ??= createDepsStore(this.#context(this.keyspace.prefix("deps"), "deps"));
    return this.#deps;
  }

  withWorkspace(workspaceId: string | null | undefined): WorkspaceStorage {
    this.#open();
    return new Storage(this.#shared, this.keyspace.withWorkspace(workspaceId), false);
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

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [end, owner] of [...this.#shared.watchers]) if (owner === this || this.#isOwner) end();
    if (this.#isOwner && !this.#shared.closed) {
      this.#shared.closed = true;
      if (this.#shared.owned) await this.#shared.backend.close();
    }
  }
}

/** Wrap a store the app already has. close() never disconnects it. */
export function createStorage(
  store: AnyStore,
  options: KeyspaceOptions & StorageOptions & { url?: string },
): WorkspaceStorage {
  const ks = makeKeyspace(options);
  const backend: Backend = { store, driver: driverFor(store), url: options.url ?? "", close: async () => {} };
  return new Storage(
    { backend, owned: false, options, registrar: registrarFor(backend.driver), closed: false, watchers: new Map() },
    ks,
    true,
  );
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
  return new Storage(
    { backend, owned: true, options, registrar: registrarFor(backend.driver), closed: false, watchers: new Map() },
    ks,
    true,
  );
}
