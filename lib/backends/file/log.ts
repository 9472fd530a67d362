import { crc32 } from "node:zlib";
import { type Contents, corrupt, storedQuota, type Tuple } from "./format.js";

/**
 * `<file>.log`: the changes since the snapshot, one record per write batch, appended and
 * fdatasynced (a durable write costs one append, whatever the store holds).
 *
 * A record is framed as `length u32 | crc32(payload) u32 | crc32(the first 8 bytes) u32 | payload`
 * (big-endian). The first record is the header `{"format":"keyv-workspaces/file-log","version":1,
 * "generation":G}`; each later one is a JSON array of operations, each a full value, so replaying
 * a record twice changes nothing: `[key, value, expiresAt|null, prefixLength?]` sets, `[key]`
 * deletes, `[]` empties the store. `[QUOTA_KEY, {"base", "quota"}, 0]` sets (quota null: removes)
 * a workspace's quota limit: an expiry of 0 makes readers from before quotas take it for the delete of
 * a key that never exists, so they skip it rather than read it as data (or refuse the file).
 *
 * What the checks tell apart: an unfinished final record (a crash mid-append, or an append still
 * in progress seen by a reader) is a record whose header is valid but whose bytes run past the end,
 * a header cut short, zeros to the end (a file system that grew the file before writing it), or a
 * final record whose payload checksum fails. Anything else that fails a check, and anything after
 * it, is damage: StoreCorruptError, never silently dropped.
 */
export const LOG_FORMAT = "keyv-workspaces/file-log";
/** The key of quota operations: a NUL first, which no key the library writes or Keyv namespaces start with. */
export const QUOTA_KEY = "\u0000kvws-quota";
const FRAME = 12;

export type LogOp = Tuple | [string] | [];

export function frame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeUInt32BE(crc32(payload), 4);
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
  payload.copy(out, FRAME);
  return out;
}

export function logHeader(generation: number): Buffer {
  return frame(Buffer.from(JSON.stringify({ format: LOG_FORMAT, version: 1, generation })));
}

export interface Parsed {
  /** Payloads of the complete records, in order. */
  payloads: Buffer[];
  /** Offset (in the buffer) just past the last complete record. */
  end: number;
}

const allZero = (buf: Buffer, from: number) => {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
};

/** The complete records of `buf` from `from`; an unfinished tail is left out, damage throws. `base` = buf's offset in the file. */
export function parseRecords(path: string, buf: Buffer, from: number, base = 0): Parsed {
  const payloads: Buffer[] = [];
  let at = from;
  while (at < buf.length) {
    const left = buf.length - at;
    if (left < FRAME) break;
    const length = buf.readUInt32BE(at);
    if (buf.readUInt32BE(at + 8) !== crc32(buf.subarray(at, at + 8))) {
      if (allZero(buf, at)) break;
      throw corrupt(path, `the record at byte ${base + at} has a damaged header`);
    }
    if (length > left - FRAME) break;
    const payload = buf.subarray(at + FRAME, at + FRAME + length);
    if (buf.readUInt32BE(at + 4) !== crc32(payload)) {
      if (at + FRAME + length === buf.length) break;
      throw corrupt(path, `the record at byte ${base + at} fails its checksum`);
    }
    payloads.push(payload);
    at += FRAME + length;
  }
  return { payloads, end: at };
}

/** The log's generation and where its first change record starts. */
export function parseHeader(path: string, buf: Buffer): { generation: number; start: number } {
  const { payloads } = parseRecords(path, buf.subarray(0, Math.min(buf.length, 64 * 1024)), 0);
  const first = payloads[0];
  if (!first) throw corrupt(path, "the log has no complete header");
  let head: { format?: unknown; version?: unknown; generation?: unknown };
  try {
    head = JSON.parse(first.toString("utf8"));
  } catch (error) {
    throw corrupt(path, "the log header is not JSON", error);
  }
  if (head.format !== LOG_FORMAT || head.version !== 1) throw corrupt(path, "not a keyv-workspaces log");
  if (!Number.isSafeInteger(head.generation) || (head.generation as number) < 1) {
    throw corrupt(path, "the log header has no generation");
  }
  return { generation: head.generation as number, start: FRAME + first.length };
}

