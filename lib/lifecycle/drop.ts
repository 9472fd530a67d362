/**
 * Dropping a workspace: every prefix its registry names (and the built-in ones), batch by batch,
 * then its registries. Data goes first and the registries last, so a drop cut short (a crash, a
 * lost connection) leaves the workspace listed with whatever is left, and running it again
 * finishes the job.
 */
import { InvalidArgumentError } from "../errors.js";
import {
  collectionPrefixes,
  collectionsPrefix,
  hostCollections,
  type LifecycleHost,
  workspacesPrefix,
} from "./registry.js";
import { batches } from "./stats.js";

export interface DropOptions {
  /** Called after each batch with the data entries deleted so far. */
  onProgress?: (deleted: number) => void;
}

export async function dropWorkspace(host: LifecycleHost, options: DropOptions = {}): Promise<number> {
  const ks = host.keyspace;
  const id = ks.workspaceId;
  if (id === undefined) {
    throw new InvalidArgumentError(
      "dropWorkspace() needs a workspace: this storage is unscoped (use storage.withWorkspace(id).dropWorkspace())",
    );
  }
  const registry = collectionsPrefix(ks);
  const workspaces = workspacesPrefix(ks);
  // Writes of this process after this point register again (a write racing the drop may survive it).
  host.registrar.forget();
  let deleted = 0;
  for (const collection of await hostCollections(host)) {
    for (const prefix of collectionPrefixes(ks, collection)) {
      const store = host.plain(prefix);
      for await (const names of batches(store)) {
        deleted += await store.deleteMany(names);
        options.onProgress?.(deleted);
      }
      // What deletes leave behind: bookkeeping (a change log), names whose values had expired.
      await store.clear();
    }
  }
  await host.plain(registry).clear();
  await host.plain(workspaces).delete(id);
  host.registrar.forget();
  return deleted;
}
