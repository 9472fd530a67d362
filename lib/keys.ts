/**
 * The key layout, and nothing else: pure functions, no I/O.
 *
 *   scoped:   <root>:ws:<workspaceId>:<collection>:<name>
 *   unscoped: <root>:<collection>:<name>
 *
 * With hash tags (Redis Cluster) the part that picks the slot is wrapped in braces, so that
 * everything one atomic operation touches (a value, its prefix's `#index` and `#log`) hashes
 * to one slot:
 *
 *   scoped:   <root>:ws:{<workspaceId>}:<collection>:<name>
 *   unscoped: <root>:{<collection>}:<name>          (a deps prefix P becomes {P})
 *
 * Collisions are impossible by construction rather than unlikely by convention:
 * workspace ids and collection names cannot contain ":", no root or collection may
 * be the segment "ws", so a key parses back to exactly one (workspace, collection,
 * name) triple, and every prefix handed out ends where a ":" follows — "app:ws:a"
 * plus ":" never matches a key of "app:ws:ab".
 */
import {
  InvalidArgumentError,
  InvalidCollectionError,
  InvalidNameError,
  InvalidRootError,
  InvalidWorkspaceIdError,
} from "./errors.js";

export const SEPARATOR = ":";
export const WORKSPACE_SEGMENT = "ws";
export const COLLECTIONS = ["artifacts", "workflows", "vectors", "deps"] as const;
export const DEFAULT_UNSCOPED: readonly string[] = Object.freeze(["deps"]);
export const MAX_WORKSPACE_ID_LENGTH = 128;
export const MAX_NAME_LENGTH = 512;
export const MAX_COLLECTION_LENGTH = 64;

const WORKSPACE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const COLLECTION = /^[a-z][a-z0-9_-]*$/;
const GLOB_OR_SPACE = /[\s*?[\]\\]/;
const BRACE = /[{}]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// With the u flag a surrogate range matches only unpaired halves: text that has no UTF-8 form.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Whether text survives a UTF-8 round trip. Redis (and any UTF-8 store) turns every unpaired
 * surrogate into U+FFFD, so "\uD800" and "\uDC00" would silently become the same key.
 */
export function isWellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

export function validateWorkspaceId(id: unknown): string {
  if (typeof id !== "string") {
    throw new InvalidWorkspaceIdError(`workspace id must be a string, got ${typeof id}`);
  }
  if (id.length === 0 || id.length > MAX_WORKSPACE_ID_LENGTH) {
    throw new InvalidWorkspaceIdError(
      `workspace id must be 1-${MAX_WORKSPACE_ID_LENGTH} characters, got ${id.length}: ${show(id.slice(0, 40))}`,
    );
  }
  if (!WORKSPACE_ID.test(id)) {
    throw new InvalidWorkspaceIdError(
      `invalid workspace id ${show(id)}: use letters, digits, "_", "." and "-", starting with a letter or digit (no "/", "\\", ":" or spaces)`,
    );
  }
  return id;
}

export function validateCollection(name: unknown): string {
  if (typeof name !== "string" || !COLLECTION.test(name) || name.length > MAX_COLLECTION_LENGTH) {
    throw new InvalidCollectionError(
      `invalid collection name ${show(name)}: use lower-case [a-z][a-z0-9_-]*, at most ${MAX_COLLECTION_LENGTH} characters`,
    );
  }
  if (name === WORKSPACE_SEGMENT) {
    throw new InvalidCollectionError(`collection name "${WORKSPACE_SEGMENT}" is reserved for workspace keys`);
  }
  return name;
}

/** Shared by roots, deps prefixes and scope prefixes: all are raw key prefixes. */
function prefixProblem(prefix: unknown): string | undefined {
  if (typeof prefix !== "string" || prefix.length === 0) return "it must be a non-empty string";
  if (GLOB_OR_SPACE.test(prefix) || CONTROL.test(prefix)) {
    return "it must not contain whitespace, control or glob characters (* ? [ ] \\)";
  }
  if (prefix.split(SEPARATOR).some((segment) => segment.length === 0)) {
    return 'it must not have an empty ":" segment (leading, trailing or doubled ":")';
  }
  return undefined;
}

/**
 * Roots and deps prefixes pick where shared data lives, so they must not reach into a
 * workspace: a `ws` segment would let them equal or lie under some `<root>:ws:<id>`, and
 * braces would make Redis Cluster hash them by a tag of the caller's choosing.
 */
function sharedPrefixProblem(prefix: unknown): string | undefined {
  const problem = prefixProblem(prefix);
  if (problem) return problem;
  if ((prefix as string).split(SEPARATOR).includes(WORKSPACE_SEGMENT)) {
    return `the segment "${WORKSPACE_SEGMENT}" is reserved for workspace keys`;
  }
  if (BRACE.test(prefix as string)) return 'it must not contain "{" or "}" (Redis Cluster hash tags)';
  return undefined;
}

