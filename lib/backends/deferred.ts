/**
 * A driver whose code loads on first use. lib/scope.ts wraps an app's Redis adapter in one, so
 * that `createStorage` stays synchronous while the Redis driver (a dozen modules) loads only
 * for apps that hand it a Redis adapter, and only when they first touch it.
 *
 * A prefix store must show the optional methods its driver's would (callers test for them), so
 * the caller says which the real one has; once the driver is loaded, scopes are the real ones.
 */
import type { Driver, PrefixStore } from "./driver.js";

type Method = Exclude<keyof PrefixStore, "prefix" | "names" | "scan">;

export interface DeferredShape {
  /** Optional methods (beyond get/set/…) the real scope of `prefix` has, besides `names`. */
  methods(prefix: string): readonly Method[];
  /** Whether the real scope of `prefix` has scan(). */
  scans(prefix: string): boolean;
}

const REQUIRED: readonly Method[] = ["get", "getMany", "has", "set", "setMany", "delete", "deleteMany", "clear"];

export function deferredDriver(load: () => Promise<Driver>, shape: DeferredShape): Driver {
  let loaded: Driver | undefined;
  let loading: Promise<Driver> | undefined;
  const driver = () => {
    loading ??= load().then((real) => {
      loaded = real;
      return real;
    });
    return loading;
  };
  return {
    scope(prefix) {
      if (loaded) return loaded.scope(prefix);
      let real: Promise<PrefixStore> | undefined;
      const scope = () => {
        real ??= driver().then((d) => d.scope(prefix));
        return real;
      };
      const store: Record<string, unknown> = {
        prefix,
        async *names() {
          yield* (await scope()).names();
        },
      };
      if (shape.scans(prefix)) {
        store.scan = async function* () {
          yield* (await scope()).scan?.() ?? [];
        };
      }
      for (const name of [...REQUIRED, ...shape.methods(prefix)]) {
        store[name] = async (...args: unknown[]) => {
          const target = await scope();
          return (target[name] as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      }
      return store as unknown as PrefixStore;
    },
  };
}
