/**
 * The prefix-bound stores over a MapCore (memory and file backends): each operation runs through
 * the backend's MapAccess, so the file store can refresh from disk and hold its lock around it.
 */
import { joinKey } from "../keys.js";
import type { Decision, Driver, Entry, PrefixStore } from "./driver.js";
import { MapCore } from "./map.js";
import type { Write } from "./map-quota.js";

type AnyMap = Map<unknown, unknown>;

/** How a backend runs reads and writes against its MapCore (the file store waits for freshness and the disk). */
export interface MapAccess {
  read<T>(fn: () => T): Promise<T>;
  write<T>(fn: () => T): Promise<T>;
}

const immediate: MapAccess = {
  read: (fn) => Promise.resolve(fn()),
  write: (fn) => Promise.resolve(fn()),
};

function setAll(entries: readonly Entry[], setOne: SetOne) {
  for (const { name, value, ttl } of entries) setOne(name, value, ttl);
}

function deleteAll(core: MapCore, prefix: string, names: readonly string[]): number {
  let deleted = 0;
  for (const name of names) if (core.delete(prefix, name)) deleted++;
  return deleted;
}

type SetOne = (name: string, value: unknown, ttl: number | undefined) => void;

/** PrefixStore.replace in one turn: the value stored, if any, then the write (judged like set). */
function replaceOne(core: MapCore, prefix: string, setOne: SetOne, name: string, value: unknown, counted: boolean) {
  const previous = core.get(prefix, name);
  if (previous === undefined) return undefined;
  if (counted) core.quotas?.admitOne(prefix, name, value);
  setOne(name, value, undefined);
  return previous;
}

/**
 * A batch of a scope that counts against a quota, judged before any of it is written (all or
 * nothing); without a quota anywhere in the store this is one check.
 */
function admitAll(core: MapCore, prefix: string, entries: readonly Entry[]): void {
  core.quotas?.admit(
    prefix,
    entries.map(({ name, value }) => [name, value]),
  );
}

/** transact's body: runs where nothing else can write in between (one turn, under the file lock). */
function decideAndApply(
  core: MapCore,
  prefix: string,
  setOne: SetOne,
  names: readonly string[],
  decide: (current: readonly unknown[]) => Decision[],
  counted: boolean,
): Decision[] {
  const decisions = decide(names.map((name) => core.get(prefix, name)));
  if (counted && core.quotas) {
    const writes: Write[] = [];
    names.forEach((name, i) => {
      const decision = decisions[i];
      if (decision !== undefined) writes.push([name, decision === "delete" ? undefined : decision.value]);
    });
    core.quotas.admit(prefix, writes);
  }
  names.forEach((name, i) => {
    const decision = decisions[i];
    if (decision === "delete") core.delete(prefix, name);
    else if (decision !== undefined) setOne(name, decision.value, decision.ttl);
  });
  return decisions;
}

/** Names listed as a copy: a caller that deletes while it iterates must still see every name once. */
async function* yieldAll(listed: string[] | Promise<string[]>): AsyncGenerator<string> {
  yield* await listed;
}

/**
 * The prefix-bound store over a MapCore; `onTtl` lets a backend keep expiries of its own.
 * `counted`: the scope was opened with `{ quota }`, so its writes are judged against its
 * workspace's quota, if it has one (map-quota.ts).
 */
