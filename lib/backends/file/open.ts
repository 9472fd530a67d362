import { resolve } from "node:path";
import { type Backend, DRIVER } from "../driver.js";
import { storePath } from "./fs.js";
import { FileStore, type FileStoreOptions } from "./store.js";

interface Registered {
  store: Promise<FileStore>;
  refs: number;
}

// One store per real path per process: every storage opened on it sees the same Map.
const registry = new Map<string, Registered>();
const live = new Set<FileStore>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers run synchronously; `live` holds the opened stores so no promise is needed here.
  process.once("exit", () => {
    for (const store of live) store.releaseOnExit();
  });
}

export async function openFileBackend(path: string, options: FileStoreOptions = {}): Promise<Backend> {
  // Keyed by the real path: a file reached through a symlink or a second path is still one store.
  const absolute = storePath(path);
  let entry = registry.get(absolute);
  if (!entry) {
    const store = new FileStore(absolute, options);
    entry = {
      store: store.open().then(() => {
        live.add(store);
        return store;
      }),
      refs: 0,
    };
    registry.set(absolute, entry);
    installExitHook();
    const opened = entry;
    entry.store.catch(() => {
      if (registry.get(absolute) === opened) registry.delete(absolute);
    });
  }
  entry.refs++;
  const current = entry;
  let store: FileStore;
  try {
    store = await current.store;
  } catch (error) {
    current.refs--;
    throw error;
  }
  let released = false;
  return {
    store,
    driver: store[DRIVER],
    // The path as configured, symlinks kept: a bootstrap config made from it follows the link as the user set it.
    url: `file:${resolve(path)}`,
    async close() {
      if (released) return;
      released = true;
      current.refs--;
      await store.flush();
      if (current.refs === 0 && registry.get(absolute) === current) {
        registry.delete(absolute);
        live.delete(store);
        await store.close();
      }
    },
  };
}
