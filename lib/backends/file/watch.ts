/**
 * How a watched file store notices that another process (or another FileStore on the same
 * file) changed its files: fs.watch on the store's directory, filtered to the snapshot and the
 * log, plus a poll every FILE_WATCH_POLL_MS as a backstop.
 *
 * The directory, not the files: a compaction renames a new snapshot and a new log into place,
 * and a watch on a file follows its old inode, which then never changes again. The poll, because
 * fs.watch reports nothing on some file systems (NFS, SMB, some container mounts) and can fail to
 * start (inotify limits): it costs two stat() calls per tick, and bounds how late a change is
 * noticed where fs.watch is silent. Both keep the process alive while someone listens, as a Redis
 * subscription does (`kvws watch` runs on nothing else), and are released when the last listener
 * leaves or the store closes.
 *
 * What changed is not decided here: StoreWatch asks the store to catch up, which compares the
 * files' identity with what memory holds and replays the new log tail (store.ts, journal.ts).
 */
import { type FSWatcher, watch } from "node:fs";
import { basename, dirname } from "node:path";
import { StorageClosedError } from "../../errors.js";
import { warnOnce } from "../../warnings.js";
import type { StoreChange } from "../driver.js";
import type { MapCore } from "../map.js";

/** The poll's period: the latest a change is noticed where fs.watch reports nothing. */
export const FILE_WATCH_POLL_MS = 200;

export interface FileWatchOptions {
  pollMs?: number;
  /** false: poll only (tests, and file systems known not to report changes). */
  fsWatch?: boolean;
}

/** The running watch of one store's files; `stop()` releases the watcher and the timer. */
export class FileWatch {
  readonly #names: ReadonlySet<string>;
  readonly #noticed: () => void;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scheduled = false;

  constructor(path: string, noticed: () => void, options: FileWatchOptions = {}) {
    this.#names = new Set([basename(path), `${basename(path)}.log`]);
    this.#noticed = noticed;
    if (options.fsWatch !== false) this.#watch(dirname(path));
    this.#timer = setInterval(() => this.#schedule(), options.pollMs ?? FILE_WATCH_POLL_MS);
  }

  /** Whether fs.watch is running (the poll always is). */
  get watching(): boolean {
    return this.#watcher !== undefined;
  }

  #watch(dir: string): void {
    try {
      const watcher = watch(dir, (_event, filename) => {
        // No filename (some platforms): it may have been ours.
        if (filename === null || this.#names.has(filename)) this.#schedule();
      });
      watcher.on("error", (error) => {
        this.#unavailable(dir, error);
        watcher.close();
        if (this.#watcher === watcher) this.#watcher = undefined;
      });
      this.#watcher = watcher;
    } catch (error) {
      this.#unavailable(dir, error);
    }
  }

  #unavailable(dir: string, error: unknown): void {
    warnOnce(
      "KVWS_FILE_WATCH",
      `watch() on the file store in ${dir}: fs.watch failed (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); ` +
        `changes made by other processes are noticed by polling every ${FILE_WATCH_POLL_MS} ms instead`,
    );
  }

  /** One check per turn of the event loop, however many events an append raised. */
  #schedule(): void {
    if (this.#scheduled || this.#timer === undefined) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#timer !== undefined) this.#noticed();
    });
  }

  stop(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

type AnyMap = Map<unknown, unknown>;

/**
 * Driver.watch of one FileStore. Writes of this process reach listeners from MapCore as they are
 * applied; their records are never read back (the journal's end moves past them), so they are
 * not reported twice. Other processes' writes arrive when the file watch notices the files
 * changed and the store catches up: the log tail replayed one record at a time (eachRecord), or
 * after a compaction, memory diffed with the new files. The file watch runs only while someone
 * listens, so an unwatched store's writes pay nothing for it.
 */
export class StoreWatch {
  readonly #path: string;
  readonly #core: MapCore;
  /** Reloads when the files differ from memory; undefined when they match or a batch is being written. */
  readonly #catchUp: () => Promise<void> | undefined;
  readonly #options: FileWatchOptions | undefined;
  #listeners = 0;
  #files: FileWatch | undefined;
  #closed = false;

  constructor(path: string, core: MapCore, catchUp: () => Promise<void> | undefined, options?: FileWatchOptions) {
    this.#path = path;
    this.#core = core;
    this.#catchUp = catchUp;
    this.#options = options;
  }

  add(listener: (change: StoreChange) => void): () => void {
    if (this.#closed) throw new StorageClosedError(`file store ${this.#path} is closed`);
    const unlisten = this.#core.watch(listener);
    if (this.#listeners++ === 0) this.#files = new FileWatch(this.#path, () => this.#noticed(), this.#options);
    let listening = true;
    return () => {
      if (!listening) return;
      listening = false;
      unlisten();
      if (--this.#listeners === 0) this.#stop();
    };
  }

  /** For a reload while someone listens: reports the keys one log record wrote before the next is applied. */
  eachRecord(data: AnyMap, lengthOf: (key: string) => number | undefined) {
    if (this.#listeners === 0) return undefined;
    return (changed: Iterable<string> | undefined) => this.#core.replace(data, changed, lengthOf);
  }

  #noticed(): void {
    if (this.#closed) return;
    this.#catchUp()?.catch((error: unknown) => {
      warnOnce(
        "KVWS_FILE_WATCH_READ",
        `watch() on the file store ${this.#path}: could not read the changes of other processes, trying again on the next change: ${
          (error as Error).message
        }`,
      );
    });
  }

  #stop(): void {
    this.#files?.stop();
    this.#files = undefined;
  }

  /** The store closed: no more watching, and no new listener. */
  close(): void {
    this.#closed = true;
    this.#stop();
  }
}
