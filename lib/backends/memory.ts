import { type Backend, DRIVER, type Driver } from "./driver.js";
import { MapCore } from "./map.js";
import { mapScope } from "./map-scope.js";

/**
 * The Map behind `memory:` URLs. It is a real Map (raw Keyv accepts it), and a raw write to it
 * (a plain Keyv sharing the store) is booked to the prefix the key layout gives it, so scopes
 * list it as well.
 */
export class MemoryStore extends Map<string, unknown> {
  readonly #core = new MapCore(this);
  readonly [DRIVER]: Driver = {
    scope: (prefix, options) => mapScope(this.#core, prefix, undefined, undefined, options?.quota !== undefined),
    // One thread: counting and installing a quota happen between two writes, never during one.
    quotas: {
      set: async (base, quota) => this.#core.setQuota(base, quota),
      read: async (base) => this.#core.readQuota(base),
    },
    watch: (listener) => this.#core.watch(listener),
  };

  override set(key: string, value: unknown): this {
    this.#core.rawSet(key, value);
    return this;
  }

  override delete(key: string): boolean {
    return this.#core.rawDelete(key);
  }

  override clear(): void {
    this.#core.rawClear();
  }
}

// Named in-process stores: every storage opened on `memory:<name>` shares one Map.
const named = new Map<string, MemoryStore>();

/** `memory:` is a private Map for this storage; `memory:<name>` a Map shared by name within the process. */
export function openMemoryBackend(url: string): Backend {
  const name = url.slice("memory:".length);
  let store: MemoryStore;
  if (name === "") store = new MemoryStore();
  else {
    store = named.get(name) ?? new MemoryStore();
    named.set(name, store);
  }
  // Closing never drops a named store: another storage of the process may still use it.
  return { store, driver: store[DRIVER], url, close: async () => {} };
}
