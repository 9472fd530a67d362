/**
 * zod, loaded on first use instead of at import: it is most of this package's import cost
 * (about 100 ms and 15 MiB; `zod/mini` loads the same core), and the hot paths (parseConfig,
 * compileFilter) accept valid input without it. zod builds the schemas that say why an input is
 * refused, and the exported storageConfigSchema.
 *
 * Loaded with require() because those callers are synchronous; this is zod's own CommonJS build
 * (package "exports"), a second copy beside an app's ESM zod. zod v4 recognises schemas by their
 * traits, not by class identity, so schemas of both copies compose.
 */
import { createRequire } from "node:module";
import type * as Zod from "zod";

let loaded: typeof Zod.z | undefined;

export function zod(): typeof Zod.z {
  loaded ??= (createRequire(import.meta.url)("zod") as typeof Zod).z;
  return loaded;
}

/**
 * A stand-in for the value `build()` returns, built on first touch: every property read, `in`,
 * key listing and prototype check goes to the real object, so callers cannot tell it apart.
 */
export function lazyObject<T extends object>(build: () => T): T {
  let real: T | undefined;
  const target = (): T => {
    real ??= build();
    return real;
  };
  // Methods are called on the real object (zod's use `this`), each bound once so it stays `===` itself.
  const bound = new Map<PropertyKey, { of: unknown; fn: unknown }>();
  return new Proxy({} as T, {
    get: (_, key) => {
      const value = Reflect.get(target(), key);
      if (typeof value !== "function") return value;
      let known = bound.get(key);
      if (known?.of !== value) {
        known = { of: value, fn: (value as (...args: unknown[]) => unknown).bind(target()) };
        bound.set(key, known);
      }
      return known.fn;
    },
    has: (_, key) => Reflect.has(target(), key),
    ownKeys: () => Reflect.ownKeys(target()),
    getOwnPropertyDescriptor: (_, key) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(target(), key);
      // A proxy may only report a property as its target has it: configurable, as if its own.
      return descriptor && { ...descriptor, configurable: true };
    },
    getPrototypeOf: () => Reflect.getPrototypeOf(target()),
    set: (_, key, value) => Reflect.set(target(), key, value),
  });
}
