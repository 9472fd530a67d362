/**
 * Hostile and broken input, one test per row and backend: each row must fail with its
 * typed error (class, `code`, a message naming the problem, `field` for configs), and
 * must leave the store exactly as it was — compared key by key and value by value
 * through the raw store (Redis client, file on disk, the Map), and through the API.
 *
 * docs/hostile.md renders this table; a test below keeps the two in step
 * (KVWS_WRITE_DOCS=1 npx vitest run spec/hostile.spec.ts rewrites it).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  configFromEnv,
  createStorage,
  DimensionMismatchError,
  InvalidArgumentError,
  InvalidCollectionError,
  InvalidConfigError,
  InvalidNameError,
  InvalidRootError,
  InvalidValueError,
  InvalidVectorError,
  InvalidWorkspaceIdError,
  KeyvWorkspacesError,
  openStorage,
  StorageClosedError,
  type StorageConfig,
  scopeStore,
  type WorkspaceStorage,
} from "../lib/index.js";
import { MAX_COLLECTION_LENGTH, MAX_NAME_LENGTH, MAX_WORKSPACE_ID_LENGTH } from "../lib/keys.js";
import { BACKENDS } from "./support/backends.js";
import { randomRoot } from "./support/env.js";
import { rawDump } from "./support/model.js";

interface Ctx {
  /** A storage of workspace "tenant" that already holds data in every collection. */
  s: WorkspaceStorage;
  url: string;
  root: string;
}

interface Expected {
  error: abstract new (...args: never[]) => KeyvWorkspacesError;
  code: string;
  message: RegExp;
  field?: string;
}

interface Row {
  area: string;
  /** The call, with `X` standing for the hostile input. */
  call: string;
  input: string;
  run(ctx: Ctx): unknown;
  expected: Expected;
}

// --- rendering inputs for test names and the doc ------------------------------------------

/** Readable, one-line, unambiguous: control characters and lone surrogates as \uXXXX. */
function show(value: unknown): string {
  if (typeof value === "string") {
    const first = value[0];
    if (value.length > 24 && first !== undefined && value === first.repeat(value.length)) {
      return `${JSON.stringify(first)} × ${value.length}`;
    }
    return JSON.stringify(value).replace(
      /[\u007f-\u009f]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  }
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "symbol") return "Symbol()";
  if (typeof value === "function") return "a function";
  if (value === undefined) return "undefined";
  return JSON.stringify(value);
}

// --- expected errors ----------------------------------------------------------------------

const wsId = (message = /workspace id/): Expected => ({
  error: InvalidWorkspaceIdError,
  code: "ERR_INVALID_WORKSPACE_ID",
  message,
});
const rootErr = (message = /invalid root/): Expected => ({
  error: InvalidRootError,
  code: "ERR_INVALID_ROOT",
  message,
});
const collErr = (message = /collection name/): Expected => ({
  error: InvalidCollectionError,
  code: "ERR_INVALID_COLLECTION",
  message,
});
const nameErr = (message: RegExp): Expected => ({ error: InvalidNameError, code: "ERR_INVALID_NAME", message });
const valueErr = (message: RegExp): Expected => ({ error: InvalidValueError, code: "ERR_INVALID_VALUE", message });
const argErr = (message: RegExp): Expected => ({ error: InvalidArgumentError, code: "ERR_INVALID_ARGUMENT", message });
const vectorErr = (message = /vector/i): Expected => ({
  error: InvalidVectorError,
  code: "ERR_INVALID_VECTOR",
  message,
});
const dimErr: Expected = { error: DimensionMismatchError, code: "ERR_VECTOR_DIMENSIONS", message: /dimension/i };
const configErr = (field: string, message: RegExp = new RegExp(field.replace(/[.*]/g, "\\$&"))): Expected => ({
  error: InvalidConfigError,
  code: "ERR_INVALID_CONFIG",
  message,
  field,
});
const closedErr: Expected = { error: StorageClosedError, code: "ERR_STORAGE_CLOSED", message: /closed/ };

