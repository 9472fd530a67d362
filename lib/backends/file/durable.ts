import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import type { Quota } from "../../quota.js";
import { snapshotHead, type Tuple } from "./format.js";
import { fsyncDir } from "./fs.js";

/**
 * The file writes behind a snapshot and a new log: temp file beside the target, written,
 * fsynced, renamed over it, directory fsynced. A crash at any point leaves the old file or the
 * new one, and a temp file that the next open removes.
 *
 * Temp files a compaction of this process is writing right now: it writes its snapshot without
 * the lock (writers keep appending meanwhile), so another store object of this process opening
 * the same file must not take it for a leftover.
 */
export const tempsInFlight = new Set<string>();

/** Entries encoded per write: bounds the time one slice of a compaction holds the event loop. */
const CHUNK = 1000;
/**
 * A compaction's snapshot is synced every this many bytes: on ext4 (data=ordered) a writer's
 * fdatasync of the log waits for every dirty page of the journal transaction, the snapshot's too,
 * so keeping few of them dirty bounds what a concurrent write waits for.
 */
const SYNC_EVERY = 512 * 1024;

const tempName = (path: string) => `${path}.tmp.${process.pid}-${randomBytes(4).toString("hex")}`;

/**
 * A new temp file beside `path`, filled by `fill` (given the handle and the bytes written so far),
 * fsynced and closed; removed again if anything fails. Resolves with its name and size.
 */
async function writeTemp(
  path: string,
  fill: (write: (buf: Buffer) => Promise<void>, handle: FileHandle) => Promise<void>,
): Promise<{ temp: string; bytes: number }> {
  const temp = tempName(path);
  tempsInFlight.add(temp);
  let bytes = 0;
  try {
    const handle = await open(temp, "wx");
    try {
      await fill(async (buf) => {
        await writeAll(handle, buf, bytes);
        bytes += buf.length;
      }, handle);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    await dropTemp(temp);
    throw error;
  }
  return { temp, bytes };
}

/** Writes a snapshot document to a new temp file, a slice of entries at a time, and fsyncs it. */
export function writeSnapshotTemp(
  path: string,
  entries: Iterable<Tuple>,
  generation: number,
  folded?: [number, number],
  quotas?: ReadonlyMap<string, Quota>,
): Promise<{ temp: string; bytes: number }> {
  return writeTemp(path, async (writeBuf, handle) => {
    let bytes = 0;
    let synced = 0;
    const write = async (text: string) => {
      const buf = Buffer.from(text, "utf8");
      await writeBuf(buf);
      bytes += buf.length;
      if (bytes - synced >= SYNC_EVERY) {
        await handle.datasync();
        synced = bytes;
      }
    };
    await write(snapshotHead(generation, folded, quotas));
    let slice: string[] = [];
    let first = true;
    const flush = async () => {
      await write((first ? "" : ",") + slice.join(","));
      first = false;
      slice = [];
    };
    for (const entry of entries) {
      slice.push(JSON.stringify(entry));
      if (slice.length >= CHUNK) await flush();
    }
    if (slice.length > 0) await flush();
    await write("]}");
  });
}

export async function dropTemp(temp: string): Promise<void> {
  tempsInFlight.delete(temp);
  await unlink(temp).catch(() => {});
}

/** Renames a written temp file over `path` and makes the rename durable. */
export async function commitTemp(temp: string, path: string): Promise<void> {
  try {
    await rename(temp, path);
  } catch (error) {
    await dropTemp(temp);
    throw error;
  } finally {
    tempsInFlight.delete(temp);
  }
  await fsyncDir(dirname(path));
}

/** Replaces the file at `path` with `parts`, durably. Returns the bytes written. */
export async function replaceFile(path: string, parts: readonly Buffer[]): Promise<number> {
  const { temp, bytes } = await writeTemp(path, async (write) => {
    for (const part of parts) await write(part);
  });
  await commitTemp(temp, path);
  return bytes;
}

type Handle = Awaited<ReturnType<typeof open>>;

export async function writeAll(handle: Handle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/** Bytes [from, to) of the file at `path`. */
export async function readRange(path: string, from: number, to: number): Promise<Buffer> {
  const handle = await open(path, "r");
  try {
    const buf = Buffer.alloc(Math.max(0, to - from));
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await handle.read(buf, done, buf.length - done, from + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return buf.subarray(0, done);
  } finally {
    await handle.close();
  }
}
