/**
 * Versions of artifacts and workflows, and the conditional writes they allow (API.md section 9).
 * A version is opaque: a random process id and a counter, so two writers never make the same one
 * and making one costs no I/O. It is stored inside the entry, so every process reads the same.
 */
import { randomBytes } from "node:crypto";
import type { Decision, PrefixStore } from "../backends/driver.js";
import { ConflictError, InvalidArgumentError, UnsupportedStoreError } from "../errors.js";
import { decodeValue } from "./codec.js";

const PROCESS = randomBytes(8).toString("base64url");
let counter = 0;

export function newVersion(): string {
  counter += 1;
  return `${PROCESS}.${counter.toString(36)}`;
}

interface Versioned {
  version?: unknown;
  updatedAt?: unknown;
}

/** The entry's version; an entry written before versions existed has one made of its update time. */
export function versionOf(entry: Versioned): string {
  return typeof entry.version === "string" ? entry.version : `legacy.${String(entry.updatedAt)}`;
}

/** `ifVersion` as given: undefined (unconditional), null (only if absent) or a version string. */
export function checkIfVersion(ifVersion: unknown, what: string, allowNull = true): string | null | undefined {
  if (ifVersion === undefined || typeof ifVersion === "string") return ifVersion;
  if (ifVersion === null && allowNull) return null;
  throw new InvalidArgumentError(
    `${what}: ifVersion must be a version string${allowNull ? " or null (only if absent)" : ""}, got ${JSON.stringify(ifVersion)}`,
  );
}

function conflict(name: string, expected: string | null, current: string | null): ConflictError {
  const want = expected === null ? "no entry" : `version ${JSON.stringify(expected)}`;
  const found = current === null ? "none exists" : `its version is ${JSON.stringify(current)}`;
  return new ConflictError(
    current,
    `${JSON.stringify(name)} was written by someone else: expected ${want}, but ${found}`,
  );
}

/**
 * Writes `name` only if its version is `ifVersion` (null: only if absent), atomically on every
 * engine that can (PrefixStore.transact). `next` gets the entry now stored (undefined when absent
 * or expired) and says what to write. Throws ConflictError, writing nothing, on a mismatch.
 */
export async function writeIf<T extends Versioned>(
  store: PrefixStore,
  name: string,
  ifVersion: string | null,
  next: (previous: T | undefined) => Decision,
): Promise<T | undefined> {
  if (!store.transact) {
    throw new UnsupportedStoreError(
      "conditional writes (ifVersion) need a backend that can write atomically: memory, file, sqlite, postgres or redis",
    );
  }
  let previous: T | undefined;
  await store.transact([name], ([raw]) => {
    previous = decodeValue(raw, name) as T | undefined;
    const current = previous === undefined ? null : versionOf(previous);
    if (current !== ifVersion) throw conflict(name, ifVersion, current);
    return [next(previous)];
  });
  return previous;
}
