/**
 * Moving legacy unscoped data (`<root>:<collection>:<name>`, written before workspaces) into a
 * workspace. Per batch the entries are copied first and deleted from the old place after, so a
 * migration cut short loses nothing, and running it again copies what is left: a copy that was
 * made but not yet deleted is written again with the same value, never twice.
 */
import { InvalidArgumentError } from "../errors.js";
import { validateCollection, validateWorkspaceId } from "../keys.js";
import { collectionPrefixes, hostCollections, type LifecycleHost } from "./registry.js";
import { batches } from "./stats.js";

export interface MigrateOptions {
  /** The workspace that receives the data. */
  to: string;
  /** Count what would move, change nothing. */
  dryRun?: boolean;
  /** Collections to move besides the built-in and registered ones (custom collections of old versions). */
  collections?: readonly string[];
  /** Called after each batch with the entries moved (or counted) so far. */
  onProgress?: (entries: number) => void;
}

// Keyv keeps the expiry inside the value, serialised last.
const EXPIRES = /"expires":(\d+)\}$/;

function remainingTtl(value: unknown, now: number): number | undefined | null {
  if (typeof value !== "string") return undefined;
  const match = EXPIRES.exec(value);
  if (!match) return undefined;
  const ttl = Number(match[1]) - now;
  return ttl > 0 ? ttl : null;
}

export async function migrateLegacy(host: LifecycleHost, options: MigrateOptions): Promise<{ entries: number }> {
  const ks = host.keyspace;
  if (ks.workspaceId !== undefined) {
    throw new InvalidArgumentError(
      "migrateLegacy() runs on an unscoped storage (workspaceId null): it moves the legacy layout into a workspace",
    );
  }
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError("migrateLegacy() needs options { to: <workspace id> }");
  }
  const target = host.withWorkspace(validateWorkspaceId(options.to));
  const extra = (options.collections ?? []).map((collection) => validateCollection(collection));
  const collections = [...new Set([...(await hostCollections(host)), ...extra])].filter((collection) =>
    target.keyspace.isScoped(collection),
  );
  let entries = 0;
  for (const collection of collections) {
    const from = collectionPrefixes(ks, collection);
    const to = collectionPrefixes(target.keyspace, collection);
    for (let i = 0; i < from.length; i++) {
      const source = host.plain(from[i] as string);
      const destination = target.store(to[i] as string, collection);
      for await (const names of batches(source)) {
        if (options.dryRun) {
          entries += names.length;
          options.onProgress?.(entries);
          continue;
        }
        const values = await source.getMany(names);
        const now = Date.now();
        const copies: { name: string; value: unknown; ttl?: number }[] = [];
        values.forEach((value, j) => {
          const ttl = remainingTtl(value, now);
          if (value === undefined || ttl === null) return;
          const name = names[j] as string;
          copies.push(ttl === undefined ? { name, value } : { name, value, ttl });
        });
        await destination.setMany(copies);
        await source.deleteMany(names);
        entries += copies.length;
        options.onProgress?.(entries);
      }
      // The index and log of the emptied legacy prefix go with it.
      if (!options.dryRun) await source.clear();
    }
  }
  return { entries };
}