// --- hostile inputs -------------------------------------------------------------------------

const BAD_WORKSPACE_IDS: unknown[] = [
  "",
  ".",
  "..",
  "../escape",
  "bad/name",
  "bad\\name",
  "bad:name",
  "a*",
  "a?",
  "[a]",
  "a b",
  "-lead",
  "_lead",
  ".hidden",
  "é",
  "ｗ",
  "a\u0000",
  "a\n",
  "a\u007f",
  "a\u0085",
  "a\uD800",
  "ws:a",
  "x".repeat(MAX_WORKSPACE_ID_LENGTH + 1),
];
const NON_STRINGS: unknown[] = [42, {}, [], true];

const BAD_ROOTS: unknown[] = [
  "",
  " ",
  "a b",
  "a*",
  "a?",
  "a[",
  "a]",
  "a\\b",
  ":a",
  "a:",
  "a::b",
  "ws",
  "app:ws",
  "ws:app",
  "a\u0000",
  "a\n",
  "a\tb",
  "a\u0085",
];

const BAD_COLLECTIONS: unknown[] = [
  "",
  "ws",
  "Artifacts",
  "1abc",
  "a:b",
  "a b",
  "a*",
  "_x",
  "a/b",
  "a#index",
  "a\n",
  "é",
  "a".repeat(MAX_COLLECTION_LENGTH + 1),
  5,
  null,
];

/** Names of artifacts and vector ids: the contract allows any printable text up to the limit. */
const BAD_NAMES: unknown[] = [
  "",
  "x".repeat(MAX_NAME_LENGTH + 1),
  "a\u0000b",
  "a\nb",
  "a\tb",
  "\r",
  "a\u001b[31m",
  "a\u007f",
  "a\u0085",
  "\uD800",
  "a\uDC00b",
  "\uDBFF\uDBFF",
  5,
  null,
  undefined,
  {},
];

const BAD_WORKFLOW_NAMES: unknown[] = [
  "",
  "1abc",
  "a-b",
  "a b",
  "a:b",
  "a.b",
  "é",
  "a\n",
  "x".repeat(MAX_NAME_LENGTH + 1),
  5,
  null,
];

function cycle(): unknown {
  const node: Record<string, unknown> = { a: 1 };
  node.self = node;
  return node;
}
class Point {
  x = 1;
}
const withExtra = Object.assign([1, 2], { extra: 3 });
const hidden = Object.defineProperty({ a: 1 }, "secret", { value: 2, enumerable: false });

/** Data that JSON (and so every backend) would refuse, or silently change. */
const BAD_DATA: Array<[string, () => unknown, RegExp]> = [
  ["a function", () => () => 1, /artifact data at \$ is function/],
  ["a cycle", cycle, /circular/],
  ["BigInt 1n", () => 1n, /BigInt/],
  ["Symbol()", () => Symbol("s"), /symbol/],
  ["undefined", () => undefined, /undefined/],
  ["NaN", () => Number.NaN, /NaN/],
  ["Infinity", () => Number.POSITIVE_INFINITY, /Infinity/],
  ["-Infinity", () => Number.NEGATIVE_INFINITY, /Infinity/],
  ["{ a: undefined }", () => ({ a: undefined }), /\$\.a is undefined/],
  ["[1, , 2] (sparse)", () => Object.assign(new Array(3), { 0: 1, 2: 2 }), /sparse/],
  ["[1, 2] with a non-index property", () => withExtra, /non-index/],
  ["{ [Symbol()]: 1 }", () => ({ [Symbol("k")]: 1 }), /symbol keys/],
  ["an object with a non-enumerable property", () => hidden, /non-enumerable/],
  ["new Date()", () => new Date(0), /Date/],
  ["{ d: new Date() }", () => ({ d: new Date(0) }), /\$\.d is a Date/],
  ["new Map()", () => new Map([["a", 1]]), /Map/],
  ["new Set([1])", () => new Set([1]), /Set/],
  ["a class instance", () => new Point(), /Point/],
  ["{ toJSON() {…} }", () => ({ toJSON: () => 1 }), /toJSON is function/],
  ["{ n: { deep: NaN } }", () => ({ n: { deep: Number.NaN } }), /\$\.n\.deep is NaN/],
  ["[1n]", () => [1n], /\$\[0\] is a BigInt/],
  ["{ bytes: new Uint8Array(1) } (bytes only as the whole value)", () => ({ bytes: new Uint8Array(1) }), /Uint8Array/],
];

