/**
 * Export and import of one workspace as ExportRecords, one per entry, streamed: a batch of names,
 * their values, then the next batch, so memory stays flat whatever the workspace's size.
 *
 * A record carries the value as Keyv stored it, decoded from its `{"value":…}` envelope: plain
 * JSON, with bytes as Keyv writes them (`":base64:<base64>"`, and a string that starts with ":"
 * gets one more ":"). The envelope's expiry becomes `expiresAt`. Importing writes the same
 * envelope back, so every collection reads its entries exactly as before. A value that is not
 * such an envelope (raw writes) travels as its stored text with `raw: true`.
 */
import { InvalidArgumentError } from "../errors.js";
import { dropWorkspace } from "./drop.js";
import { BATCHES_OF, type Checked, check, type Source, type Target } from "./records.js";
import { collectionPrefixes, hostCollections, type LifecycleHost } from "./registry.js";
import { BATCH, batches } from "./stats.js";

export interface ExportRecord {
  collection: string;
  name: string;
  value: unknown;
  /** Absolute expiry, ms since the epoch; absent = none. */
  expiresAt?: number;
  /** The stored text itself, for a value that is not a Keyv envelope. */
  raw?: boolean;
}

export interface ImportOptions {
  /** Drop the workspace first; by default records are merged into what is there. */
  replace?: boolean;
  /** Called after each batch with the entries written so far. */
  onProgress?: (written: number) => void;
}

const ENVELOPE_KEYS = new Set(["value", "expires"]);

function decode(raw: unknown): { value: unknown; expiresAt?: number } | undefined {
  if (typeof raw !== "string" || !raw.startsWith('{"value"')) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof data !== "object" || data === null || !Object.keys(data).every((k) => ENVELOPE_KEYS.has(k))) {
    return undefined;
  }
  const { value, expires } = data as { value: unknown; expires?: unknown };
  if (expires === undefined || expires === null) return { value };
  return typeof expires === "number" ? { value, expiresAt: expires } : undefined;
}

/** The collection name a record may carry: a collection, or the workflow index beside one. */
function collectionOf(prefixCollection: string, prefix: string, own: string): string {
  return prefix === own ? prefixCollection : `${prefixCollection}#vectors`;
}

export async function* exportWorkspace(host: LifecycleHost): AsyncGenerator<ExportRecord> {
  const ks = host.keyspace;
  const now = Date.now();
  for (const collection of await hostCollections(host)) {
    for (const prefix of collectionPrefixes(ks, collection)) {
      const store = host.plain(prefix);
      const name = collectionOf(collection, prefix, ks.prefix(collection));
      for await (const names of batches(store)) {
        const values = await store.getMany(names);
        for (let i = 0; i < names.length; i++) {
          const stored = values[i];
          if (stored === undefined || stored === null) continue;
          const decoded = decode(stored);
          if (decoded === undefined) {
            yield { collection: name, name: names[i] as string, value: String(stored), raw: true };
            continue;
          }
          if (decoded.expiresAt !== undefined && decoded.expiresAt <= now) continue;
          yield { collection: name, name: names[i] as string, ...decoded };
        }
      }
    }
  }
}

export async function importWorkspace(
  host: LifecycleHost,
  records: AsyncIterable<unknown> | Iterable<unknown>,
  options: ImportOptions = {},
): Promise<number> {
  if (host.keyspace.workspaceId === undefined) {
    throw new InvalidArgumentError(
      "importWorkspace() needs a workspace: this storage is unscoped (use storage.withWorkspace(id).importWorkspace())",
    );
  }
  if (options.replace) await dropWorkspace(host);
  type Group = { collection: string; entries: Checked[] };
  type Batch = Map<string, Group>;
  let pending: Batch = new Map();
  let size = 0;
  let written = 0;
  // Up to two batches are written while the next is read and checked: the second one's encoding
  // and sending overlap the server's work on the first (on Redis the client otherwise idled ~45% of
  // an import). A batch that names an entry of the batch still in flight waits for it, so a name
  // that comes twice ends with its last record on every engine, whatever order an engine (a pool of
  // connections, a retried command) applies concurrent writes in.
  let previous: Promise<void> = Promise.resolve();
  let writing: Promise<void> = Promise.resolve();
  let inFlight: Batch = new Map();
  const write = async (batch: Batch) => {
    for (const [prefix, { collection, entries }] of batch) {
      await host.store(prefix, collection).setMany(entries);
      written += entries.length;
    }
    options.onProgress?.(written);
  };
  // Whether `batch` names an entry of the batch in flight (names by prefix: no key strings built).
  const overlaps = (batch: Batch) => {
    for (const [prefix, { entries }] of batch) {
      const other = inFlight.get(prefix);
      if (other === undefined) continue;
      const names = new Set(other.entries.map((entry) => entry.name));
      if (entries.some((entry) => names.has(entry.name))) return true;
    }
    return false;
  };
  const flush = async () => {
    const batch = pending;
    pending = new Map();
    size = 0;
    await previous;
    if (batch.size === 0) return;
    if (overlaps(batch)) await writing;
    previous = writing;
    inFlight = batch;
    writing = write(batch);
    // Awaited by a later flush or at the end; until then a failure must not count as unhandled.
    writing.catch(() => {});
  };
  const settle = async () => {
    await flush();
    await previous;
    await writing;
  };
  const source: Source = { line: undefined, index: 0 };
  const add = (record: unknown) => {
    const checked = check(host, record, source);
    if (!checked) return false;
    const { prefix, base } = source.target as Target;
    let group = pending.get(prefix);
    if (!group) pending.set(prefix, (group = { collection: base, entries: [] }));
    group.entries.push(checked);
    return ++size >= BATCH;
  };
  // A bad record or unreadable input ends the import; the records before it are stored first.
  const failing = async (error: unknown): Promise<never> => {
    await settle();
    throw error;
  };
  try {
    const batched = BATCHES_OF.get(records);
    if (batched) {
      const batches = batched()[Symbol.asyncIterator]();
      for (;;) {
        const step = await batches.next().catch(failing);
        if (step.done) break;
        const { records: list, lines } = step.value;
        for (let i = 0; i < list.length; i++) {
          source.line = lines[i];
          let full: boolean;
          try {
            full = add(list[i]);
          } catch (error) {
            await batches.return?.();
            return await failing(error);
          }
          if (full) await flush();
        }
      }
    } else {
      const iterator =
        Symbol.asyncIterator in records
          ? (records as AsyncIterable<unknown>)[Symbol.asyncIterator]()
          : (records as Iterable<unknown>)[Symbol.iterator]();
      for (let index = 0; ; index++) {
        let full: boolean;
        try {
          const step = await iterator.next();
          if (step.done) break;
          source.index = index;
          full = add(step.value);
        } catch (error) {
          return await failing(error);
        }
        if (full) await flush();
      }
    }
    await settle();
  } catch (error) {
    // Nothing of this import is left running once it has failed.
    await previous.catch(() => {});
    await writing.catch(() => {});
    throw error;
  }
  return written;
}
