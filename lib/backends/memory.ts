import { type Backend, DRIVER, type Driver } from "./driver.js";
import { mapDriver } from "./map.js";

/** The Map behind `memory:` URLs. It is a real Map (raw Keyv accepts it) that carries its own indexed driver. */
export class MemoryStore extends Map<string, unknown> {
  readonly [DRIVER]: Driver = mapDriver(this, { owned: true });
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
  return { store, url, close: async () => {} };
}