const BAD_METADATA: Array<[string, () => unknown]> = [
  ["null", () => null],
  ["[]", () => []],
  ['"text"', () => "text"],
  ["5", () => 5],
  ["{ f: a function }", () => ({ f: () => 1 })],
  ["{ d: new Date() }", () => ({ d: new Date(0) })],
  ["{ n: NaN }", () => ({ n: Number.NaN })],
  ["{ b: 1n }", () => ({ b: 1n })],
  ["a cycle", cycle],
  ["{ u: undefined }", () => ({ u: undefined })],
  ["{ list: [ , 1] } (sparse)", () => ({ list: Object.assign(new Array(2), { 1: 1 }) })],
  ["a class instance", () => new Point()],
];

const BAD_VECTORS: Array<[string, () => unknown]> = [
  ["[]", () => []],
  ["[NaN, 1, 2]", () => [Number.NaN, 1, 2]],
  ["[Infinity, 0, 0]", () => [Number.POSITIVE_INFINITY, 0, 0]],
  ['[1, "a", 2]', () => [1, "a", 2]],
  ['"abc"', () => "abc"],
  ["{ length: 3 }", () => ({ length: 3 })],
  ["null", () => null],
  ["undefined", () => undefined],
];

const BAD_DEP_SPECS: unknown[] = ["", " lodash", "lodash ", "has space", "a\nb", "\u0000", "\uD800", "@", 5, null];

// --- the table ------------------------------------------------------------------------------

const rows: Row[] = [];
const row = (area: string, call: string, input: string, run: Row["run"], expected: Expected) =>
  rows.push({ area, call, input, run, expected });

/** A config for this backend and root, with one field replaced or removed. */
const config = (c: Ctx, patch: Record<string, unknown>, drop: string[] = []): StorageConfig => {
  const out: Record<string, unknown> = { url: c.url, root: c.root, workspaceId: "tenant", ...patch };
  for (const key of drop) delete out[key];
  return out as StorageConfig;
};

for (const id of BAD_WORKSPACE_IDS) {
  row("workspace id", "storage.withWorkspace(X)", show(id), (c) => c.s.withWorkspace(id as string), wsId());
}
for (const id of NON_STRINGS) {
  row(
    "workspace id",
    "storage.withWorkspace(X)",
    show(id),
    (c) => c.s.withWorkspace(id as string),
    wsId(/must be a string/),
  );
}
for (const id of ["", "../escape", "bad:name", "a\n"]) {
  row(
    "workspace id",
    "openStorage({ …, workspaceId: X })",
    show(id),
    (c) => openStorage(config(c, { workspaceId: id })),
    wsId(),
  );
}
row(
  "workspace id",
  "createStorage(map, { root, workspaceId: X })",
  "42",
  () => createStorage(new Map(), { root: "app", workspaceId: 42 as unknown as string }),
  wsId(/must be a string/),
);
row(
  "workspace id",
  "openStorage({ …, workspaceId: X })",
  "42",
  (c) => openStorage(config(c, { workspaceId: 42 })),
  configErr("workspaceId"),
);

