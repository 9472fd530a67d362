/**
 * Values as the collections store them: exactly what Keyv writes (`{"value":…}` through Keyv's own
 * serializer), so `collection()` and the collections read each other's data byte for byte. Where
 * Keyv's text would not read back as the value (boxed primitives, arrays with named properties,
 * symbol-valued properties, a non-function `toJSON`) `collection()` writes JSON's text instead.
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
 * Where a string value starting with ":" may be: Keyv's serializer escapes such a value as "::…"
 * and its reader (a JSON.parse reviver) unescapes it and revives ":base64:…" as bytes; for any
 * other text both are plain JSON. In JSON text a string value follows `:`, `,`, `[` or the start
 * (JSON whitespace aside), so text without this pattern needs neither, and takes the native
 * paths: Keyv's recursive serializer and its per-value reviver are most of a save's and a load's
 * cost. A key after `,` also matches: that merely takes the exact path.
 */
const COLON_STRING = /(?:^|[[,:])[ \t\n\r]*":/;

/**
 * Whether text could nest deeper than `limit`: only with more than `limit` opening brackets.
 * indexOf jumps between them natively, so the common value (a few brackets) costs almost nothing.
 */
function mayNestPast(text: string, limit: number): boolean {
  if (text.length <= 2 * limit) return false;
  let count = 0;
  for (const opener of ["[", "{"]) {
    for (let i = text.indexOf(opener); i !== -1; i = text.indexOf(opener, i + 1)) if (++count > limit) return true;
  }
  return false;
}

/**
 * Keyv's reader, natively where that gives the same value. Text nested deeper than anything the
 * library writes still goes through Keyv's reader, so it fails (or not) exactly as it always did:
 * JSON.parse alone would accept nesting that the rest of the stack cannot handle.
 */
function parseStored(text: string): unknown {
  if (COLON_STRING.test(text) || (mayNestPast(text, MAX_DEPTH + 1) && depthOf(text, MAX_DEPTH + 1) > MAX_DEPTH + 1)) {
    return deserialize(text);
  }
  return JSON.parse(text);
}

/** Keyv's stored text of a plain JSON envelope, byte for byte, native where that is the same. */
function serializePlain(envelope: object): string {
  let text: string;
  try {
    text = JSON.stringify(envelope);
  } catch (error) {
    throw serializationError(error);
  }
  return COLON_STRING.test(text) ? serializeTyped(envelope) : text;
}

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

/**
 * Where Keyv's serializer and JSON.stringify can differ, their texts show it: a string starting
 * with ":" (escaped), a Buffer (`:base64:` there, `{"type":"Buffer",…}` here), and array elements
 * Keyv skips but JSON writes as `null` (functions, symbols, holes). Without these marks the native
 * text is Keyv's, in a third of the time (Keyv's serializer is most of a memory `set`).
 */
const DIFFERS = /(?:^|[[,:])[ \t\n\r]*":|[[,]null|"type":"Buffer"/;

/** Keyv's text of `data`, natively; undefined where Keyv's own serializer must write it. */
function nativeText(data: unknown): string | undefined {
  let text: string | undefined;
  try {
    text = JSON.stringify(data);
  } catch {
    // Keyv's serializer fails (or not) in its own way: the exact path reports it.
    return undefined;
  }
  return text === undefined || DIFFERS.test(text) ? undefined : text;
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
  const text = nativeText(data) ?? serializeTyped(data);
  // Only text with more opening brackets than the limit can be too deep: counting them natively
  // spares the common value the scan, which cost a fifth of a memory set.
  if (mayNestPast(text, MAX_DEPTH + 1) && depthOf(text, MAX_DEPTH + 1) > MAX_DEPTH + 1) {
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

/** Keyv's deserializer for `collection()` reads, with a typed failure naming what could not be read. */
export function deserializeChecked(text: string): unknown {
  try {
    return parseStored(text);
  } catch (error) {
    throw new InvalidValueError(`stored value cannot be decoded: ${(error as Error).message}`, { cause: error });
  }
}

/** Whether JSON text holds a string starting with ":", which Keyv's serializer writes otherwise. */
export function needsKeyvText(text: string): boolean {
  return COLON_STRING.test(text);
}

/** The stored form of a value without expiry (its parts were checked by assertJson). */
export function encodeValue(value: unknown): string {
  return serializePlain({ value });
}

/**
 * The stored form of `{ ...fields, [key]: <the JSON value of jsonText> }` (expiring at `expires` when
 * given): the text of a value already stringified — to measure it — is spliced in, not made twice.
 * `fields` must be a non-empty plain object without `key`; all parts checked by assertJson.
 */
export function encodeSpliced(fields: object, key: string, jsonText: string, expires?: number): string {
  const head = JSON.stringify(fields);
  const tail = expires === undefined ? "}}" : `},"expires":${JSON.stringify(expires)}}`;
  const text = `{"value":${head.slice(0, -1)},${JSON.stringify(key)}:${jsonText}${tail}`;
  if (!COLON_STRING.test(text)) return text;
  const value = { ...fields, [key]: JSON.parse(jsonText) };
  return serializeTyped(expires === undefined ? { value } : { value, expires });
}

/** A value's JSON text; a value too large for one JS string is a ValueTooLargeError. */
export function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw serializationError(error);
  }
}

/** The value a stored entry holds; undefined when missing or expired. Throws when it cannot be decoded. */
export function decodeValue(raw: unknown, name: string): unknown {
  if (raw === undefined || raw === null) return undefined;
  let data: unknown;
  try {
    data = typeof raw === "string" ? parseStored(raw) : raw;
  } catch (error) {
    throw new InvalidValueError(`stored entry ${JSON.stringify(name)} cannot be decoded: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (data === null || typeof data !== "object") return undefined;
  const { value, expires } = data as { value?: unknown; expires?: unknown };
  return typeof expires === "number" && expires <= Date.now() ? undefined : value;
}
