/**
 * What every view of one scope shares: its keyspace, and the stores and collections built over
 * it. A server that calls `storage.withWorkspace(tenant)` per request gets a new view each time,
 * but the stores under it (a Keyv, the driver's prefix store, the guard, the registrations: about
 * 8 KB and 8–13 µs per collection, bench "withWorkspace(new id)") are built once per scope and
 * kept for the next request, in a bounded LRU (VIEW_LIMIT scopes per opened backend).
 */
import type { Keyv } from "keyv";
import type { Backend, PrefixStore } from "./backends/driver.js";
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
import { StorageClosedError } from "./errors.js";
import { guarded } from "./guarded.js";
import { type Keyspace, metaKey, quotaBase } from "./keys.js";
import { type Registrar, registrationGate, registrationsFor } from "./lifecycle/registry.js";
import { ScopedStore, scopedKeyv } from "./scope.js";

/** Scopes whose stores an opened backend keeps for its next view (least recently used go first). */
export const VIEW_LIMIT = 1024;

/** One opened backend, shared by a storage and all its withWorkspace views. */
export interface Shared {
  readonly backend: Backend;
  /** Whether close() of the owning storage releases the backend (false for the caller's own store). */
  readonly owned: boolean;
  readonly options: { embedder?: Embedder; vectors?: VectorOptions };
  readonly registrar: Registrar;
  closed: boolean;
  /** Open watch() iterators and the view that opened each: ended when it (or the owner) closes. */
  readonly watchers: Map<() => void, object>;
  /** The scopes of recent views, by workspace id (null: unscoped). */
  readonly scopes: Lru<string | null, ScopeState>;
}

interface Context {
  readonly store: PrefixStore;
  keyv?: Keyv;
}

export class ScopeState {
  readonly keyspace: Keyspace;
  readonly #shared: Shared;
  readonly #contexts = new Map<string, Context>();
  /** Every store of the scope refuses once the owning storage has closed. */
  readonly closedCheck = (): StorageClosedError | undefined => (this.#shared.closed ? this.#closedError() : undefined);
  #artifacts?: ArtifactStore;
  #workflows?: WorkflowStore;
  #vectors?: VectorStore;
  #deps?: DepsStore;

  constructor(shared: Shared, keyspace: Keyspace) {
    this.#shared = shared;
    this.keyspace = keyspace;
  }

  #closedError(): StorageClosedError {
    const id = this.keyspace.workspaceId;
    const scope = id === undefined ? "unscoped storage" : `storage of workspace ${JSON.stringify(id)}`;
    return new StorageClosedError(`${scope} is closed (its backend was released by close())`);
  }

  /** The store of `prefix`, registering `collection` on its first write. */
  context(prefix: string, collection: string): Context {
    let context = this.#contexts.get(prefix);
    if (!context) {
      const { registrar } = this.#shared;
      const registrations = registrationsFor(registrar, this.keyspace, collection);
      // A closed storage is refused before it registers anything.
      const gate = registrationGate(registrar, registrations);
      context = { store: guarded(this.#scope(prefix), this.closedCheck, gate) };
      this.#contexts.set(prefix, context);
    }
    return context;
  }

  /** A registry's store (no registration of its own). */
  plain(prefix: string): PrefixStore {
    return guarded(this.#scope(prefix), this.closedCheck);
  }

  #scope(prefix: string): PrefixStore {
    const quota = quotaBase(this.keyspace.workspacePrefix, prefix);
    return this.#shared.backend.driver.scope(prefix, quota === undefined ? undefined : { quota });
  }

  collection<T>(name: string): Keyv<T> {
    const context = this.context(this.keyspace.prefix(name), name);
    context.keyv ??= scopedKeyv(new ScopedStore(context.store));
    return context.keyv as Keyv<T>;
  }

  #vectorStore(prefix: string, collection: string): VectorStore {
    return createVectorStore(this.context(prefix, collection), this.#shared.options.vectors, {
      owner: this.#shared,
    });
  }

  get artifacts(): ArtifactStore {
    this.#artifacts ??= createArtifactStore(this.context(this.keyspace.prefix("artifacts"), "artifacts"));
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
      this.#workflows = createWorkflowStore(this.context(prefix, "workflows"), index, embedder);
    }
    return this.#workflows;
  }

  get deps(): DepsStore {
    this.#deps ??= createDepsStore(this.context(this.keyspace.prefix("deps"), "deps"));
    return this.#deps;
  }
}

/** The scope of workspace `id` under `shared`, from the LRU or made by `keyspace` (which validates the id). */
export function scopeOf(shared: Shared, id: string | null | undefined, keyspace: () => Keyspace): ScopeState {
  const key = id ?? null;
  let state = shared.scopes.get(key);
  if (!state) {
    // Only a validated id is ever a key: a bad one throws here, before it is remembered.
    state = new ScopeState(shared, keyspace());
    shared.scopes.set(key, state);
  }
  return state;
}

/** A Map that keeps its `limit` most recently used keys. */
export class Lru<K, V> {
  readonly #map = new Map<K, V>();

  constructor(readonly limit: number) {}

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      // Re-inserted: a Map iterates in insertion order, so the first key is the least recent.
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.limit) this.#map.delete(this.#map.keys().next().value as K);
  }
}
