/**
 * Metadata filters for vector and workflow search (contract §8): validated once, before any I/O,
 * into a predicate over a row's metadata and a canonical key under which a matrix caches the rows
 * it selects (see matrix.ts `select`).
 *
 * Semantics, chosen so that every case has one answer:
 * - AND over top-level fields; `{}` selects every row.
 * - A bare value means `$eq`: deep equality of the whole value (objects compare by keys, not key
 *   order; arrays element by element). No array "contains": `{ tags: "a" }` does not match
 *   `tags: ["a"]`; use `{ tags: ["a"] }` or `$in` over whole values.
 * - A missing field equals nothing, not even `null`: `$eq`/`$in`/comparisons never match it,
 *   `$ne`/`$nin` always do (as MongoDB's `$ne`/`$nin`).
 * - `$gt $gte $lt $lte` take a finite number or a string; a field of the other type (or any other
 *   type) does not match. Strings compare by UTF-16 code units. Mixing number and string operands
 *   in one field's operators is refused as malformed.
 * - Malformed (InvalidArgumentError): a non-object filter, an unknown operator or a top-level
 *   `$` key, operators mixed with plain keys or nested inside a value, a wrong operand type,
 *   `$in`/`$nin` not an array, and operands JSON cannot hold (undefined, NaN, class instances).
 */
import { assertJson } from "../collections/json.js";
import type { MetadataFilter } from "../collections/types.js";
import { InvalidArgumentError, type KeyvWorkspacesError } from "../errors.js";
import { zod } from "../zod.js";

export interface CompiledFilter {
  /** Canonical JSON: equal for filters that select the same rows by construction (key order aside). */
  readonly key: string;
  matches(metadata: Record<string, unknown>): boolean;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** True when some object inside `value` (at any depth) has a key starting with `$`. */
function hasOperatorKey(value: unknown): boolean {
  const stack = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) stack.push(...node);
    else if (isPlainObject(node)) {
      for (const key of Object.keys(node)) {
        if (key.startsWith("$")) return true;
        stack.push(node[key]);
      }
    }
  }
  return false;
}

/** The schemas that say why a condition is refused, built (and zod loaded) on the first refusal. */
export function schemas() {
  const z = zod();
  const operand = z.unknown().refine((v) => !hasOperatorKey(v), "operators cannot be nested inside a value");
  const bound = z.union([z.number(), z.string()], "must be a number or a string");
  const list = z.array(operand, "must be an array");
  const operators = z
    .strictObject(
      {
        $eq: operand.optional(),
        $ne: operand.optional(),
        $gt: bound.optional(),
        $gte: bound.optional(),
        $lt: bound.optional(),
        $lte: bound.optional(),
        $in: list.optional(),
        $nin: list.optional(),
      },
      {
        error(issue) {
          if (issue.code !== "unrecognized_keys") return undefined;
          const plain = issue.keys.filter((key) => !key.startsWith("$"));
          return plain.length > 0
            ? `operators cannot be mixed with plain keys (${plain.join(", ")})`
            : `unknown operator ${issue.keys.join(", ")}`;
        },
      },
    )
    .refine(
      (ops) =>
        new Set([ops.$gt, ops.$gte, ops.$lt, ops.$lte].flatMap((b) => (b === undefined ? [] : [typeof b]))).size <= 1,
      "comparison operands must all be numbers or all be strings",
    );
  return { operand, operators };
}

let refusals: ReturnType<typeof schemas> | undefined;

const VALUE_OPS = new Set(["$eq", "$ne"]);
const BOUND_OPS = new Set(["$gt", "$gte", "$lt", "$lte"]);
const LIST_OPS = new Set(["$in", "$nin"]);

/**
 * What the operators schema makes of `condition` when it certainly accepts it, else undefined
 * (the schema then names the problem). A valid filter thus never loads zod; spec/vectors/filter
 * checks that this agrees with the schema.
 */
export function acceptedOperators(condition: Record<string, unknown>): Operators | undefined {
  const out: Record<string, unknown> = {};
  const boundTypes = new Set<string>();
  for (const [key, value] of Object.entries(condition)) {
    if (VALUE_OPS.has(key)) {
      if (value === undefined || hasOperatorKey(value)) return undefined;
      out[key] = value;
    } else if (BOUND_OPS.has(key)) {
      if (!(typeof value === "string" || (typeof value === "number" && Number.isFinite(value)))) return undefined;
      boundTypes.add(typeof value);
      out[key] = value;
    } else if (LIST_OPS.has(key)) {
      if (!Array.isArray(value) || value.some((v) => v === undefined || hasOperatorKey(v))) return undefined;
      out[key] = [...value];
    } else {
      return undefined;
    }
  }
  return boundTypes.size <= 1 ? (out as Operators) : undefined;
}

