import { InvalidValueError } from "../errors.js";
import { isWellFormed } from "../keys.js";
import { encodeValue } from "./codec.js";
import { listValues } from "./list.js";
import type { CollectionContext, DepsStore } from "./types.js";

// A package name ends where a version range starts: "@scope/pkg@^1", "lodash@4", "numpy>=1.2".
const PACKAGE = /^(@[^\s@/]+\/[^\s@/<>=!~;[]+|[^\s@<>=!~;[]+)/;

export function packageName(spec: string): string {
  if (
    typeof spec !== "string" ||
    spec.trim() !== spec ||
    spec === "" ||
    /[\s\p{Cc}]/u.test(spec) ||
    !isWellFormed(spec)
  ) {
    throw new InvalidValueError(
      `invalid dependency spec ${JSON.stringify(spec)}: a non-empty package spec without spaces, control characters or unpaired surrogates`,
    );
  }
  const name = PACKAGE.exec(spec)?.[1];
  if (!name) throw new InvalidValueError(`invalid dependency spec ${JSON.stringify(spec)}: no package name`);
  return name;
}

/** One entry per package name (key = name, value = the full spec), so a new spec replaces the old. */
export function createDepsStore({ store }: CollectionContext): DepsStore {
  return {
    async add(spec) {
      await store.set(packageName(spec), encodeValue(spec));
    },
    remove: async (nameOrSpec) => store.delete(packageName(nameOrSpec)),
    has: async (nameOrSpec) => store.has(packageName(nameOrSpec)),
    async list() {
      return (await listValues<string>(store)).map(([, spec]) => spec).sort();
    },
  };
}
