/**
 * The prefix store as a storage hands it out: every call refused once the storage that opened the
 * backend is closed (one flag read per call, shared by every view), and writes held until the
 * registry entries they need are written with them (`gate`, see lifecycle/registry.ts).
 *
 * Every collection call passes through here, so the common path allocates nothing (no closure
 * per call): `closed()` is undefined while the storage is open.
 */
import type { Decision, Entry, PageOptions, PrefixStore } from "./backends/driver.js";

/** The error every call gets once the storage is closed; undefined while it is open. */
export type ClosedCheck = () => Error | undefined;

/** The registrations a write needs (lifecycle/registry.ts registrationGate). */
export interface WriteGate<Due> {
  /** What is still to register, or undefined: then the write goes straight to the store. */
  due(): Due | undefined;
  /** Writes `due` and waits (for writes that cannot carry it: transact). */
  ensure(due: Due): Promise<unknown>;
  /** `entries` and `due`, in one write where the store can. */
  setMany(store: PrefixStore, entries: readonly Entry[], due: Due): Promise<void>;
}

export function guarded<Due>(store: PrefixStore, closed: ClosedCheck, gate?: WriteGate<Due>): PrefixStore {
  const { version, changedSince, stats, scan, page, transact, replace } = store;
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
      const due = gate?.due();
      return gate && due !== undefined ? gate.setMany(store, [{ name, value, ttl }], due) : store.set(name, value, ttl);
    },
    setMany(entries) {
      const error = closed();
      if (error) return fail(error);
      const due = gate?.due();
      return gate && due !== undefined ? gate.setMany(store, entries, due) : store.setMany(entries);
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
        const due = gate?.due();
        return gate && due !== undefined
          ? gate.ensure(due).then(() => transact.call(store, names, decide))
          : transact.call(store, names, decide);
      },
    }),
    ...(replace && {
      replace: (name: string, value: unknown) => {
        const error = closed();
        if (error) return fail(error);
        // A write still to register goes the usual way, which carries the registration.
        return gate?.due() !== undefined ? Promise.resolve(undefined) : replace.call(store, name, value);
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