for (const root of BAD_ROOTS) {
  row("root", "openStorage({ …, root: X })", show(root), (c) => openStorage(config(c, { root })), rootErr());
}
row("root", "openStorage({ …, root: X })", "5", (c) => openStorage(config(c, { root: 5 })), configErr("root"));
row(
  "root",
  "openStorage({ url } without root)",
  "(missing)",
  (c) => openStorage(config(c, {}, ["root"])),
  configErr("root"),
);
row(
  "root",
  "createStorage(map, { root: X })",
  "5",
  () => createStorage(new Map(), { root: 5 as unknown as string }),
  rootErr(),
);
for (const prefix of ["app:*", "app::deps", "", "a b", "x?"]) {
  row(
    "deps prefix",
    "openStorage({ …, depsPrefix: X })",
    show(prefix),
    (c) => openStorage(config(c, { depsPrefix: prefix })),
    rootErr(/invalid deps prefix/),
  );
}
row(
  "deps prefix",
  "openStorage({ …, depsPrefix: X })",
  "5",
  (c) => openStorage(config(c, { depsPrefix: 5 })),
  configErr("depsPrefix"),
);

for (const name of BAD_COLLECTIONS) {
  row("collection", "storage.collection(X)", show(name), (c) => c.s.collection(name as string), collErr());
}
for (const list of [["ws"], ["Notes"], ["a:b"]]) {
  row(
    "collection",
    "openStorage({ …, unscoped: X })",
    show(list),
    (c) => openStorage(config(c, { unscoped: list })),
    collErr(),
  );
}
row(
  "collection",
  "openStorage({ …, unscoped: X })",
  '"deps"',
  (c) => openStorage(config(c, { unscoped: "deps" })),
  configErr("unscoped"),
);
row(
  "collection",
  "openStorage({ …, unscoped: X })",
  "[5]",
  (c) => openStorage(config(c, { unscoped: [5] })),
  configErr("unscoped.0"),
);
row(
  "collection",
  "createStorage(map, { root, unscoped: X })",
  '"deps"',
  () => createStorage(new Map(), { root: "app", unscoped: "deps" as unknown as string[] }),
  collErr(/unscoped must be an array/),
);

for (const name of BAD_NAMES) {
  row(
    "artifact name",
    "artifacts.save(X, 1)",
    show(name),
    (c) => c.s.artifacts.save(name as string, 1),
    nameErr(/artifact name/),
  );
}
row(
  "artifact name",
  "artifacts.load(X)",
  show("x".repeat(MAX_NAME_LENGTH + 1)),
  (c) => c.s.artifacts.load("x".repeat(MAX_NAME_LENGTH + 1)),
  nameErr(/artifact name is 513 characters long; the limit is 512/),
);
row("artifact name", "artifacts.has(X)", show("a\nb"), (c) => c.s.artifacts.has("a\nb"), nameErr(/control character/));
row("artifact name", "artifacts.delete(X)", show(""), (c) => c.s.artifacts.delete(""), nameErr(/non-empty/));
row(
  "artifact name",
  "artifacts.info(X)",
  show("\uD800"),
  (c) => c.s.artifacts.info("\uD800"),
  nameErr(/unpaired UTF-16 surrogate/),
);

for (const id of BAD_NAMES.filter((n) => n !== undefined && typeof n !== "object")) {
  row(
    "vector id",
    "vectors.upsert(X, [1, 2, 3])",
    show(id),
    (c) => c.s.vectors.upsert(id as string, [1, 2, 3]),
    nameErr(/vector id/),
  );
}
row("vector id", "vectors.get(X)", show("a\n"), (c) => c.s.vectors.get("a\n"), nameErr(/vector id/));
row("vector id", "vectors.delete(X)", show(""), (c) => c.s.vectors.delete(""), nameErr(/vector id/));

for (const name of BAD_WORKFLOW_NAMES) {
  row(
    "workflow name",
    "workflows.add({ name: X, … })",
    show(name),
    (c) => c.s.workflows.add({ name: name as string, source: "s", description: "d" }),
    nameErr(/invalid workflow name/),
  );
}
row(
  "workflow name",
  "workflows.get(X)",
  show("a b"),
  (c) => c.s.workflows.get("a b"),
  nameErr(/invalid workflow name/),
);
row(
  "workflow name",
  "workflows.delete(X)",
  show("a:b"),
  (c) => c.s.workflows.delete("a:b"),
  nameErr(/invalid workflow name/),
);
row(
  "workflow name",
  "workflows.add(X)",
  "null",
  (c) => c.s.workflows.add(null as never),
  nameErr(/invalid workflow name/),
);

