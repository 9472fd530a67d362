/**
 * The prefix store as a storage hands it out: every call refused once the storage that opened the
 * backend is closed (one flag read per call, shared by every view), and writes held until the
 * registry entries they need exist (`ready`, see lifecycle/registry.ts).
 *
 * Every collection call passes through here, so the common path allocates nothing (no closure
 * per call): `closed()` is undefined while the storage is open.
 */
import type { Decision, PageOptions, PrefixStore } from "./backends/driver.js";

/** The error every call gets once the storage is closed; undefined while it is open. */
export type ClosedCheck = () => Error | undefined;

export function guarded(
  store: PrefixStore,
  closed: ClosedCheck,
  ready?: () => Promise<unknown> | undefined,
): PrefixStore {
  const { version, changedSince, stats, scan, page, transact } = store;
  const fail = (error: Error) => Promise.reject(error);
  // Listings return an iterable, not a promise: a closed storage throws at the call.
  const open = () => {
    const error = closed();
    if (error) throw error;
  };
  return {
    prefix: store.prefix,
    get: (name) => {
      const error = closed();
      return error ? fail(error) : store.get(name);
    },
    getMany: (names) => {
      const error = closed();
      return error ? fail(error) : store.getMany(names);
    },
    has: (name) => {
      const error = closed();
      return error ? fail(error) : store.has(name);
    },
    set(name, value, ttl) {
      const error = closed();
      if (error) return fail(error);
      const waiting = ready?.();
      return waiting ? waiting.then(() => store.set(name, value, ttl)) : store.set(name, value, ttl);
    },
    setMany(entries) {
      const error = closed();
      if (error) return fail(error);
      const waiting = ready?.();
      return waiting ? waiting.then(() => store.setMany(entries)) : store.setMany(entries);
    },
    delete: (name) => {
      const error = closed();
      return error ? fail(error) : store.delete(name);
    },
    deleteMany: (names) => {
      const error = closed();
      return error ? fail(error) : store.deleteMany(names);
    },
    names: () => {
      open();
      return store.names();
    },
    clear: () => {
      const error = closed();
      return error ? fail(error) : store.clear();
    },
    ...(version && {
      version: () => {
        const error = closed();
        return error ? fail(error) : version.call(store);
      },
    }),
    ...(changedSince && {
      changedSince: (v: string) => {
        const error = closed();
        return error ? fail(error) : changedSince.call(store, v);
      },
    }),
    ...(stats && {
      stats: () => {
        const error = closed();
        return error ? fail(error) : stats.call(store);
      },
    }),
    ...(scan && {
      scan: () => {
        open();
        return scan.call(store);
      },
    }),
    ...(transact && {
      transact: (names: readonly string[], decide: (current: readonly unknown[]) => Decision[]) => {
        const error = closed();
        if (error) return fail(error);
        const waiting = ready?.();
        return waiting ? waiting.then(() => transact.call(store, names, decide)) : transact.call(store, names, decide);
      },
    }),
    ...(page && {
      page: (options: PageOptions) => {
        const error = closed();
        return error ? fail(error) : page.call(store, options);
      },
    }),
  };
}
