/**
 * What the JS side of a cached workspace holds, estimated without asking the heap: ids,
 * metadata objects and kept stored values. The figures over-estimate V8 on 64-bit Node (8-byte
 * pointers, no pointer compression) on purpose: the cache's byte bound must hold for the real
 * heap, so guessing high only evicts a little early, while guessing low lets it grow past its cap.
 */

/** An object or array: map, properties and elements pointers, header and some slack. */
const OBJECT = 64;
/** One property: its value slot and its descriptor/dictionary entry. */
const PROPERTY = 24;
/** An array element slot. */
const ELEMENT = 8;
/** A string's header (map, hash, length), before its characters. */
const STRING = 24;
/** A number that is not a small integer lives in its own heap object. */
const HEAP_NUMBER = 16;
/** Per cached row, besides its id and values: index Map entry and the parallel arrays' slots. */
export const ROW_OVERHEAD = 96;

/** Two bytes per character: V8 keeps some strings one-byte, but not all. */
export function stringBytes(text: string): number {
  return STRING + text.length * 2;
}

/**
 * Estimated bytes retained by a decoded JSON value (metadata, or a stored value kept for
 * comparison). Walks with its own stack, so any depth is safe; key names are counted for every
 * object although V8 shares them between objects of one shape — high, by design.
 */
export function jsonBytes(value: unknown): number {
  if (typeof value === "string") return stringBytes(value);
  if (value === null || typeof value !== "object") return typeof value === "number" ? numberBytes(value) : 0;
  let total = 0;
  const stack: object[] = [value];
  for (let node = stack.pop(); node; node = stack.pop()) {
    if (ArrayBuffer.isView(node)) {
      total += OBJECT + node.byteLength;
      continue;
    }
    total += OBJECT;
    const array = Array.isArray(node);
    for (const key in node) {
      const item = (node as Record<string, unknown>)[key];
      total += array ? ELEMENT : PROPERTY + stringBytes(key);
      if (typeof item === "string") total += stringBytes(item);
      else if (typeof item === "number") total += numberBytes(item);
      else if (item !== null && typeof item === "object") stack.push(item);
    }
  }
  return total;
}

function numberBytes(x: number): number {
  return Number.isInteger(x) && Math.abs(x) < 2 ** 30 ? 0 : HEAP_NUMBER;
}
