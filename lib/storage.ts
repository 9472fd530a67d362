/**
 * Composition: config → backend adapter → scoped adapters → collections.
 */
import type { Keyv } from "keyv";
import { type AnyStore, type Backend, DRIVER, type Driver, type WithDriver } from "./backends/driver.js";
import { openBackend } from "./backends/index.js";
import { createArtifactStore } from "./collections/artifacts.js";
import { createDepsStore } from "./collections/deps.js";
import { hashingEmbedder } from "./collections/embedder.js";
import type {
  ArtifactStore,
  CollectionContext,
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
import { type Keyspace, type KeyspaceOptions, keyspace as makeKeyspace, metaKey } from "./keys.js";
import { driverFor, ScopedStore, scopedKeyv } from "./scope.js";

export interface StorageOptions {
  /** Turns workflow descriptions and queries into vectors; default: hashingEmbedder(). */
  embedder?: Embedder;
  /** Vector search options for the `vectors` collection and the workflow index. */
  vectors?: VectorOptions;
  /** Bound on connecting to a server backend; default 5000 ms. */
  connectTimeoutMs?: number;
  /** Bound on waiting for one reply from a server backend; default twice connectTimeoutMs. */
  commandTimeoutMs?: number;
}

export interface WorkspaceStorage {
  readonly keyspace: Keyspace;
  readonly workspaceId: string | undefined;
  /** A Keyv whose key k is stored at exactly keyspace.key(name, k), with no "keyv:" namespace in between. */
  collection(name: string): Keyv;
  readonly artifacts: ArtifactStore;
  readonly workflows: WorkflowStore;
  readonly vectors: VectorStore;
  readonly deps: DepsStore;
  /** Same backend and connection, another scope. */
  withWorkspace(workspaceId: string | null | undefined): WorkspaceStorage;
  /** Plain JSON: openStorage(it) elsewhere rebuilds the same scope. */
  toBootstrapConfig(): StorageConfig;
  close(): Promise<void>;
}

/** One opened backend, shared by a storage and all its withWorkspace views. */
interface Shared {
  readonly backend: Backend;
  readonly driver: Driver;
  /** Whether close() of the owning storage releases the backend (false for the caller's own store). */
  readonly owned: boolean;
  readonly options: StorageOptions;
  closed: boolean;
}

const DRIVER_METHODS = [
  "get",
  "getMany",
  "has",
  "set",
  "setMany",
  "delete",
  "deleteMany",
  "names",
  "clear",
  "version",
  "changedSince",
] as const;

/**
 * The driver's methods, bound, on an object of their own. Closing replaces them with ones
 * that throw, so the open path pays no "is it closed?" check on every read and write.
 * Views inherit from their owner's object (prototype chain), so closing the owner reaches them all.
 */
function liveDriver(driver: Driver): Driver {
  const out: Record<string, unknown> = {};
  for (const method of DRIVER_METHODS) {
    const fn = driver[method] as ((...args: unknown[]) => unknown) | undefined;
    if (fn) out[method] = fn.bind(driver);
  }
  return out as unknown as Driver;
}

function poison(target: Driver, error: () => Error): void {
  const fail = () => {
    throw error();
  };
  for (const method of DRIVER_METHODS) {
    if (method in target) (target as unknown as Record<string, unknown>)[method] = fail;
  }
}

class Storage implements WorkspaceStorage {
  readonly keyspace: Keyspace;
  readonly #shared: Shared;
  readonly #isOwner: boolean;
  /** This storage's own driver object; views inherit from their owner's (see liveDriver). */
  readonly #driver: Driver;
  readonly #ownerDriver: Driver;
  readonly #store: WithDriver;
  readonly #collections = new Map<string, CollectionContext>();
  #closed = false;
  #artifacts?: ArtifactStore;
  #workflows?: WorkflowStore;
  #vectors?: VectorStore;
  #deps?: DepsStore;

  constructor(shared: Shared, keyspace: Keyspace, isOwner: boolean, ownerDriver?: Driver) {
    this.#shared = shared;
    this.keyspace = keyspace;
    this.#isOwner = isOwner;
    this.#driver = ownerDriver ? (Object.create(ownerDriver) as Driver) : liveDriver(shared.driver);
    this.#ownerDriver = ownerDriver ?? this.#driver;
    this.#store = { [DRIVER]: this.#driver };
  }

  get workspaceId(): string | undefined {
    return this.keyspace.workspaceId;
  }

  #closedError(): StorageClosedError {
    const scope =
      this.workspaceId === undefined ? "unscoped storage" : `storage of workspace ${JSON.stringify(this.workspaceId)}`;
    return new StorageClosedError(`${scope} is closed (its backend was released by close())`);
  }

  #assertOpen(): void {
    if (this.#closed || this.#shared.closed) throw this.#closedError();
  }

  #context(prefix: string): CollectionContext {
    let context = this.#collections.get(prefix);
    if (!context) {
      const store = new ScopedStore(this.#store, prefix);
      const keyv = scopedKeyv(store);
      context = { keyv, store };
      this.#collections.set(prefix, context);
    }
    return context;
  }

  collection(name: string): Keyv {
    return this.#context(this.keyspace.prefix(name)).keyv;
  }

  get artifacts(): ArtifactStore {
    this.#artifacts ??= createArtifactStore(this.#context(this.keyspace.prefix("artifacts")));
    return this.#artifacts;
  }

  get vectors(): VectorStore {
    this.#vectors ??= createVectorStore(this.#context(this.keyspace.prefix("vectors")), this.#shared.options.vectors);
    return this.#vectors;
  }

  get workflows(): WorkflowStore {
    if (!this.#workflows) {
      const prefix = this.keyspace.prefix("workflows");
      // The workflow index sits beside the workflows (same scope, same ACL pattern), apart from the user's vectors.
      const index = createVectorStore(this.#context(metaKey(prefix, "vectors")), this.#shared.options.vectors);
      this.#workflows = createWorkflowStore(
        this.#context(prefix),
        index,
        this.#shared.options.embedder ?? hashingEmbedder(),
      );
    }
    return this.#workflows;
  }

  get deps(): DepsStore {
    this.#deps ??= createDepsStore(this.#context(this.keyspace.prefix("deps")));
    return this.#deps;
  }

  withWorkspace(workspaceId: string | null | undefined): WorkspaceStorage {
    this.#assertOpen();
    return new Storage(this.#shared, this.keyspace.withWorkspace(workspaceId), false, this.#ownerDriver);
  }

  toBootstrapConfig(): StorageConfig {
    const { url } = this.#shared.backend;
    if (!url) {
      throw new InvalidConfigError(
        "url",
        "this storage was created from a store without a url; pass { url } to createStorage() to get a bootstrap config",
      );
    }
    const { root, workspaceId, unscoped, depsPrefix } = this.keyspace;
    return {
      url,
      root,
      workspaceId: workspaceId ?? null,
      unscoped: [...unscoped],
      ...(depsPrefix === undefined ? {} : { depsPrefix }),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    poison(this.#driver, () => this.#closedError());
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
  const backend: Backend = { store, url: options.url ?? "", close: async () => {} };
  return new Storage({ backend, driver: driverFor(store), owned: false, options, closed: false }, ks, true);
}

/** Open the backend a config names, scoped as it says. */
export async function openStorage(config: StorageConfig, options: StorageOptions = {}): Promise<WorkspaceStorage> {
  const parsed = parseConfig(config);
  const ks = makeKeyspace(parsed);
  const backend = await openBackend(parsed.url, {
    connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    ...(options.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: options.commandTimeoutMs }),
  });
  return new Storage({ backend, driver: driverFor(backend.store), owned: true, options, closed: false }, ks, true);
}