export function validateRoot(root: unknown): string {
  const problem = sharedPrefixProblem(root);
  if (problem) throw new InvalidRootError(`invalid root ${show(root)}: ${problem}`);
  return root as string;
}

/**
 * Any raw key prefix (scopeStore, rebuildIndex of one prefix). Unlike roots and deps prefixes
 * it may name a workspace (`app:ws:a:cache`) and hold braces (a hash-tagged workspace prefix).
 */
export function validatePrefix(prefix: unknown, what = "prefix"): string {
  const problem = prefixProblem(prefix);
  if (problem) throw new InvalidRootError(`invalid ${what} ${show(prefix)}: ${problem}`);
  return prefix as string;
}

/**
 * Where a keyspace's deps live: every workspace reads it, so it may not point into a
 * workspace (nor into another root's workspaces) — same rules as a root.
 */
export function validateDepsPrefix(prefix: unknown, what = "deps prefix"): string {
  const problem = sharedPrefixProblem(prefix);
  if (problem) throw new InvalidRootError(`invalid ${what} ${show(prefix)}: ${problem}`);
  return prefix as string;
}

/** Artifact names, vector ids: any printable text, so they must round-trip exactly. */
export function validateName(name: unknown, what = "name"): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new InvalidNameError(`${what} must be a non-empty string, got ${show(name)}`);
  }
  if (name.length > MAX_NAME_LENGTH) {
    throw new InvalidNameError(`${what} is ${name.length} characters long; the limit is ${MAX_NAME_LENGTH}`);
  }
  if (CONTROL.test(name)) {
    throw new InvalidNameError(`${what} ${show(name)} contains a control character`);
  }
  if (!isWellFormed(name)) {
    throw new InvalidNameError(
      `${what} ${show(name)} contains an unpaired UTF-16 surrogate, which has no UTF-8 form and cannot round-trip`,
    );
  }
  return name;
}

export interface KeyspaceOptions {
  root: string;
  /** undefined / null = unscoped: the legacy layout `<root>:<collection>`. */
  workspaceId?: string | null | undefined;
  /** Collections shared by all workspaces under `<root>:<collection>`; default ["deps"]. */
  unscoped?: readonly string[] | undefined;
  /** Overrides where deps live, for `storage.deps` and `collection("deps")` alike. */
  depsPrefix?: string | undefined;
  /** The Redis Cluster layout: braces around the workspace id (or the unscoped collection). */
  hashTags?: boolean | undefined;
}

export interface Keyspace {
  readonly root: string;
  readonly workspaceId: string | undefined;
  readonly unscoped: readonly string[];
  readonly depsPrefix: string | undefined;
  readonly hashTags: boolean;
  /** `<root>:ws:<id>` (`<root>:ws:{<id>}` with hash tags): every key of the workspace starts with it plus ":". */
  readonly workspacePrefix: string | undefined;
  isScoped(collection: string): boolean;
  prefix(collection: string): string;
  key(collection: string, name: string): string;
  /** The same root, allowlist and deps prefix, another workspace (or none). */
  withWorkspace(workspaceId: string | null | undefined): Keyspace;
}

export function keyspace(options: KeyspaceOptions): Keyspace {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(`keyspace options must be an object with a root, got ${show(options)}`);
  }
  const root = validateRoot(options.root);
  const workspaceId = options.workspaceId == null ? undefined : validateWorkspaceId(options.workspaceId);
  const listed: unknown = options.unscoped ?? DEFAULT_UNSCOPED;
  if (!Array.isArray(listed)) {
    throw new InvalidCollectionError(`unscoped must be an array of collection names, got ${show(listed)}`);
  }
  const unscoped = Object.freeze([...new Set(listed.map(validateCollection))]);
  const depsPrefix = options.depsPrefix === undefined ? undefined : validateDepsPrefix(options.depsPrefix);
  if (options.hashTags !== undefined && typeof options.hashTags !== "boolean") {
    throw new InvalidArgumentError(`hashTags must be a boolean, got ${show(options.hashTags)}`);
  }
  const hashTags = options.hashTags === true;
  const tag = (text: string) => (hashTags ? `{${text}}` : text);
  const workspacePrefix = workspaceId === undefined ? undefined : workspaceBase(root, workspaceId, hashTags);
  const prefixes = new Map<string, string>();

  const prefix = (collection: string): string => {
    let cached = prefixes.get(collection);
    if (cached === undefined) {
      validateCollection(collection);
      if (collection === "deps" && depsPrefix !== undefined) cached = tag(depsPrefix);
      else if (workspacePrefix === undefined || unscoped.includes(collection)) {
        cached = `${root}${SEPARATOR}${tag(collection)}`;
      } else cached = `${workspacePrefix}${SEPARATOR}${collection}`;
      prefixes.set(collection, cached);
    }
    return cached;
  };

  return Object.freeze({
    root,
    workspaceId,
    unscoped,
    depsPrefix,
    hashTags,
    workspacePrefix,
    isScoped: (collection: string) =>
      workspaceId !== undefined &&
      !unscoped.includes(validateCollection(collection)) &&
      !(collection === "deps" && depsPrefix !== undefined),
    prefix,
    key: (collection: string, name: string) => joinKey(prefix(collection), name),
    withWorkspace: (id: string | null | undefined) =>
      keyspace({ root, unscoped, depsPrefix, hashTags, workspaceId: id }),
  });
}

