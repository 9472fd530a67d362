/**
 * The registries that make a root's workspaces, and a workspace's collections, listable without
 * walking the keyspace (never SCAN on Redis):
 *
 *   `<root>#workspaces`            names = workspace ids that were written to
 *   `<root>:ws:<id>:#collections`  names = collections written in that workspace
 *   `<root>:#collections`          names = collections written by unscoped storages
 *
 * Each is an ordinary prefix of the backend's driver, so every backend keeps them the same way.
 * `#` never occurs in a collection name or a workspace id, so none of these is a data prefix, and a
 * workspace's own registry lies under `<root>:ws:<id>:`, inside its ACL pattern.
 *
 * A prefix registers on its first write in this process, in the same write as its data where the
 * driver can (PrefixStore.setRegistering: one MULTI on Redis), before it otherwise: the registry
 * may name what is empty (a failed write, a clear()), never miss what holds data.
 */
import type { Driver, Entry, PrefixStore } from "../backends/driver.js";
import type { WriteGate } from "../guarded.js";
import { COLLECTIONS, type Keyspace, metaKey, SEPARATOR, validateCollection, validateWorkspaceId } from "../keys.js";
import { Memo } from "../memo.js";

/**
 * The root's workspace registry. In the hash-tag layout the whole registry is one tag, so its
 * names and its index share a slot (a registry write is one transaction on a cluster).
 */
export function workspacesPrefix(ks: Pick<Keyspace, "root" | "hashTags">): string {
  return ks.hashTags ? `{${ks.root}#workspaces}` : `${ks.root}#workspaces`;
}

/** Where the collections of `ks`'s scope (its workspace, or the unscoped layout) are listed. */
export function collectionsPrefix(ks: Keyspace): string {
  if (ks.workspacePrefix !== undefined) return `${ks.workspacePrefix}${SEPARATOR}#collections`;
  return ks.hashTags ? `{${ks.root}#collections}` : `${ks.root}${SEPARATOR}#collections`;
}

/**
 * One registry entry, written in this process at generation `written` (-1: not yet). Storages hold
 * their entries, so one the registrar's Memo has forgotten still works; forget() moves the
 * generation on, which makes every entry due again, held or forgotten.
 */
export interface Registration {
  readonly prefix: string;
  readonly name: string;
  written: number;
  pending?: Promise<void> | undefined;
}

/** The registrations of one driver, shared by every storage over it in this process. */
export class Registrar {
  readonly #driver: Driver;
  readonly #entries = new Memo<string, Registration>();
  /** Moved on by every forget(): an entry is done while `written` equals it. */
  generation = 0;

  constructor(driver: Driver) {
    this.#driver = driver;
  }

  entry(prefix: string, name: string): Registration {
    const key = `${prefix}\n${name}`;
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { prefix, name, written: -1 };
      this.#entries.set(key, entry);
    }
    return entry;
  }

  done(entry: Registration): boolean {
    return entry.written === this.generation;
  }

  /** Writes the entry unless this process already did; concurrent first writes share one write. */
  ensure(entry: Registration): Promise<void> {
    if (this.done(entry)) return Promise.resolve();
    // A write that started before a drop does not count as done after it.
    const generation = this.generation;
    entry.pending ??= this.#driver
      .scope(entry.prefix)
      .set(entry.name, "1")
      .then(() => {
        entry.written = generation;
      })
      .finally(() => {
        entry.pending = undefined;
      });
    return entry.pending;
  }

  /**
   * `entries` written with the registrations `due`: in that same write where the store can carry
   * them (no write of its own, nothing to wait for; concurrent first writes each carry them until
   * one has landed), otherwise after them.
   */
  async setMany(store: PrefixStore, entries: readonly Entry[], due: readonly Registration[]): Promise<void> {
    // Nothing written, nothing to list: the registrations wait for a write that stores something.
    if (!store.setRegistering || entries.length === 0) {
      await Promise.all(due.map((entry) => this.ensure(entry)));
      return store.setMany(entries);
    }
    const generation = this.generation;
    await store.setRegistering(entries, due);
    for (const entry of due) entry.written = generation;
  }

  /**
   * After a drop: the next write to its registries must register again. Every entry is due
   * again (a drop is rare; each live workspace then carries its registration once more), so an
   * entry the Memo forgot but a storage still holds is never taken as written.
   */
  forget(): void {
    this.generation++;
  }
}