row(
  "workflow field",
  "workflows.add({ …, source: X })",
  "5",
  (c) => c.s.workflows.add({ name: "keep_flow", source: 5 as never, description: "d" }),
  valueErr(/source must be a string/),
);
row(
  "workflow field",
  "workflows.add({ …, description: X })",
  "null",
  (c) => c.s.workflows.add({ name: "keep_flow", source: "s", description: null as never }),
  valueErr(/description must be a string/),
);
row(
  "workflow field",
  "workflows.add({ …, metadata: X })",
  "[]",
  (c) => c.s.workflows.add({ name: "keep_flow", source: "s", description: "d", metadata: [] as never }),
  valueErr(/metadata/),
);
row(
  "workflow field",
  "workflows.add({ …, metadata: X })",
  "{ f: a function }",
  (c) => c.s.workflows.add({ name: "keep_flow", source: "s", description: "d", metadata: { f: () => 1 } }),
  valueErr(/metadata at \$\.f is function/),
);
row(
  "workflow field",
  "workflows.search(X)",
  "5",
  (c) => c.s.workflows.search(5 as never),
  valueErr(/search query must be a string/),
);
row(
  "workflow field",
  "other workspace: workflows.search(X)",
  "5",
  (c) => c.s.withWorkspace("empty").workflows.search(5 as never),
  valueErr(/search query must be a string/),
);
for (const limit of [0, -1, 1.5, "3"]) {
  row(
    "workflow field",
    "workflows.search(q, { limit: X })",
    show(limit),
    (c) => c.s.workflows.search("q", { limit: limit as number }),
    argErr(/search limit must be a positive integer/),
  );
}

for (const [label, make, message] of BAD_DATA) {
  row("artifact data", "artifacts.save(n, X)", label, (c) => c.s.artifacts.save("keep", make()), valueErr(message));
}
for (const [label, make] of BAD_METADATA) {
  row(
    "metadata",
    "artifacts.save(n, 1, { metadata: X })",
    label,
    (c) => c.s.artifacts.save("keep", 1, { metadata: make() as never }),
    valueErr(/metadata/),
  );
}
row(
  "metadata",
  "artifacts.save(n, 1, { description: X })",
  "5",
  (c) => c.s.artifacts.save("keep", 1, { description: 5 as never }),
  valueErr(/description must be a string/),
);
row(
  "metadata",
  "artifacts.save(n, 1, X)",
  "null",
  (c) => c.s.artifacts.save("keep", 1, null as never),
  valueErr(/options must be an object/),
);
row(
  "metadata",
  "vectors.upsert(id, v, X)",
  "{ f: a function }",
  (c) => c.s.vectors.upsert("keep", [1, 2, 3], { f: () => 1 }),
  valueErr(/metadata/),
);
row(
  "metadata",
  "vectors.upsert(id, v, X)",
  "[]",
  (c) => c.s.vectors.upsert("keep", [1, 2, 3], [] as never),
  valueErr(/metadata/),
);

for (const [label, make] of BAD_VECTORS) {
  row("vector", "vectors.upsert(id, X)", label, (c) => c.s.vectors.upsert("keep", make() as number[]), vectorErr());
}
row("vector", "vectors.upsert(id, X) (store holds 3-d)", "[1, 2]", (c) => c.s.vectors.upsert("other", [1, 2]), dimErr);
row(
  "vector",
  "vectors.upsert(id, X) (store holds 3-d)",
  "[1, 2, 3, 4]",
  (c) => c.s.vectors.upsert("keep", [1, 2, 3, 4]),
  dimErr,
);
row("vector", "vectors.search(X)", "[]", (c) => c.s.vectors.search([]), vectorErr());
row("vector", "vectors.search(X)", "[NaN, 0, 0]", (c) => c.s.vectors.search([Number.NaN, 0, 0]), vectorErr());
row("vector", "vectors.search(X) (store holds 3-d)", "[1, 2]", (c) => c.s.vectors.search([1, 2]), dimErr);
for (const k of [0, -1, 1.5]) {
  row(
    "vector",
    "vectors.search(q, { k: X })",
    show(k),
    (c) => c.s.vectors.search([1, 2, 3], { k }),
    argErr(/k must be a positive integer/),
  );
}

