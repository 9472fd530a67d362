/**
 * How one vector is checked and stored. A stored row is the JSON object
 * `{ v: <base64 of little-endian float32 bytes>, m: <metadata> }`: about 5.3 characters per
 * dimension instead of ~20 for a JSON number array, and it decodes with one native base64
 * pass straight into the search matrix. Rows written by earlier versions as `{ v: number[] }`
 * still load.
 */
import { encodeValue, needsKeyvText } from "../collections/codec.js";
import { InvalidVectorError } from "../errors.js";

export interface StoredRow {
  v: string;
  m: Record<string, unknown>;
}

export const LITTLE_ENDIAN = new Uint8Array(new Float32Array([1]).buffer)[3] === 0x3f;

/** Checks a caller's vector and rounds it to float32, refusing what float32 cannot hold. */
export function toFloat32(vector: ArrayLike<number>, what = "vector"): Float32Array {
  if (vector === null || typeof vector !== "object" || typeof vector.length !== "number") {
    throw new InvalidVectorError(`${what} must be an array or typed array of numbers`);
  }
  if (vector.length === 0) throw new InvalidVectorError(`${what} is empty`);
  const out = new Float32Array(vector.length);
  for (let i = 0; i < vector.length; i++) {
    const x = vector[i];
    if (typeof x !== "number" || !Number.isFinite(x)) {
      throw new InvalidVectorError(`${what} component ${i} is ${String(x)}; components must be finite numbers`);
    }
    const f = Math.fround(x);
    if (!Number.isFinite(f)) {
      throw new InvalidVectorError(`${what} component ${i} is ${x}, beyond float32 range (±3.4e38)`);
    }
    out[i] = f;
  }
  return out;
}

function swapWords(bytes: Uint8Array): void {
  for (let i = 0; i + 3 < bytes.length; i += 4) {
    const a = bytes[i]!;
    const b = bytes[i + 1]!;
    bytes[i] = bytes[i + 3]!;
    bytes[i + 1] = bytes[i + 2]!;
    bytes[i + 2] = b;
    bytes[i + 3] = a;
  }
}

export function encodeVector(vector: Float32Array): string {
  const bytes = Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
  if (LITTLE_ENDIAN) return bytes.toString("base64");
  const copy = Buffer.from(bytes);
  swapWords(copy);
  return copy.toString("base64");
}

/**
 * A row's stored text, byte for byte what `encodeValue({ v, m })` writes: base64 needs no escaping
 * and never starts with ":", so only the metadata is serialised (stringifying and scanning the
 * vector's text was a third of an ingest's own time at d = 384).
 */
export function encodeRow(values: Float32Array, meta: Record<string, unknown>): string {
  const metaText = JSON.stringify(meta);
  if (needsKeyvText(metaText)) return encodeValue({ v: encodeVector(values), m: meta } satisfies StoredRow);
  return `{"value":{"v":"${encodeVector(values)}","m":${metaText}}}`;
}

/** Dimensions of a stored vector, or undefined when `v` is not one. */
export function storedDimensions(v: unknown): number | undefined {
  if (typeof v === "string") {
    // Unpadded or padded base64 of 4-byte words: length is a multiple of 4 when padded.
    if (v.length === 0 || v.length % 4 !== 0) return undefined;
    const pad = v.endsWith("==") ? 2 : v.endsWith("=") ? 1 : 0;
    const bytes = (v.length / 4) * 3 - pad;
    return bytes % 4 === 0 && bytes > 0 ? bytes / 4 : undefined;
  }
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number" && Number.isFinite(x))) return v.length;
  return undefined;
}

/** Writes the stored vector's float32 values into `target` (length = its dimensions). */
export function decodeInto(v: string | number[], target: Float32Array): void {
  if (typeof v !== "string") {
    for (let i = 0; i < target.length; i++) target[i] = v[i]!;
    return;
  }
  const bytes = new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
  const written = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).write(v, "base64");
  if (written !== bytes.length) throw new InvalidVectorError("stored vector is truncated");
  if (!LITTLE_ENDIAN) swapWords(bytes);
}

export function decodeVector(v: string | number[]): Float32Array | undefined {
  const d = storedDimensions(v);
  if (d === undefined) return undefined;
  const out = new Float32Array(d);
  decodeInto(v, out);
  return out;
}

/** The row's parts, or undefined when the value is not a vector row. */
export function parseRow(value: unknown): { v: string | number[]; m: Record<string, unknown>; d: number } | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const { v, m } = value as { v?: unknown; m?: unknown };
  const d = storedDimensions(v);
  if (d === undefined) return undefined;
  const metadata = m !== null && typeof m === "object" && !Array.isArray(m) ? (m as Record<string, unknown>) : {};
  return { v: v as string | number[], m: metadata, d };
}

function unescapeString(text: string): unknown {
  if (text.startsWith(":base64:")) return Buffer.from(text.slice(8), "base64");
  return text.startsWith(":") ? text.slice(1) : text;
}

/**
 * Undoes @keyv/serialize's escaping in place: ":base64:…" strings were Buffers, other ":…"
 * strings gained a ":". Walks with its own stack: JSON.parse builds any depth without
 * recursing, and a stored value nested too deep must come back as data (which search then
 * skips), not as a RangeError.
 */
function unescapeKeyv(node: unknown): unknown {
  if (typeof node === "string") return unescapeString(node);
  if (node === null || typeof node !== "object") return node;
  const stack: Array<Record<string, unknown>> = [node as Record<string, unknown>];
  for (let record = stack.pop(); record; record = stack.pop()) {
    for (const key of Object.keys(record)) {
      const field = record[key];
      if (typeof field === "string") {
        if (field.startsWith(":")) record[key] = unescapeString(field);
      } else if (field !== null && typeof field === "object") {
        stack.push(field as Record<string, unknown>);
      }
    }
  }
  return node;
}

/**
 * What Keyv's default deserializer returns for `text`, without its per-node reviver (which
 * dominates load time for large rows). A row's `v` is base64 or numbers, never escaped, so
 * only the metadata needs walking.
 */
export function parseKeyvText(text: string): unknown {
  const row = parseRowText(text);
  if (row) return row;
  const data = JSON.parse(text) as unknown;
  if (data === null || typeof data !== "object") return unescapeKeyv(data);
  const value = (data as { value?: unknown }).value;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    (data as { value?: unknown }).value = unescapeKeyv(value);
    return data;
  }
  for (const key of Object.keys(value)) {
    const field = (value as Record<string, unknown>)[key];
    if (key === "v" && (typeof field !== "string" || !field.startsWith(":"))) continue;
    (value as Record<string, unknown>)[key] = unescapeKeyv(field);
  }
  return data;
}

const ROW_HEAD = '{"value":{"v":"';

/**
 * The shape upsert writes, `{"value":{"v":"<base64>","m":<metadata>}}`, read without scanning
 * the base64 as JSON (it holds no quotes or escapes). Anything else returns undefined.
 */
function parseRowText(text: string): { value: { v: string; m: unknown } } | undefined {
  if (!text.startsWith(ROW_HEAD) || !text.endsWith("}}")) return undefined;
  const end = text.indexOf('"', ROW_HEAD.length);
  if (end < 0 || !text.startsWith(',"m":', end + 1)) return undefined;
  const metaText = text.slice(end + 6, text.length - 2);
  let m: unknown;
  try {
    m = metaText === "{}" ? {} : unescapeKeyv(JSON.parse(metaText));
  } catch {
    return undefined;
  }
  return { value: { v: text.slice(ROW_HEAD.length, end), m } };
}
