import { InvalidValueError } from "../errors.js";

/**
 * Refuses what JSON would silently change: functions, symbols, undefined, BigInt,
 * NaN/Infinity, cycles and class instances other than plain objects/arrays. Stored
 * values must load back equal, so we reject rather than let them be altered.
 */
export function assertJson(value: unknown, what: string): void {
  const seen = new Set<object>();
  const visit = (node: unknown, path: string): void => {
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
        if (seen.has(node)) throw new InvalidValueError(`${what} at ${path} is a circular reference`);
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
        seen.add(node);
        if (Array.isArray(node)) for (let i = 0; i < node.length; i++) visit(node[i], `${path}[${i}]`);
        else for (const [key, item] of Object.entries(node)) visit(item, `${path}.${key}`);
        seen.delete(node);
        return;
      }
      default:
        throw new InvalidValueError(
          `${what} at ${path} is ${typeof node === "bigint" ? "a BigInt" : typeof node}, which JSON cannot hold`,
        );
    }
  };
  visit(value, "$");
}

export function assertMetadata(metadata: unknown): Record<string, unknown> {
  if (metadata === undefined) return {};
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
    throw new InvalidValueError("metadata must be a plain object");
  }
  assertJson(metadata, "metadata");
  return metadata as Record<string, unknown>;
}

/**
 * Deepest nesting of objects and arrays a stored value may have. Keyv's serializer and
 * JSON.parse with a reviver recurse once per level and overflow the default stack at a few
 * thousand levels; this limit keeps every stored value far from that, so it can always be read back.
 */
export const MAX_DEPTH = 128;
