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
 * What changed is not decided here: `noticed` asks the store, which compares the files'
 * identity with what memory holds and replays the new log tail (store.ts).
 */
import { type FSWatcher, watch } from "node:fs";
import { basename, dirname } from "node:path";
import { warnOnce } from "../../warnings.js";

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