/**
 * One batch's record: what each touched key is now (`all`: the batch emptied the store first),
 * and the quota of each workspace base in `quotas` (whose limit the batch set or removed).
 */
export function batchRecord(
  contents: Contents,
  touched: Iterable<string>,
  all: boolean,
  prefixLengthOf: (key: string) => number | undefined,
  quotas: Iterable<string> = [],
): Buffer {
  const ops: Array<LogOp | [string, unknown, 0]> = all ? [[]] : [];
  const { data, expires } = contents;
  for (const base of quotas) ops.push([QUOTA_KEY, { base, quota: contents.quotas.get(base) ?? null }, 0]);
  for (const key of touched) {
    if (data.has(key)) {
      const at = expires.get(key) ?? null;
      const prefixLength = prefixLengthOf(key);
      ops.push(prefixLength === undefined ? [key, data.get(key), at] : [key, data.get(key), at, prefixLength]);
    } else {
      expires.delete(key);
      if (!all) ops.push([key]);
    }
  }
  return frame(Buffer.from(JSON.stringify(ops), "utf8"));
}

/**
 * Applies records to `contents`; returns the full keys whose value or expiry changed (`touched`:
 * every key the records wrote, a value written again unchanged too), or undefined when a record
 * emptied the store (anything may have changed).
 */
export function applyRecords(path: string, contents: Contents, payloads: Buffer[], now = Date.now(), touched = false) {
  const { data, expires, prefixLengths } = contents;
  const before = new Map<string, [unknown, number | undefined] | undefined>();
  let reset = false;
  const remember = (key: string) => {
    if (!reset && !before.has(key)) before.set(key, data.has(key) ? [data.get(key), expires.get(key)] : undefined);
  };
  for (const payload of payloads) {
    let ops: unknown;
    try {
      ops = JSON.parse(payload.toString("utf8"));
    } catch (error) {
      throw corrupt(path, "a log record is not JSON", error);
    }
    if (!Array.isArray(ops)) throw corrupt(path, "a log record is not a list of operations");
    for (const op of ops as unknown[]) {
      if (!Array.isArray(op) || (op.length > 0 && typeof op[0] !== "string")) {
        throw corrupt(path, "a log operation is malformed");
      }
      if (op.length === 0) {
        reset = true;
        data.clear();
        expires.clear();
        prefixLengths.clear();
        continue;
      }
      const key = op[0] as string;
      if (key === QUOTA_KEY) {
        const entry = (op[1] ?? {}) as { base?: unknown; quota?: unknown };
        const [base, quota] = storedQuota(path, entry.base, entry.quota);
        if (quota) contents.quotas.set(base, quota);
        else contents.quotas.delete(base);
        continue;
      }
      remember(key);
      const at = op[2];
      if (op.length === 1 || (typeof at === "number" && at <= now)) {
        data.delete(key);
        expires.delete(key);
        prefixLengths.delete(key);
        continue;
      }
      data.set(key, op[1]);
      if (typeof at === "number") expires.set(key, at);
      else expires.delete(key);
      const length = op[3];
      if (Number.isSafeInteger(length) && length > 0 && length < key.length) prefixLengths.set(key, length);
      else prefixLengths.delete(key);
    }
  }
  if (reset) return undefined;
  if (touched) return [...before.keys()];
  const changed: string[] = [];
  for (const [key, was] of before) {
    const is = data.has(key) ? [data.get(key), expires.get(key)] : undefined;
    if (was?.[0] !== is?.[0] || was?.[1] !== is?.[1] || (was === undefined) !== (is === undefined)) {
      changed.push(key);
    }
  }
  return changed;
}
