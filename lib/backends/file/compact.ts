import { readdir, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Quota } from "../../quota.js";
import { warnOnce } from "../../warnings.js";
import { tempsInFlight, writeSnapshotTemp } from "./durable.js";
import type { Tuple } from "./format.js";
import { storeFileError } from "./fs.js";
import type { Journal } from "./journal.js";
import { lockBusyHere, processAlive } from "./lock.js";

/** What one compaction wrote: the new snapshot and log, i.e. the disk it took beside the old files. */
export interface CompactionResult {
  bytes: number;
}

/** What a compaction needs of its store. */
export interface CompactionHost {
  readonly path: string;
  readonly journal: Journal;
  /** Runs `fn` holding the store's lock, memory fresh; `writing` keeps reads from reloading meanwhile. */
  locked<T>(fn: () => Promise<T>, writing?: boolean): Promise<T>;
  /** The live entries of memory, produced lazily as the snapshot is written (see compactStore). */
  entries(): Iterable<Tuple>;
  /** The quota limits now (a copy: later changes are in the log after the fold). */
  quotas(): ReadonlyMap<string, Quota>;
}

/**
 * One compaction: (1) under the lock, memory is fresh and matches the log up to its end: note
 * that offset; (2) without the lock, write memory as snapshot generation G+1 saying it folds log
 * G up to that offset, while writers keep appending. Memory is read as it is when each slice is
 * written, not copied (a copy of 100k entries stalls the event loop for ~100 ms): a fuzzy
 * snapshot, exact because every key that changed after the offset has a full-value record after
 * it, which replay applies over the snapshot. A batch that failed meanwhile (memory held a write
 * the log refused) cancels the compaction. (3) Under the lock, rename it
 * into place and start log G+1 with the records appended since (1). A crash before (3) leaves a
 * temp file the next open removes; between its rename and the new log, readers replay the old
 * log from the offset, and the next writer writes a full snapshot. Undefined when there was
 * nothing to fold or another process compacted first.
 */
export async function compactStore(host: CompactionHost): Promise<CompactionResult | undefined> {
  const { journal } = host;
  try {
    const start = await host.locked(async () => {
      const fold = journal.fold();
      return fold && { fold, entries: host.entries(), quotas: host.quotas() };
    });
    if (!start) return undefined;
    const { fold, entries, quotas } = start;
    const folded: [number, number] = [fold.logGeneration, fold.offset];
    const { temp, bytes } = await writeSnapshotTemp(host.path, entries, fold.generation + 1, folded, quotas);
    const written = await host.locked(() => journal.finishFold(fold, temp, bytes), true);
    return written === false ? undefined : { bytes: written };
  } catch (error) {
    journal.forget();
    throw storeFileError(host.path, "compact", error);
  }
}

/**
 * A store's compactions: one at a time, started on their own once the log outgrows its bound
 * (in the background: a failure is told once and pushes the next try back), or forced.
 */
export class Compactor {
  readonly #host: CompactionHost;
  readonly #compactBytes: number;
  /** Settles (never rejects) when the last compaction started has ended. */
  #compacting: Promise<void> | undefined;
  /** The log size at which the next automatic compaction may start (pushed back after a failed one). */
  #compactAt = 0;

  constructor(host: CompactionHost, compactBytes: number) {
    this.#host = host;
    this.#compactBytes = compactBytes;
  }

  /** Settles when no compaction runs. */
  get idle(): Promise<void> | undefined {
    return this.#compacting;
  }

  maybe(): void {
    const { journal, path } = this.#host;
    if (this.#compacting || !dueForCompaction(journal, this.#compactBytes, this.#compactAt)) return;
    this.run().catch((error: unknown) => {
      this.#compactAt = compactionFailed(path, journal, this.#compactBytes, error);
    });
  }

  run(): Promise<CompactionResult | undefined> {
    // One at a time: a call while one runs starts another after it (its snapshot may predate the call).
    const run = (this.#compacting ?? Promise.resolve()).then(() => compactStore(this.#host));
    const settle = () => {
      if (this.#compacting === done) this.#compacting = undefined;
    };
    const done: Promise<void> = run.then(settle, settle);
    this.#compacting = done;
    return run;
  }
}

/**
 * Whether the log has outgrown its bound: max(compactBytes, half the snapshot, a bound pushed
 * back by failures). Half the snapshot keeps an open to at most ~1.5 snapshots of parsing, and
 * the bytes compaction rewrites to about two per byte written.
 */
export function dueForCompaction(journal: Journal, compactBytes: number, pushedTo: number): boolean {
  return journal.logEnd >= Math.max(compactBytes, journal.snapshotSize / 2, pushedTo);
}

/** A failed automatic compaction is told once; the next try waits until the log grew by another bound. */
export function compactionFailed(path: string, journal: Journal, compactBytes: number, error: unknown): number {
  warnOnce("KVWS_FILE_COMPACTION_FAILED", `file store ${path}: compaction failed: ${(error as Error).message}`);
  return journal.logEnd + Math.max(compactBytes, journal.snapshotSize / 2);
}

/**
 * Removes temp and lock-aside files of writers that are gone. They exist only while their writer
 * takes or holds the lock, or while a compaction of a live process writes its snapshot; with our
 * pid and none of ours busy here they are leftovers of an earlier process that had that pid.
 */
export async function removeLeftovers(path: string, lockPath: string): Promise<void> {
  const dir = dirname(path);
  const base = basename(path);
  for (const entry of await readdir(dir)) {
    const match = entry.startsWith(`${base}.`)
      ? /^\.(?:tmp|log\.tmp|lock)\.(\d+)-[0-9a-f]+$/.exec(entry.slice(base.length))
      : null;
    if (!match) continue;
    const pid = Number(match[1]);
    const full = join(dir, entry);
    const inUse = pid === process.pid ? lockBusyHere(lockPath) || tempsInFlight.has(full) : processAlive(pid);
    if (!inUse) await unlink(full).catch(() => {});
  }
}
