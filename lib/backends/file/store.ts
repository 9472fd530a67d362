import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { unlinkSync } from "node:fs";
import { open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { KeyvStoreAdapter, StoredData } from "keyv";
import {
  InvalidConfigError,
  KeyvWorkspacesError,
  StorageClosedError,
  StoreCorruptError,
  ValueTooLargeError,
} from "../../errors.js";
import { DRIVER, type Driver } from "../driver.js";
import { MapCore } from "../map.js";
import { mapScope } from "../map-scope.js";
import { type Contents, changedKeys, decode, emptyContents, encode } from "./format.js";
import { fsyncDir, makeDirectory, signature, storeFileError, storePath } from "./fs.js";
import { FileLock, lockBusyHere, processAlive } from "./lock.js";

export interface FileStoreOptions {
  /** How long a write waits for another process's lock before failing with ERR_STORE_LOCKED; default 10 s. */
  lockTimeoutMs?: number;
}

interface Pending {
  apply(): unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * The embedded durable store behind `file:` URLs: the whole store is one JSON file, held in
 * memory and rewritten on every (batched) write.
 *
 * - A write resolves only after its bytes are on disk: temp file in the same directory,
 *   fsync, rename over the store, fsync of the directory. A crash leaves the old file or the
 *   new one, never a torn one. `path` is the real file (symlinks resolved at construction),
 *   so a symlink to the store stays a symlink.
 * - A failed write rejects with a typed error (full disk, read-only, permission, too large,
 *   other I/O) and changes nothing: memory is reloaded from the file before the next access.
 * - Writes issued while a rewrite is in progress are batched into the next one (group commit).
 * - Several processes may share a file: a writer takes `<file>.lock`, re-reads the file if
 *   another process changed it, applies its writes and renames the result into place.
 *   Readers compare the file's identity (inode, size, mtime) before serving and reload if it changed.
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
  #contents: Contents = emptyContents();
  /**
   * Listing, per-prefix versions and change logs over the in-memory Map. It outlives reloads:
   * each reload tells it which keys another process changed, so versions stay monotonic and
   * `changedSince` answers across them.
   */
  readonly #core = new MapCore(this.#contents.data);
  #signature: string | undefined;
  #reloading: Promise<void> | undefined;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  /** While a batch holds the lock, memory is ahead of the file by design: reads must not reload. */
  #writing = false;
  #closed = false;

  constructor(path: string, options: FileStoreOptions = {}) {
    super();
    this.path = storePath(path);
    this.opts = { url: `file:${this.path}`, dialect: "keyv-workspaces-file" };
    this.#lock = new FileLock(`${this.path}.lock`);
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
    this[DRIVER] = this.#driver();
  }

  /** Creates the directory, removes temp files of crashed writers, and loads (or refuses) the file. */
  async open(): Promise<void> {
    try {
      await this.#open();
    } catch (error) {
      if (error instanceof StoreCorruptError || error instanceof ValueTooLargeError) throw error;
      const errno = error instanceof KeyvWorkspacesError ? error.cause : error;
      const why = (errno as NodeJS.ErrnoException).code ?? (errno as Error).message;
      throw new InvalidConfigError(
        "url",
        `cannot open the file store at ${this.path} (${why}): the url must name a file in a directory this process can create and write`,
        { cause: error },
      );
    }
  }

  async #open(): Promise<void> {
    const dir = dirname(this.path);
    await makeDirectory(dir);
    const base = basename(this.path);
    for (const entry of await readdir(dir)) {
      const match = entry.startsWith(`${base}.`)
        ? /^\.(?:tmp|lock)\.(\d+)-[0-9a-f]+$/.exec(entry.slice(base.length))
        : null;
      // Temp and aside files exist only while their writer takes or holds the lock, so with our
      // pid and no lock of ours busy here they are leftovers of an earlier process with that pid.
      const pid = Number(match?.[1]);
      const ours = pid === process.pid;
      if (match && (ours ? !lockBusyHere(this.#lock.path) : !processAlive(pid))) {
        await unlink(join(dir, entry)).catch(() => {});
      }
    }
    await this.#refresh();
  }

  // --- freshness -------------------------------------------------------------------------

  /** Undefined when memory already matches the file (the common case: one stat, no await). */
  #fresh(): Promise<void> | undefined {
    if (this.#closed) throw new StorageClosedError(`file store ${this.path} is closed`);
    if (this.#writing) return undefined;
    let current: string;
    try {
      current = this.#currentSignature();
    } catch (error) {
      return Promise.reject(error);
    }
    return current === this.#signature ? undefined : this.#refresh();
  }

  /** The file's signature; a path that cannot be looked at (ELOOP, ENOTDIR, EACCES) is a typed read error. */
  #currentSignature(): string {
    try {
      return signature(this.path);
    } catch (error) {
      throw storeFileError(this.path, "read", error);
    }
  }

  async #refresh(): Promise<void> {
    while (this.#currentSignature() !== this.#signature) {
      this.#reloading ??= this.#reload().finally(() => {
        this.#reloading = undefined;
      });
      await this.#reloading;
    }
  }

  async #reload(): Promise<void> {
    try {
      await this.#readFile();
    } catch (error) {
      throw storeFileError(this.path, "read", error);
    }
  }

  async #readFile(): Promise<void> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.path, "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      this.#replace(emptyContents(), "absent");
      return;
    }
    try {
      // Stat and read the same open file, so the signature describes exactly the bytes we decode.
      const st = await handle.stat({ bigint: true });
      const text = await handle.readFile("utf8");
      this.#replace(decode(this.path, text), `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`);
    } finally {
      await handle.close();
    }
  }

  #replace(contents: Contents, sig: string): void {
    const before = this.#contents;
    this.#contents = contents;
    this.#core.replace(contents.data, changedKeys(before, contents), (key) => contents.prefixLengths.get(key));
    this.#signature = sig;
  }

  // --- writes ------------------------------------------------------------------------------

  #write<T>(apply: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new StorageClosedError(`file store ${this.path} is closed`));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ apply, resolve: resolve as (value: unknown) => void, reject });
      this.#startFlush();
    });
  }

  #startFlush(): void {
    this.#flushing ??= this.#flush().finally(() => {
      this.#flushing = undefined;
      // A caller awaiting the last batch may have queued its next write before this ran.
      if (this.#queue.length > 0) this.#startFlush();
    });
  }

  async #flush(): Promise<void> {
    // Let writes issued in the same turn (Promise.all, setMany loops) join the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0);
      const failure = await this.#commit(batch);
      if (failure instanceof ValueTooLargeError && batch.length > 1) {
        // One oversized write must not take down the writes that happened to share its batch:
        // each is tried alone (memory is reloaded first, so none of the refused batch lingers).
        for (const op of batch) {
          const alone = await this.#commit([op]);
          if (alone) op.reject(alone);
        }
      } else if (failure) {
        for (const op of batch) op.reject(failure);
      }
    }
  }

  /** Applies and persists one batch, settling each op; on failure settles none and returns the typed error. */
  async #commit(batch: Pending[]): Promise<KeyvWorkspacesError | undefined> {
    const results: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      await this.#lock.acquire(this.#lockTimeoutMs);
      try {
        await this.#refresh();
        this.#writing = true;
        for (const op of batch) {
          try {
            results.push({ ok: true, value: op.apply() });
          } catch (error) {
            results.push({ ok: false, error });
          }
        }
        await this.#persist();
      } finally {
        this.#writing = false;
        await this.#lock.release();
      }
    } catch (error) {
      // Memory may now hold writes the file does not: forget what we know, so the next access reloads.
      this.#signature = undefined;
      return storeFileError(this.path, "write", error);
    }
    batch.forEach((op, i) => {
      const result = results[i];
      if (result?.ok) op.resolve(result.value);
      else op.reject(result?.error);
    });
    return undefined;
  }

  async #persist(): Promise<void> {
    const text = encode(this.#contents, (key) => this.#core.prefixLengthOf(key));
    const temp = `${this.path}.tmp.${process.pid}-${randomBytes(4).toString("hex")}`;
    const handle = await open(temp, "wx");
    try {
      try {
        await handle.writeFile(text, "utf8");
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
    await fsyncDir(dirname(this.path));
    this.#signature = signature(this.path);
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
    return { scope: (prefix) => mapScope(this.#core, prefix, access, onTtl) };
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
    while (this.#flushing) await this.#flushing.catch(() => {});
  }

  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
  }

  /** Process exit: nothing async runs any more, so only an abandoned lock can be cleaned up. */
  releaseOnExit(): void {
    this.#lock.releaseSync(unlinkSync);
  }
}