for (const spec of BAD_DEP_SPECS) {
  row(
    "dependency spec",
    "deps.add(X)",
    show(spec),
    (c) => c.s.deps.add(spec as string),
    valueErr(/invalid dependency spec/),
  );
}
row("dependency spec", "deps.remove(X)", show(""), (c) => c.s.deps.remove(""), valueErr(/invalid dependency spec/));
row("dependency spec", "deps.has(X)", "5", (c) => c.s.deps.has(5 as never), valueErr(/invalid dependency spec/));

for (const value of [null, undefined, "redis://127.0.0.1:6379", []]) {
  row(
    "config",
    "openStorage(X)",
    show(value),
    () => openStorage(value as never),
    configErr("", /invalid storage config/),
  );
}
for (const url of [
  "ftp://example.test/x",
  "",
  "http://127.0.0.1",
  "memory",
  "mongodb://127.0.0.1",
  "/tmp/store.json",
  5,
]) {
  row("config", "openStorage({ url: X, root })", show(url), (c) => openStorage(config(c, { url })), configErr("url"));
}
row(
  "config",
  "openStorage({ url: X, root })",
  show("file:"),
  (c) => openStorage(config(c, { url: "file:" })),
  configErr("url", /names no path/),
);
row(
  "config",
  "openStorage({ url: X, root })",
  show("file://example.test/x.json"),
  (c) => openStorage(config(c, { url: "file://example.test/x.json" })),
  configErr("url", /only local files/),
);
row(
  "config",
  "openStorage({ url: X, root })",
  show("file:///tmp/%zz.json"),
  (c) => openStorage(config(c, { url: "file:///tmp/%zz.json" })),
  configErr("url", /not a valid URL/),
);
// A file url the process cannot use: a directory, below a regular file, or where mkdir -p would spin (Linux /proc).
const FILE_URLS: Array<[string, () => string]> = [
  ["file:<a directory>", () => `file:${tmpdir()}`],
  ["file:<a regular file>/sub/x.json", () => `file:${join(fileURLToPath(import.meta.url), "sub", "x.json")}`],
  ...(process.platform === "linux"
    ? ([["file:/proc/kvws-nope/x.json", () => "file:/proc/kvws-nope/x.json"]] as Array<[string, () => string]>)
    : []),
];
for (const [label, url] of FILE_URLS) {
  row(
    "config",
    "openStorage({ url: X, root })",
    label,
    (c) => openStorage(config(c, { url: url() })),
    configErr("url", /cannot open the file store/),
  );
}
row(
  "config",
  "openStorage({ root } without url)",
  "(missing)",
  (c) => openStorage(config(c, {}, ["url"])),
  configErr("url"),
);
row(
  "config",
  "openStorage({ …, X })",
  "extra: 1 (unknown key)",
  (c) => openStorage(config(c, { extra: 1 })),
  configErr("extra"),
);
row(
  "config",
  "openStorage({ …, X })",
  'workspaceID: "a" (typo)',
  (c) => openStorage(config(c, { workspaceID: "a" })),
  configErr("workspaceID"),
);
row("config", "configFromEnv(X)", "{} (no KVWS_URL)", () => configFromEnv({}), configErr("url", /KVWS_URL is not set/));
row(
  "config",
  "configFromEnv(X)",
  "{ KVWS_URL } (no KVWS_ROOT)",
  (c) => configFromEnv({ KVWS_URL: c.url }),
  configErr("root", /KVWS_ROOT is not set/),
);
row(
  "config",
  "configFromEnv(X)",
  'KVWS_URL="ftp://x"',
  () => configFromEnv({ KVWS_URL: "ftp://x", KVWS_ROOT: "app" }),
  configErr("url"),
);
row(
  "config",
  "openStorage(configFromEnv(X))",
  'KVWS_ROOT="a b"',
  (c) => openStorage(configFromEnv({ KVWS_URL: c.url, KVWS_ROOT: "a b" })),
  rootErr(),
);
row(
  "config",
  "openStorage(configFromEnv(X))",
  'KVWS_WORKSPACE_ID="../x"',
  (c) => openStorage(configFromEnv({ KVWS_URL: c.url, KVWS_ROOT: c.root, KVWS_WORKSPACE_ID: "../x" })),
  wsId(),
);

