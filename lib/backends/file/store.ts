import { EventEmitter } from "node:events";
import { unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { KeyvStoreAdapter, StoredData } from "keyv";
import { type KeyvWorkspacesError, StorageClosedError } from "../../errors.js";
import type { Quota } from "../../quota.js";
import { DRIVER, type Driver } from "../driver.js";
import { MapCore } from "../map.js";
import { mapScope } from "../map-scope.js";
import { type Pending, WriteQueue } from "./batch.js";
import { type CompactionResult, Compactor, removeLeftovers } from "./compact.js";
import { type Contents, changedKeys, emptyContents, liveEntries } from "./format.js";
import { makeDirectory, openError, storeFileError, storePath } from "./fs.js";
import { Journal } from "./journal.js";
import { FileLock } from "./lock.js";
import { batchRecord } from "./log.js";
import { type FileWatchOptions, StoreWatch } from "./watch.js";

export interface FileStoreOptions {
  /** How long a write waits for another process's lock before failing with ERR_STORE_LOCKED; default 10 s. */
  lockTimeoutMs?: number;
  /** The log is compacted into a new snapshot once it is larger than this and than half the snapshot; default 1 MiB. */
  compactBytes?: number;
  /** How a watched store notices other processes' changes (watch.ts); default fs.watch plus a 200 ms poll. */
  watch?: FileWatchOptions;
}

export type { CompactionResult } from "./compact.js";

/**
 * The embedded durable store behind `file:` URLs: a snapshot (`<file>`, one JSON document) and
 * a log of the changes since (`<file>.log`), held in memory as one Map.
 *
 * - A write resolves only after its record is on disk: appended to the log and fdatasynced, so
 *   its cost does not grow with the store. The record is framed with a length and checksums: a
 *   crash mid-append leaves an unfinished last record, which the next writer cuts off (with a
 *   KVWS_FILE_TORN_TAIL warning); damage anywhere else is StoreCorruptError. `path` is the real
 *   file (symlinks resolved at construction), so a symlink to the store stays a symlink.
 * - Once the log outgrows max(compactBytes, half the snapshot), a compaction writes the in-memory
 *   state as a new snapshot generation (temp file, fsync, rename) without holding the lock, then,
 *   under the lock, renames it into place and starts a new log with the records appended
 *   meanwhile (journal.ts says why every step is crash-safe).
 * - A failed write rejects with a typed error (full disk, read-only, permission, too large,
 *   other I/O) and changes nothing: memory is reloaded from the files before the next access.
 * - Writes issued while a batch is being written join the next one (group commit, batch.ts).
 * - Several processes may share a file: a writer takes `<file>.lock`, replays what another
 *   process appended, applies its writes and appends them. Readers compare both files' identity
 *   (inode, size, mtime) before serving and replay the new log tail, or reload after a compaction.
 * - A file that cannot be decoded is never overwritten: opening, reading and writing reject
 *   with StoreCorruptError until someone repairs or removes it.
 *
 * It is also a plain Keyv store adapter (full keys), so raw Keyv can share it with scoped views.
 */
export class FileStore extends EventEmitter implements KeyvStoreAdapter {
  readonly path: string;
  readonly opts: { url: string; dialect: string };
  namespace?: string | undefined;
  readonly [DRIVER]: Driver;
  readonly #lock: FileLock;
  readonly #lockTimeoutMs: number;
  readonly #journal: Journal;
  #contents: Contents = emptyContents();
  /**
   * Listing, per-prefix versions and change logs over the in-memory Map. It outlives reloads:
   * each reload tells it which keys another process changed, so versions stay monotonic and
   * `changedSince` answers across them.
   */
  readonly #core = new MapCore(this.#contents.data);
  #loaded = false;
  #reloading: Promise<void> | undefined;
  readonly #queue = new WriteQueue(
    (batch) => this.#commit(batch),
    () => this.#maybeCompact(),
  );
  /** Lock-holding sections of this object, one at a time (its FileLock holds one token). */
  #section: Promise<unknown> = Promise.resolve();
  readonly #compactor: Compactor;
  /** Workspace bases whose quota limit the batch being applied set or removed: its record carries them. */
  readonly #quotasSet = new Set<string>();
  /** While a batch holds the lock, memory is ahead of the files by design: reads must not reload. */
  #writing = false;
  #closed = false;
  readonly #watch: StoreWatch;

  constructor(path: string, options: FileStoreOptions = {}) {
    super();
    this.path = storePath(path);
    this.opts = { url: `file:${this.path}`, dialect: "keyv-workspaces-file" };
    this.#lock = new FileLock(`${this.path}.lock`);
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
    this.#journal = new Journal(this.path);
    const host = {
      path: this.path,
      journal: this.#journal,
      locked: <T>(fn: () => Promise<T>, writing?: boolean) => this.#locked(fn, writing),
      entries: () => this.#entries(),
      quotas: () => new Map(this.#contents.quotas),
    };
    this.#compactor = new Compactor(host, options.compactBytes ?? 1024 * 1024);
    this.#watch = new StoreWatch(this.path, this.#core, () => this.#fresh(), options.watch);
    this[DRIVER] = this.#driver();
  }

  /** Creates the directory, removes temp files of crashed writers, and loads (or refuses) the files. */
  async open(): Promise<void> {
    try {
      await this.#open();
    } catch (error) {
      throw openError(this.path, error);
    }
  }

  async #open(): Promise<void> {
    await makeDirectory(dirname(this.path));
    await removeLeftovers(this.path, this.#lock.path);
    await this.#refresh();
  }

  // --- freshness -------------------------------------------------------------------------

  /** Undefined when memory already matches the files (the common case: two stats, no await). */
  #fresh(): Promise<void> | undefined {
    if (this.#closed) throw new StorageClosedError(`file store ${this.path} is closed`);
    if (this.#writing) return undefined;
    try {
      if (this.#isFresh()) return undefined;
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#refresh();
  }

  /** A path that cannot be looked at (ELOOP, ENOTDIR, EACCES) is a typed read error. */
  #isFresh(): boolean {
    try {
      return this.#loaded && this.#journal.fresh();
    } catch (error) {
      throw storeFileError(this.path, "read", error);
    }
  }

  async #refresh(): Promise<void> {
    while (!this.#isFresh()) {
      this.#reloading ??= this.#reload().finally(() => {
        this.#reloading = undefined;
      });
      await this.#reloading;
    }
  }

  async #reload(): Promise<void> {
    try {
      const before = this.#contents;
      const lengthOf = (key: string) => before.prefixLengths.get(key);
      const loaded = await this.#journal.load(before, this.#watch.eachRecord(before.data, lengthOf));
      if (loaded.full) {
        this.#contents = loaded.contents;
        const { prefixLengths } = loaded.contents;
        this.#core.replace(loaded.contents.data, changedKeys(before, loaded.contents), (key) => prefixLengths.get(key));
      } else {
        this.#core.replace(before.data, loaded.changed, lengthOf);
      }
      // Counted after the data: a quota another process set counts what memory holds now.
      this.#core.syncQuotas(this.#contents.quotas);
      this.#loaded = true;
    } catch (error) {
      throw storeFileError(this.path, "read", error);
    }
  }

  // --- writes ------------------------------------------------------------------------------

  #write<T>(apply: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new StorageClosedError(`file store ${this.path} is closed`));
    return this.#queue.write(apply);
  }

  /** Runs `fn` holding the lock, fresh, after this object's other lock-holding sections. */
  #locked<T>(fn: () => Promise<T>, writing = false): Promise<T> {
    const run = this.#section.then(async () => {
      await this.#lock.acquire(this.#lockTimeoutMs);
      try {
        await this.#refresh();
        this.#writing = writing;
        return await fn();
      } finally {
        this.#writing = false;
        await this.#lock.release();
      }
    });
    this.#section = run.catch(() => {});
    return run;
  }

  /** Applies and persists one batch, settling each op; on failure settles none and returns the typed error. */
  async #commit(batch: Pending[]): Promise<KeyvWorkspacesError | undefined> {
    const results: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      await this.#locked(async () => {
        this.#core.track();
        for (const op of batch) {
          try {
            results.push({ ok: true, value: op.apply() });
          } catch (error) {
            results.push({ ok: false, error });
          }
        }
        const { keys, all } = this.#core.untrack();
        await this.#persist(keys, all);
      }, true);
    } catch (error) {
      // Memory may now hold writes the files do not: forget what we know, so the next access reloads.
      this.#journal.forget();
      this.#quotasSet.clear();
      return storeFileError(this.path, "write", error);
    }
    batch.forEach((op, i) => {
      const result = results[i];
      if (result?.ok) op.resolve(result.value);
      else op.reject(result?.error);
    });
    return undefined;
  }

  async #persist(keys: Set<string>, all: boolean): Promise<void> {
    const journal = this.#journal;
    // A first write, a version-1 file, or a compaction that crashed half way: write everything once.
    const quotas = [...this.#quotasSet];
    this.#quotasSet.clear();
    if (!journal.appendable) return journal.rewrite(this.#entries(), this.#contents.quotas);
    if (keys.size === 0 && !all && quotas.length === 0) return;
    await journal.append(batchRecord(this.#contents, keys, all, (key) => this.#core.prefixLengthOf(key), quotas));
  }

  /** A batch's op: the limit goes to the file with the batch, the count is of memory, fresh under the lock. */
  #setQuota(base: string, quota: Quota | null): void {
    if (quota) this.#contents.quotas.set(base, quota);
    else this.#contents.quotas.delete(base);
    this.#core.setQuota(base, quota);
    this.#quotasSet.add(base);
  }

  #entries() {
    return liveEntries(this.#contents, (key) => this.#core.prefixLengthOf(key));
  }

  // --- compaction --------------------------------------------------------------------------

  #maybeCompact(): void {
    if (!this.#closed) this.#compactor.maybe();
  }

  /**
   * Writes the current state as a new snapshot and starts a new log with what was appended
   * meanwhile (compact.ts). Writers keep appending while the snapshot is written; they wait only
   * for its rename and the new log. Resolves to the bytes written, undefined when another
   * process compacted first. Runs on its own once the log outgrows the bound (in the background,
   * a slice of entries at a time, so under a heavy write load it takes longer); callable to force it.
   */
  compact(): Promise<CompactionResult | undefined> {
    return this.#compactor.run();
  }

  #setExpiry(key: string, ttl: number | undefined): void {
    if (typeof ttl === "number" && ttl > 0) this.#contents.expires.set(key, Date.now() + ttl);
    else this.#contents.expires.delete(key);
  }

  // --- the driver scoped views use ----------------------------------------------------------

  #read<T>(fn: () => T): Promise<T> {
    const pending = this.#fresh();
    return pending ? pending.then(fn) : Promise.resolve(fn());
  }

  #driver(): Driver {
    const access = { read: <T>(fn: () => T) => this.#read(fn), write: <T>(fn: () => T) => this.#write(fn) };
    const onTtl = (key: string, ttl: number | undefined) => this.#setExpiry(key, ttl);
    return {
      scope: (prefix, options) => mapScope(this.#core, prefix, access, onTtl, options?.quota !== undefined),
      // Set in a batch, under the lock: the count and the limit are of the file as it is then.
      quotas: {
        set: (base, quota) => this.#write(() => this.#setQuota(base, quota)),
        read: (base) => this.#read(() => this.#core.readQuota(base)),
      },
      watch: (listener) => this.#watch.add(listener),
    };
  }

  // --- plain Keyv adapter (full keys) ------------------------------------------------------

  get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return this.#read(() => this.#contents.data.get(key) as StoredData<Value> | undefined);
  }

  getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return this.#read(() => keys.map((key) => this.#contents.data.get(key) as StoredData<Value | undefined>));
  }

  has(key: string): Promise<boolean> {
    return this.#read(() => this.#contents.data.has(key));
  }

  // Raw writes know only full keys: the key layout says which prefix lists them (rare: composition with raw Keyv).
  set(key: string, value: unknown, ttl?: number): Promise<void> {
    return this.#write(() => {
      this.#core.rawSet(key, value);
      this.#setExpiry(key, ttl);
    });
  }

  delete(key: string): Promise<boolean> {
    return this.#write(() => this.#core.rawDelete(key));
  }

  deleteMany(keys: string[]): Promise<boolean> {
    return this.#write(() => keys.filter((key) => this.#core.rawDelete(key)).length === keys.length);
  }

  /** Empties the whole file (every root and workspace in it), like any Keyv adapter's clear(). */
  clear(): Promise<void> {
    return this.#write(() => {
      this.#core.rawClear();
      this.#contents.expires.clear();
    });
  }

  /** Waits for every write issued so far to reach the disk. */
  async flush(): Promise<void> {
    await this.#queue.flush();
  }

  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    this.#watch.close();
    await this.#compactor.idle;
  }

  /** Process exit: nothing async runs any more, so only an abandoned lock can be cleaned up. */
  releaseOnExit(): void {
    this.#lock.releaseSync(unlinkSync);
  }
}