interface Operators {
  $eq?: unknown;
  $ne?: unknown;
  $gt?: number | string;
  $gte?: number | string;
  $lt?: number | string;
  $lte?: number | string;
  $in?: unknown[];
  $nin?: unknown[];
}

function fail(message: string, cause?: unknown): KeyvWorkspacesError {
  return new InvalidArgumentError(`invalid search filter: ${message}`, cause === undefined ? undefined : { cause });
}

/** Deep equality of JSON values (plain objects by own keys, arrays by elements). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const key of ka) if (!Object.hasOwn(rb, key) || !jsonEqual(ra[key], rb[key])) return false;
  return true;
}

/** JSON with object keys sorted, so equal filters give equal cache keys. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = canonical(value[key]);
  return out;
}

type Test = (value: unknown) => boolean;

/** Membership by deep equality; primitives through a Set (JSON has no NaN, so SameValueZero is ===). */
function member(values: unknown[]): Test {
  const primitives = new Set(values.filter((v) => typeof v !== "object" || v === null));
  const objects = values.filter((v) => typeof v === "object" && v !== null);
  return (value) =>
    typeof value !== "object" || value === null ? primitives.has(value) : objects.some((o) => jsonEqual(value, o));
}

function equal(operand: unknown): Test {
  return typeof operand !== "object" || operand === null ? (v) => v === operand : (v) => jsonEqual(v, operand);
}

/** The field's test; `present` is false for a missing field, whose value is then ignored. */
function compileField(ops: Operators): (value: unknown, present: boolean) => boolean {
  const tests: Array<(value: unknown, present: boolean) => boolean> = [];
  if ("$eq" in ops) {
    const eq = equal(ops.$eq);
    tests.push((v, present) => present && eq(v));
  }
  if ("$ne" in ops) {
    const eq = equal(ops.$ne);
    tests.push((v, present) => !present || !eq(v));
  }
  if (ops.$in) {
    const has = member(ops.$in);
    tests.push((v, present) => present && has(v));
  }
  if (ops.$nin) {
    const has = member(ops.$nin);
    tests.push((v, present) => !present || !has(v));
  }
  const compare = (b: number | string | undefined, ok: (v: number | string, b: number | string) => boolean) => {
    if (b !== undefined) tests.push((v, present) => present && typeof v === typeof b && ok(v as number | string, b));
  };
  compare(ops.$gt, (v, b) => v > b);
  compare(ops.$gte, (v, b) => v >= b);
  compare(ops.$lt, (v, b) => v < b);
  compare(ops.$lte, (v, b) => v <= b);
  if (tests.length === 1) return tests[0]!;
  return (v, present) => tests.every((t) => t(v, present));
}

const describePath = (field: string, path: ReadonlyArray<PropertyKey>) =>
  [JSON.stringify(field), ...path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))].join("");

/**
 * Validates `filter` and compiles it, touching no store: a malformed filter is an
 * InvalidArgumentError. `undefined` means no filter.
 */
export function compileFilter(filter: MetadataFilter | undefined): CompiledFilter | undefined {
  if (filter === undefined) return undefined;
  if (!isPlainObject(filter)) throw fail(`a filter is an object of metadata fields, got ${describe(filter)}`);
  try {
    // JSON-ness and depth first, with a walk that no input can overflow; then the shape.
    assertJson(filter, "search filter");
  } catch (error) {
    throw fail((error as Error).message, error);
  }
  const fields: Array<[string, (value: unknown, present: boolean) => boolean]> = [];
  const normal: Array<[string, Record<string, unknown>]> = [];
  for (const field of Object.keys(filter).sort()) {
    if (field.startsWith("$")) throw fail(`unknown top-level operator ${JSON.stringify(field)}`);
    const condition = filter[field];
    const isOps = isPlainObject(condition) && Object.keys(condition).some((k) => k.startsWith("$"));
    let ops = isOps
      ? acceptedOperators(condition as Record<string, unknown>)
      : hasOperatorKey(condition)
        ? undefined
        : { $eq: condition };
    if (!ops) {
      refusals ??= schemas();
      const parsed = isOps ? refusals.operators.safeParse(condition) : refusals.operand.safeParse(condition);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw fail(`${describePath(field, issue.path)}: ${issue.message}`, parsed.error);
      }
      ops = isOps ? (parsed.data as Operators) : { $eq: condition };
    }
    fields.push([field, compileField(ops)]);
    normal.push([field, canonical(ops) as Record<string, unknown>]);
  }
  return {
    key: JSON.stringify(normal),
    matches(metadata) {
      for (const [field, test] of fields) {
        const present = Object.hasOwn(metadata, field);
        if (!test(present ? metadata[field] : undefined, present)) return false;
      }
      return true;
    },
  };
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value;
}
