import {
  type BigIntStats,
  closeSync,
  fdatasync as fdatasyncCb,
  fstatSync,
  ftruncateSync,
  openSync,
  writeSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { promisify } from "node:util";
import type { Quota } from "../../quota.js";
import { warnOnce } from "../../warnings.js";
import { commitTemp, dropTemp, readRange, replaceFile, writeSnapshotTemp } from "./durable.js";
import { type Contents, corrupt, decode, emptyContents, type Tuple } from "./format.js";
import { signature } from "./fs.js";
import { applyRecords, logHeader, parseHeader, parseRecords } from "./log.js";

const sigOf = (st: BigIntStats) => `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
const fdatasync = promisify(fdatasyncCb);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a compaction started from: the state it folds, to be checked again before it is committed. */
export interface Fold {
  failures: number;
  snapshotSig: string;
  logIno: bigint;
  logGeneration: number;
  offset: number;
  generation: number;
}

export interface Loaded {
  contents: Contents;
  /** Full keys that changed (undefined: anything may have; a reload compares old and new itself). */
  changed: Iterable<string> | undefined;
  /** True when `contents` is a new object read from the snapshot, false when the log tail was applied in place. */
  full: boolean;
}

/**
 * Where memory stands against the two files: the snapshot it was read from and how far into
 * the log it has replayed. Every method that writes runs under the store's lock.
 */
export class Journal {
  readonly path: string;
  readonly logPath: string;
  #snapshotSig: string | undefined;
  #logSig: string | undefined;
  #logIno: bigint | undefined;
  /** The snapshot's generation and, right after a compaction that crashed, what it folded. */
  generation = 0;
  #folded: [number, number] | undefined;
  #logGeneration: number | undefined;
  /** Offset just past the last complete record replayed; the file may hold more (an unfinished record). */
  logEnd = 0;
  snapshotSize = 0;

  constructor(path: string) {
    this.path = path;
    this.logPath = `${path}.log`;
  }

  /** Whether memory matches both files (two stats, no await). Throws what stat throws. */
  fresh(): boolean {
    return signature(this.path) === this.#snapshotSig && signature(this.logPath) === this.#logSig;
  }

  /** Batches that failed so far: memory held writes the files refused until it was read again. */
  #failures = 0;

  /** Forget what is known (a batch failed): the next access reads both files again. */
  forget(): void {
    this.#snapshotSig = undefined;
    this.#failures++;
  }

  /** Appending continues this log: the snapshot is of this format and the log continues it. */
  get appendable(): boolean {
    return this.generation >= 1 && this.#logGeneration === this.generation;
  }

  /**
   * Brings `contents` up to the files: the new log tail when only the log grew, else both files.
   * With `eachRecord`, a tail is applied one record at a time and the keys each record wrote are
   * handed over before the next is applied (a watcher sees every batch, not just the outcome);
   * `changed` is then empty.
   */
  async load(contents: Contents, eachRecord?: (changed: Iterable<string> | undefined) => void): Promise<Loaded> {
    if (signature(this.path) === this.#snapshotSig && this.#tailable()) {
      const changed = await this.#tail(contents, eachRecord);
      if (changed !== false) return { contents, changed, full: false };
    }
    return { contents: await this.#full(), changed: undefined, full: true };
  }

  #tailable(): boolean {
    return this.#logIno !== undefined && (this.appendable || this.#folded?.[0] === this.#logGeneration);
  }

  /** Applies the records appended since; false when the log is another file now (read both). */
  async #tail(
    contents: Contents,
    eachRecord: ((changed: Iterable<string> | undefined) => void) | undefined,
  ): Promise<Iterable<string> | undefined | false> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.logPath, "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw error;
    }
    try {
      const st = await handle.stat({ bigint: true });
      const size = Number(st.size);
      if (st.ino !== this.#logIno || size < this.logEnd) return false;
      const buf = await readAt(handle, this.logEnd, size - this.logEnd);
      const { payloads, end } = parseRecords(this.logPath, buf, 0, this.logEnd);
      let changed: Iterable<string> | undefined = [];
      if (eachRecord) {
        // A watcher hears every write of each record, a value written again unchanged too.
        for (const payload of payloads) eachRecord(applyRecords(this.logPath, contents, [payload], Date.now(), true));
      } else if (payloads.length > 0) changed = applyRecords(this.logPath, contents, payloads);
      this.logEnd += end;
      this.#logSig = sigOf(st);
      return changed;
    } finally {
      await handle.close();
    }
  }

  async #full(): Promise<Contents> {
    for (let attempt = 0; ; attempt++) {
      const snapshot = await readSnapshot(this.path);
      const log = await readLog(this.logPath);
      const { contents } = snapshot;
      let start = -1;
      let generation: number | undefined;
      if (log) {
        const header = parseHeader(this.logPath, log.buf);
        generation = header.generation;
        if (generation === contents.generation) start = header.start;
        else if (contents.folded?.[0] === generation) {
          start = contents.folded[1];
          if (start < header.start || start > log.buf.length) {
            throw corrupt(this.logPath, `the snapshot folded it up to byte ${start}, which is no record boundary`);
          }
        } else if (generation > contents.generation) {
          // Between our two reads another process may have compacted: read both again.
          if (attempt < 20) {
            await sleep(attempt);
            continue;
          }
          throw corrupt(
            this.logPath,
            `the log continues generation ${generation} but the snapshot ${this.path} is generation ` +
              `${contents.generation} (an older snapshot put back over a newer store?)`,
          );
        }
      }
      let end = log?.buf.length ?? 0;
      if (log && start >= 0) {
        const parsed = parseRecords(this.logPath, log.buf, start);
        applyRecords(this.logPath, contents, parsed.payloads);
        end = parsed.end;
      }
      this.#snapshotSig = snapshot.sig;
      this.snapshotSize = snapshot.size;
      this.generation = contents.generation;
      this.#folded = contents.folded;
      this.#logSig = log?.sig ?? "absent";
      this.#logIno = log?.ino;
      this.#logGeneration = generation;
      this.logEnd = end;
      return contents;
    }
  }

  /**
   * Appends one batch's record and fdatasyncs the log; an unfinished record left by a crash is
   * cut off first. Open, write and close run synchronously (page cache, microseconds): only the
   * fdatasync waits on the disk, off the event loop.
   */
  async append(record: Buffer): Promise<void> {
    const fd = openSync(this.logPath, "r+");
    try {
      const st = fstatSync(fd, { bigint: true });
      if (st.ino !== this.#logIno) throw new Error(`${this.logPath} was replaced while this process held the lock`);
      if (Number(st.size) > this.logEnd) {
        warnOnce(
          "KVWS_FILE_TORN_TAIL",
          `file store log ${this.logPath}: dropped ${Number(st.size) - this.logEnd} bytes after byte ${this.logEnd}, ` +
            "an unfinished record of a write that crashed or failed before it was acknowledged",
        );
        ftruncateSync(fd, this.logEnd);
      }
      try {
        for (let done = 0; done < record.length; ) {
          done += writeSync(fd, record, done, record.length - done, this.logEnd + done);
        }
        await fdatasync(fd);
      } catch (error) {
        // Leave no half record behind for the next append to land after.
        try {
          ftruncateSync(fd, this.logEnd);
        } catch {}
        throw error;
      }
      this.logEnd += record.length;
      this.#logSig = sigOf(fstatSync(fd, { bigint: true }));
    } finally {
      closeSync(fd);
    }
  }

  /** Writes the whole state as a new snapshot generation and starts its log (first write, recovery). */
  async rewrite(entries: Iterable<Tuple>, quotas: ReadonlyMap<string, Quota>): Promise<void> {
    const generation = this.generation + 1;
    const { temp, bytes } = await writeSnapshotTemp(this.path, entries, generation, undefined, quotas);
    await commitTemp(temp, this.path);
    this.#setSnapshot(generation, undefined, bytes);
    await this.#startLog(generation, []);
  }

  /** A compaction's starting point; the caller holds the lock, memory is fresh and matches it. */
  fold(): Fold | undefined {
    if (!this.appendable || this.#snapshotSig === undefined || this.#logIno === undefined) return undefined;
    const logGeneration = this.#logGeneration as number;
    const { generation, logEnd: offset } = this;
    return {
      failures: this.#failures,
      snapshotSig: this.#snapshotSig,
      logIno: this.#logIno,
      logGeneration,
      offset,
      generation,
    };
  }

  /**
   * Commits a compaction's snapshot (written without the lock) and starts the new log with
   * the records appended since it began. The caller holds the lock and has refreshed. False
   * (and the temp file removed) when another process compacted first or a batch failed since.
   */
  async finishFold(fold: Fold, temp: string, bytes: number): Promise<number | false> {
    const same = this.#snapshotSig === fold.snapshotSig && this.#logIno === fold.logIno;
    if (!same || fold.failures !== this.#failures || !this.appendable) {
      await dropTemp(temp);
      return false;
    }
    const tail = await readRange(this.logPath, fold.offset, this.logEnd);
    await commitTemp(temp, this.path);
    // Readers now see the new snapshot with the old log, and replay it from fold.offset.
    this.#setSnapshot(fold.generation + 1, [fold.logGeneration, fold.offset], bytes);
    return (await this.#startLog(fold.generation + 1, [tail])) + bytes;
  }

  #setSnapshot(generation: number, folded: [number, number] | undefined, size: number): void {
    this.generation = generation;
    this.#folded = folded;
    this.snapshotSize = size;
    this.#snapshotSig = signature(this.path);
  }

  async #startLog(generation: number, records: Buffer[]): Promise<number> {
    const header = logHeader(generation);
    const bytes = await replaceFile(this.logPath, [header, ...records]);
    const handle = await open(this.logPath, "r");
    try {
      const st = await handle.stat({ bigint: true });
      this.#logIno = st.ino;
      this.#logSig = sigOf(st);
    } finally {
      await handle.close();
    }
    this.#logGeneration = generation;
    this.#folded = undefined;
    this.logEnd = bytes;
    return bytes;
  }
}

async function readAt(handle: Awaited<ReturnType<typeof open>>, from: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, from + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

async function readSnapshot(path: string): Promise<{ contents: Contents; sig: string; size: number }> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    return { contents: emptyContents(), sig: "absent", size: 0 };
  }
  try {
    // Stat and read the same open file, so the signature describes exactly the bytes we decode.
    const st = await handle.stat({ bigint: true });
    const text = await handle.readFile("utf8");
    return { contents: decode(path, text), sig: sigOf(st), size: Number(st.size) };
  } finally {
    await handle.close();
  }
}

async function readLog(path: string): Promise<{ buf: Buffer; sig: string; ino: bigint } | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    return undefined;
  }
  try {
    const st = await handle.stat({ bigint: true });
    return { buf: await handle.readFile(), sig: sigOf(st), ino: st.ino };
  } finally {
    await handle.close();
  }
}
