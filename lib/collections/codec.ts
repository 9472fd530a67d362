/**
 * Values as the collections store them: exactly what Keyv writes (`{"value":…}` through Keyv's own
 * serializer), so `collection()` and the collections read each other's data byte for byte.
 */
import { Keyv } from "keyv";
import { InvalidValueError, ValueTooLargeError } from "../errors.js";
import { MAX_DEPTH } from "./json.js";

const defaults = new Keyv();
type Serialize = (data: unknown) => string;
type Deserialize = (data: string) => unknown;
const serialize = defaults.serialize as unknown as Serialize;
const deserialize = defaults.deserialize as unknown as Deserialize;

const STRUCTURE = /[{}[\]"\\]/g;

/**
 * Nesting depth of JSON text, counted outside strings; stops counting once past `limit`. A regular
 * expression jumps between the characters that matter, far faster than a loop over every one.
 */
function depthOf(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  STRUCTURE.lastIndex = 0;
  for (let match = STRUCTURE.exec(text); match !== null; match = STRUCTURE.exec(text)) {
    const c = match[0];
    if (inString) {
      if (c === "\\") STRUCTURE.lastIndex++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (c === "}" || c === "]") depth--;
  }
  return max;
}

function serializeTyped(data: unknown): string {
  try {
    return serialize(data);
  } catch (error) {
    throw serializationError(error);
  }
}

/**
 * Keyv's serializer for `collection()` writes, with typed failures: a value nested deeper than
 * MAX_DEPTH (Keyv's `{"value":…}` envelope is one more level) is an InvalidValueError, so it can
 * always be read back; one too large for a JS string is a ValueTooLargeError.
 */
export function serializeChecked(data: unknown): string {
  const text = serializeTyped(data);
  // Each level costs at least an opening and a closing character: shorter text cannot be too deep,
  // so the common small value skips the scan (it would double the cost of a set).
  if (text.length > 2 * (MAX_DEPTH + 1) && depthOf(text, MAX_DEPTH + 1) > MAX_DEPTH + 1) {
    throw new InvalidValueError(`value is nested more than ${MAX_DEPTH} levels deep; the limit keeps it readable`);
  }
  return text;
}

function serializationError(error: unknown): Error {
  if (error instanceof RangeError) {
    if (/string length/i.test(error.message)) {
      return new ValueTooLargeError("value is too large to serialise into one string", { cause: error });
    }
    return new InvalidValueError(`value is nested too deeply to serialise (limit ${MAX_DEPTH} levels)`, {
      cause: error,
    });
  }
  return new InvalidValueError(`value cannot be serialised: ${(error as Error)?.message}`, { cause: error });
}

/** UTF-8 bytes of a value's JSON text; a value too large for one JS string is a ValueTooLargeError. */
export function jsonBytes(value: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(value));
  } catch (error) {
    throw serializationError(error);
  }
}

/** Keyv's deserializer for `collection()` reads, with a typed failure naming what could not be read. */
export function deserializeChecked(text: string): unknown {
  try {
    return deserialize(text);
  } catch (error) {
    throw new InvalidValueError(`stored value cannot be decoded: ${(error as Error).message}`, { cause: error });
  }
}

/** The stored form of a value without expiry (its parts were checked by assertJson). */
export function encodeValue(value: unknown): string {
  return serializeTyped({ value });
}

/** The stored form of a value that expires at `expires` (ms), as Keyv writes it: `expires` last. */
export function encodeExpiring(value: unknown, expires: number): string {
  return serializeTyped({ value, expires });
}

/** The value a stored entry holds; undefined when missing or expired. Throws when it cannot be decoded. */
export function decodeValue(raw: unknown, name: string): unknown {
  if (raw === undefined || raw === null) return undefined;
  let data: unknown;
  try {
    data = typeof raw === "string" ? deserialize(raw) : raw;
  } catch (error) {
    throw new InvalidValueError(`stored entry ${JSON.stringify(name)} cannot be decoded: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (data === null || typeof data !== "object") return undefined;
  const { value, expires } = data as { value?: unknown; expires?: unknown };
  return typeof expires === "number" && expires <= Date.now() ? undefined : value;
}
