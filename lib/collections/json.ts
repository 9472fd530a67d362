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
        seen.add(node);
        if (Array.isArray(node)) node.forEach((item, i) => void visit(item, `${path}[${i}]`));
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