export function mapScope(
  core: MapCore,
  prefix: string,
  access: MapAccess = immediate,
  onTtl?: (key: string, ttl: number | undefined) => void,
  counted = false,
): PrefixStore {
  if (access === immediate && onTtl === undefined) return directScope(core, prefix, counted);
  const setOne = (name: string, value: unknown, ttl: number | undefined) => {
    onTtl?.(joinKey(prefix, name), ttl);
    const timed = typeof ttl === "number" && ttl > 0;
    if (timed) core.prune(prefix);
    core.set(prefix, name, value, timed ? Date.now() + ttl : undefined);
  };
  return {
    prefix,
    get: (name) => access.read(() => core.get(prefix, name)),
    getMany: (names) => access.read(() => names.map((name) => core.get(prefix, name))),
    has: (name) => access.read(() => core.has(prefix, name)),
    set: (name, value, ttl) =>
      access.write(() => {
        if (counted) core.quotas?.admitOne(prefix, name, value);
        setOne(name, value, ttl);
      }),
    setMany: (entries: readonly Entry[]) =>
      access.write(() => {
        if (counted) admitAll(core, prefix, entries);
        setAll(entries, setOne);
      }),
    replace: (name, value) => access.write(() => replaceOne(core, prefix, setOne, name, value, counted)),
    delete: (name) => access.write(() => core.delete(prefix, name)),
    deleteMany: (names) => access.write(() => deleteAll(core, prefix, names)),
    names: () => yieldAll(access.read(() => core.names(prefix))),
    clear: () => access.write(() => core.clear(prefix)),
    page: (options) => access.read(() => core.page(prefix, options)),
    version: () => access.read(() => core.version(prefix)),
    changedSince: (version) => access.read(() => core.changedSince(prefix, version)),
    transact: (names, decide) => access.write(() => decideAndApply(core, prefix, setOne, names, decide, counted)),
  };
}

const timedAt = (ttl: number | undefined) => (typeof ttl === "number" && ttl > 0 ? Date.now() + ttl : undefined);

/**
 * mapScope for the memory backend: the same operations without an access wrapper, since every
 * `collection()` call of a memory store lands here and a closure per call is a measurable share of it.
 */
function directScope(core: MapCore, prefix: string, counted: boolean): PrefixStore {
  const setOne = (name: string, value: unknown, ttl: number | undefined) => {
    const at = timedAt(ttl);
    if (at !== undefined) core.prune(prefix);
    core.set(prefix, name, value, at);
  };
  return {
    prefix,
    get: (name) => Promise.resolve(core.get(prefix, name)),
    getMany: (names) => Promise.resolve(names.map((name) => core.get(prefix, name))),
    has: (name) => Promise.resolve(core.has(prefix, name)),
    set(name, value, ttl) {
      if (counted && core.quotas) {
        try {
          core.quotas.admitOne(prefix, name, value);
        } catch (error) {
          return Promise.reject(error);
        }
      }
      setOne(name, value, ttl);
      return Promise.resolve();
    },
    setMany(entries) {
      if (counted && core.quotas) {
        try {
          admitAll(core, prefix, entries);
        } catch (error) {
          return Promise.reject(error);
        }
      }
      setAll(entries, setOne);
      return Promise.resolve();
    },
    replace(name, value) {
      try {
        return Promise.resolve(replaceOne(core, prefix, setOne, name, value, counted));
      } catch (error) {
        return Promise.reject(error);
      }
    },
    delete: (name) => Promise.resolve(core.delete(prefix, name)),
    deleteMany: (names) => Promise.resolve(deleteAll(core, prefix, names)),
    names: () => yieldAll(core.names(prefix)),
    clear() {
      core.clear(prefix);
      return Promise.resolve();
    },
    page: (options) => Promise.resolve(core.page(prefix, options)),
    version: () => Promise.resolve(core.version(prefix)),
    changedSince: (version) => Promise.resolve(core.changedSince(prefix, version)),
    transact(names, decide) {
      try {
        return Promise.resolve(decideAndApply(core, prefix, setOne, names, decide, counted));
      } catch (error) {
        return Promise.reject(error);
      }
    },
  };
}

/** Driver over a Map (Keyv's default store): TTL is left to Keyv, which keeps the expiry inside the value. */
export function mapDriver(map: AnyMap, options: { logLimit?: number } = {}): Driver & { readonly core: MapCore } {
  const core = new MapCore(map, options);
  return { core, scope: (prefix) => mapScope(core, prefix), watch: (listener) => core.watch(listener) };
}
