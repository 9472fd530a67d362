import { InvalidValueError } from "../errors.js";

/**
 * The deepest nesting a stored value or metadata object may have (a primitive is depth 0, `{}`
 * and `[]` are depth 1). Everything that reads a value back recurses: measured on Node 20 with
 * the default stack, @keyv/serialize's serializer overflows at ~4,200 levels, Keyv's
 * deserializer (JSON.parse with a reviver) at ~2,600, JSON.stringify at ~4,100 and
 * structuredClone (search results, our own cache copies) at ~1,900 — fewer when called from
 * an already deep stack. A value that saves but cannot be read back bricks every list and
 * search of its workspace, so the limit sits an order of magnitude below the lowest of them,
 * leaving room for Keyv's and our envelopes and the caller's own stack. Real JSON documents
 * rarely nest past a few dozen levels.
 */
export const MAX_DEPTH = 128;

interface Frame {
  node: object;
  path: string;
  depth: number;
  /** Own keys of a plain object; undefined for arrays (walked by index). */
  keys: string[] | undefined;
  next: number;
}

/**
 * Refuses what JSON would silently change: functions, symbols, undefined, BigInt,
 * NaN/Infinity, cycles and class instances other than plain objects/arrays, and nesting
 * deeper than MAX_DEPTH. Stored values must load back equal, so we reject rather than let
 * them be altered. The walk keeps its own stack, so no input can overflow the call stack.
 */
export function assertJson(value: unknown, what: string): void {
  const ancestors = new Set<object>();
  const stack: Frame[] = [];
  const enter = (node: unknown, path: string, depth: number): void => {
    switch (typeof node) {
      case "string":
      case "boolean":
        return;
      case "number":
        if (!Number.isFinite(node))
          throw new InvalidValueError(`${what} at ${path} is ${node}, which JSON cannot hold`);
        return;
      case "object": {
        if (node === null) return;
        if (ancestors.has(node)) throw new InvalidValueError(`${what} at ${path} is a circular reference`);
        if (depth > MAX_DEPTH) {
          throw new InvalidValueError(`${what} at ${path.slice(0, 80)}… nests deeper than ${MAX_DEPTH} levels`);
        }
        checkShape(node, path, what);
        ancestors.add(node);
        stack.push({ node, path, depth, keys: Array.isArray(node) ? undefined : Object.keys(node), next: 0 });
        return;
      }
      default:
        throw new InvalidValueError(
          `${what} at ${path} is ${typeof node === "bigint" ? "a BigInt" : typeof node}, which JSON cannot hold`,
        );
    }
  };
  enter(value, "$", 1);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const { node, keys } = frame;
    const length = keys ? keys.length : (node as unknown[]).length;
    if (frame.next >= length) {
      stack.pop();
      ancestors.delete(node);
      continue;
    }
    const i = frame.next++;
    if (keys) enter((node as Record<string, unknown>)[keys[i]!], `${frame.path}.${keys[i]}`, frame.depth + 1);
    else enter((node as unknown[])[i], `${frame.path}[${i}]`, frame.depth + 1);
  }
}

function checkShape(node: object, path: string, what: string): void {
  const proto = Object.getPrototypeOf(node);
  if (!Array.isArray(node) && proto !== Object.prototype && proto !== null) {
    throw new InvalidValueError(
      `${what} at ${path} is a ${proto?.constructor?.name ?? "non-plain object"}; store plain objects, arrays and primitives (bytes only as the whole value)`,
    );
  }
  // Keyv's serialiser walks own enumerable string keys: it drops array holes (and packs
  // extra array properties in as elements), symbol keys and non-enumerable properties.
  if (Object.getOwnPropertySymbols(node).length > 0) {
    throw new InvalidValueError(`${what} at ${path} has symbol keys, which JSON cannot hold`);
  }
  const own = Object.getOwnPropertyNames(node).length;
  const enumerable = Object.keys(node).length;
  if (Array.isArray(node) ? enumerable !== node.length : own !== enumerable) {
    throw new InvalidValueError(
      Array.isArray(node)
        ? `${what} at ${path} is a sparse array or has non-index properties; JSON would change it`
        : `${what} at ${path} has non-enumerable properties, which JSON would drop`,
    );
  }
}

/**
 * Whether `value` nests no deeper than `limit` (same depth measure as MAX_DEPTH). Iterative
 * and stops at the first node past the limit, so it is safe on anything a reader decoded.
 */
export function withinDepth(value: unknown, limit = MAX_DEPTH): boolean {
  if (value === null || typeof value !== "object") return true;
  const stack: Array<[object, number]> = [[value, 1]];
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [node, depth] = top;
    if (depth > limit) return false;
    for (const key in node) {
      const child = (node as Record<string, unknown>)[key];
      // Bytes (a ":base64:" string a reader revived) are a leaf, not thousands of index keys.
      if (child !== null && typeof child === "object" && !ArrayBuffer.isView(child)) stack.push([child, depth + 1]);
    }
  }
  return true;
}

export function assertMetadata(metadata: unknown): Record<string, unknown> {
  if (metadata === undefined) return {};
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
    throw new InvalidValueError("metadata must be a plain object");
  }
  assertJson(metadata, "metadata");
  return metadata as Record<string, unknown>;
}