for (const store of [null, 42, {}, "redis://127.0.0.1:6379"]) {
  row(
    "store",
    "createStorage(X, { root })",
    show(store),
    () => createStorage(store as never, { root: "app" }),
    argErr(/store must be a Keyv store adapter/),
  );
}
row(
  "store",
  "createStorage(map, X)",
  "null",
  () => createStorage(new Map(), null as never),
  argErr(/options must be an object/),
);
for (const prefix of ["", "a*", "a::b", 5]) {
  row(
    "store",
    "scopeStore(map, X)",
    show(prefix),
    () => scopeStore(new Map(), prefix as string),
    rootErr(/invalid scope prefix/),
  );
}
row(
  "store",
  "createStorage(map, { root }).toBootstrapConfig()",
  "(no url)",
  () => createStorage(new Map(), { root: "app" }).toBootstrapConfig(),
  configErr("url", /without a url/),
);

row(
  "closed",
  "X.artifacts.save(n, 1)",
  "a closed storage",
  async (c) => {
    const s = await openStorage(config(c, {}));
    await s.close();
    return s.artifacts.save("keep", "overwritten");
  },
  closedErr,
);
row(
  "closed",
  "X.withWorkspace(id)",
  "a closed storage",
  async (c) => {
    const s = await openStorage(config(c, {}));
    await s.close();
    return s.withWorkspace("other");
  },
  closedErr,
);
row(
  "closed",
  "X.artifacts.delete(n)",
  "a view of a closed storage",
  async (c) => {
    const s = await openStorage(config(c, {}));
    const view = s.withWorkspace("tenant");
    await s.close();
    return view.artifacts.delete("keep");
  },
  closedErr,
);

// --- the tests --------------------------------------------------------------------------------

/** What a reader sees through the API; with the raw dump it pins "nothing changed". */
async function apiSnapshot(s: WorkspaceStorage): Promise<unknown> {
  const notes: Array<[unknown, unknown]> = [];
  for await (const entry of s.collection("notes").iterator!(undefined)) notes.push([entry[0], entry[1]]);
  return {
    artifacts: await s.artifacts.list(),
    keep: await s.artifacts.load("keep"),
    bytes: [...((await s.artifacts.load("bytes")) as Uint8Array)],
    notes,
    vector: await s.vectors.get("keep"),
    vectors: await s.vectors.count(),
    workflows: await s.workflows.list(),
    deps: await s.deps.list(),
    legacy: await s.withWorkspace(null).artifacts.list(),
  };
}

/** Runs a row; a call that unexpectedly succeeds opens nothing that outlives the test. */
async function outcome(row: Row, ctx: Ctx): Promise<unknown> {
  try {
    const result = await row.run(ctx);
    if (result && typeof (result as WorkspaceStorage).close === "function") await (result as WorkspaceStorage).close();
    return { resolved: result };
  } catch (error) {
    return error;
  }
}