const registrars = new WeakMap<Driver, Registrar>();

export function registrarFor(driver: Driver): Registrar {
  let registrar = registrars.get(driver);
  if (!registrar) {
    registrar = new Registrar(driver);
    registrars.set(driver, registrar);
  }
  return registrar;
}

/**
 * The registrations a write to `collection` of `ks` needs: its collection in the scope's registry
 * and, in a workspace, the workspace id in the root's. None for a shared collection seen from a
 * workspace (deps belongs to the root, not to the workspace).
 */
export function registrationsFor(registrar: Registrar, ks: Keyspace, collection: string): Registration[] {
  if (ks.workspaceId === undefined) return [registrar.entry(collectionsPrefix(ks), collection)];
  if (!ks.isScoped(collection)) return [];
  // The workspace's own registry first: a write that carries both queues them in this order.
  return [registrar.entry(workspacesPrefix(ks), ks.workspaceId), registrar.entry(collectionsPrefix(ks), collection)];
}

/**
 * What a write does about its registrations (guarded.ts): until each is written in this process it
 * carries them; afterwards `due()` is undefined at the cost of one boolean test per registration.
 */
export function registrationGate(
  registrar: Registrar,
  entries: readonly Registration[],
): WriteGate<Registration[]> | undefined {
  if (entries.length === 0) return undefined;
  return {
    due() {
      let due: Registration[] | undefined;
      for (const entry of entries) if (entry.written !== registrar.generation) (due ??= []).push(entry);
      return due;
    },
    ensure: (due) => Promise.all(due.map((entry) => registrar.ensure(entry))),
    setMany: (store, list, due) => registrar.setMany(store, list, due),
  };
}

async function sortedNames(store: PrefixStore, valid: (name: string) => unknown): Promise<string[]> {
  const names: string[] = [];
  for await (const name of store.names()) {
    try {
      valid(name);
      names.push(name);
    } catch {
      // Not ours: only the library writes these registries, so a stray name is skipped, not listed.
    }
  }
  return names.sort();
}

/** The prefixes a collection occupies: its own, and the vector index kept beside it (workflows). */
export function collectionPrefixes(ks: Keyspace, collection: string): string[] {
  const prefix = ks.prefix(collection);
  return [prefix, metaKey(prefix, "vectors")];
}

/** What the lifecycle operations need of a storage: its layout and its stores, refused once closed. */
export interface LifecycleHost {
  readonly keyspace: Keyspace;
  /** The store of a prefix of this scope, registering `collection` on its first write. */
  store(prefix: string, collection: string): PrefixStore;
  /** A registry's store (no registration of its own). */
  plain(prefix: string): PrefixStore;
  readonly registrar: Registrar;
  /** The same backend, another workspace (or none). */
  withWorkspace(workspaceId: string | undefined): LifecycleHost;
}

export async function hostCollections(host: LifecycleHost): Promise<string[]> {
  const ks = host.keyspace;
  const registered = await sortedNames(host.plain(collectionsPrefix(ks)), validateCollection);
  const all = [...new Set([...COLLECTIONS, ...registered])].sort();
  return ks.workspaceId === undefined ? all : all.filter((collection) => ks.isScoped(collection));
}

export function hostWorkspaces(host: LifecycleHost): Promise<string[]> {
  return sortedNames(host.plain(workspacesPrefix(host.keyspace)), validateWorkspaceId);
}