/** `<root>:ws:<id>`, or `<root>:ws:{<id>}` in the hash-tag layout. Arguments must be valid already. */
export function workspaceBase(root: string, workspaceId: string, hashTags: boolean): string {
  const id = hashTags ? `{${workspaceId}}` : workspaceId;
  return `${root}${SEPARATOR}${WORKSPACE_SEGMENT}${SEPARATOR}${id}`;
}

/**
 * Prefixes whose changes are versioned and logged, so a vector cache can follow them with one
 * read per search: the `vectors` collection (however it is reached) and the workflow index.
 * Decided by the layout, not by the caller, so every path to such a prefix keeps its log.
 */
export function tracksChanges(prefix: string): boolean {
  // `:{vectors}`: the unscoped vectors collection in the hash-tag layout.
  return (
    prefix.endsWith(`${SEPARATOR}vectors`) || prefix.endsWith(`${SEPARATOR}{vectors}`) || prefix.endsWith("#vectors")
  );
}

/**
 * The scope a prefix belongs to, for change feeds: the prefix without its last segment
 * (`app:ws:a:artifacts` → `app:ws:a`, `app:deps` → `app`, `app:ws:{a}:vectors` → `app:ws:{a}`).
 */
export function changeBase(prefix: string): string {
  const cut = prefix.lastIndexOf(SEPARATOR);
  return cut < 0 ? prefix : prefix.slice(0, cut);
}

/**
 * The workspace base whose quota a prefix's entries count against: a data prefix of a workspace
 * (`<base>:<collection>`), never bookkeeping (a `#` after the base: registries, the workflow index).
 */
export function quotaBase(workspacePrefix: string | undefined, prefix: string): string | undefined {
  if (workspacePrefix === undefined || !prefix.startsWith(`${workspacePrefix}${SEPARATOR}`)) return undefined;
  return prefix.includes("#", workspacePrefix.length) ? undefined : workspacePrefix;
}

export function joinKey(prefix: string, name: string): string {
  return `${prefix}${SEPARATOR}${name}`;
}

/**
 * Bookkeeping keys a backend keeps beside a prefix (e.g. Redis's per-prefix index).
 * "#" cannot occur in a root segment's collection part, so `<prefix>#<what>` is never a
 * data key of any collection, and it stays inside the workspace's `<root>:ws:<id>:*` ACL pattern.
 */
export function metaKey(prefix: string, what: "data" | "index" | "ttl" | "version" | "log" | "vectors"): string {
  return `${prefix}#${what}`;
}

const LAYOUT_COLLECTION = /^[a-z][a-z0-9_-]*(#vectors)?$/;
const BUILT_IN = new Set<string>(COLLECTIONS);

/**
 * Where a full key written WITHOUT its prefix on record (data of 0.1.0 files, raw Keyv writes to
 * the library's own adapters) belongs, as the length of its prefix. Everything the library writes
 * through a scope keeps its exact prefix; this reading of the layout is only for such keys:
 * the first `ws` segment after the root marks `<root>:ws:<id>:<collection>` (roots cannot hold a
 * `ws` segment, ids and collections cannot hold ":"); otherwise the first built-in collection
 * segment after the root ends the prefix, else the first two segments. Undefined when the key has
 * no name part.
 */
export function layoutPrefixLength(key: string): number | undefined {
  const segments = key.split(SEPARATOR);
  const at = (count: number) => {
    if (count >= segments.length) return undefined;
    let length = 0;
    for (let i = 0; i < count; i++) length += segments[i]!.length + SEPARATOR.length;
    return length - SEPARATOR.length;
  };
  const ws = segments.indexOf(WORKSPACE_SEGMENT, 1);
  if (ws !== -1 && LAYOUT_COLLECTION.test(segments[ws + 2] ?? "")) return at(ws + 3);
  for (let i = 1; i < segments.length - 1; i++) {
    const base = segments[i]!.replace(/#vectors$/, "");
    if (BUILT_IN.has(base)) return at(i + 1);
  }
  return at(2);
}