describe.each(BACKENDS)("hostile input on $name", (backend) => {
  const root = randomRoot(`h${backend.name}`);
  const url = backend.url(root);
  let s: WorkspaceStorage;

  beforeAll(async () => {
    s = await openStorage({ url, root, workspaceId: "tenant" });
    await s.artifacts.save("keep", { v: 1, text: ":colon" }, { description: "kept", metadata: { by: "seed" } });
    await s.artifacts.save("bytes", Uint8Array.from([0, 1, 255]));
    await s.collection("notes").set("keep", { note: true });
    await s.vectors.upsert("keep", [1, 2, 3], { seed: true });
    await s.workflows.add({ name: "keep_flow", source: "print(1)", description: "keep this flow" });
    await s.deps.add("lodash@^4.17.0");
    await s.withWorkspace(null).artifacts.save("legacy", "unscoped");
  });

  afterAll(async () => {
    await s.close();
    await backend.cleanup(root);
  });

  it.each(rows.map((r) => [`${r.area}: ${r.call.replace("X", r.input)}`, r] as const))("%s", async (_title, r) => {
    const ctx = { s, url, root };
    const rawBefore = await rawDump(backend.name, url, root);
    const apiBefore = await apiSnapshot(s);
    const error = await outcome(r, ctx);
    expect(error).toBeInstanceOf(r.expected.error);
    expect(error).toBeInstanceOf(KeyvWorkspacesError);
    expect(error).toMatchObject({ code: r.expected.code, message: expect.stringMatching(r.expected.message) });
    if (r.expected.field !== undefined) expect(error).toHaveProperty("field", r.expected.field);
    expect(await rawDump(backend.name, url, root)).toEqual(rawBefore);
    expect(await apiSnapshot(s)).toEqual(apiBefore);
  });

  it("accepts the limits themselves, so the rows above fail for the reason they name", async () => {
    const longest = "x".repeat(MAX_NAME_LENGTH);
    await s.artifacts.save(longest, 1);
    expect(await s.artifacts.load(longest)).toBe(1);
    await s.vectors.upsert(longest, [3, 2, 1]);
    expect(await s.vectors.delete(longest)).toBe(true);
    expect(await s.artifacts.delete(longest)).toBe(true);
    const id = "x".repeat(MAX_WORKSPACE_ID_LENGTH);
    expect(s.withWorkspace(id).workspaceId).toBe(id);
    expect(s.collection("a".repeat(MAX_COLLECTION_LENGTH))).toBeDefined();
    // A surrogate pair is fine: only unpaired halves are refused.
    await s.artifacts.save("emoji🙂", 2);
    expect((await s.artifacts.list()).map((i) => i.name)).toContain("emoji🙂");
    expect(await s.artifacts.delete("emoji🙂")).toBe(true);
  });
});

// --- docs/hostile.md stays the rendering of this table --------------------------------------

const DOC = new URL("../docs/hostile.md", import.meta.url);
const START = "<!-- rows:start -->";
const END = "<!-- rows:end -->";

function renderTable(): string {
  const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/`/g, "'");
  const lines = ["| Area | Call | Hostile input `X` | Error (`code`) |", "| --- | --- | --- | --- |"];
  for (const r of rows) {
    const { error, code, field } = r.expected;
    const where = field === undefined ? "" : `, field \`${field === "" ? '""' : cell(field)}\``;
    lines.push(`| ${r.area} | \`${cell(r.call)}\` | \`${cell(r.input)}\` | ${error.name} (\`${code}\`${where}) |`);
  }
  return lines.join("\n");
}

describe("docs/hostile.md", () => {
  it(`lists exactly the ${rows.length} rows tested above`, () => {
    const table = renderTable();
    let doc = readFileSync(DOC, "utf8");
    if (process.env.KVWS_WRITE_DOCS === "1") {
      doc = doc.replace(new RegExp(`${START}[\\s\\S]*${END}`), `${START}\n${table}\n${END}`);
      writeFileSync(DOC, doc);
    }
    // Compared cell by cell: the formatter is free to align the columns.
    const cells = (text: string) =>
      text
        .trim()
        .split("\n")
        .map((line) =>
          line
            .replace(/^\||\|$/g, "")
            .split(/(?<!\\)\|/)
            .map((cell) => cell.trim().replace(/^-+$/, "---")),
        );
    const between = doc.slice(doc.indexOf(START) + START.length, doc.indexOf(END));
    expect(cells(between)).toEqual(cells(table));
  });
});
