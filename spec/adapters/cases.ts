import { createRequire } from "node:module";
import { join } from "node:path";
import KeyvRedis from "@keyv/redis";
import KeyvValkey from "@keyv/valkey";
import type { KeyvStoreAdapter } from "keyv";
import { KeyvFile } from "keyv-file";
import KeyvRedis515 from "keyv-redis-5-1-5";
import { REDIS_URL, tempDir } from "../support/env.js";

const require = createRequire(import.meta.url);

/** An adapter an app holds, as the app would create it, and how to let go of it. */
export interface AdapterCase {
  name: string;
  /** Whether it writes to the shared local Redis (so storage opened by URL sees its writes). */
  redis: boolean;
  open(): { store: KeyvStoreAdapter; close(): Promise<void> };
}

const redisCase = (name: string, Adapter: new (url: string) => KeyvStoreAdapter): AdapterCase => ({
  name,
  redis: true,
  open() {
    const store = new Adapter(REDIS_URL);
    return { store, close: () => store.disconnect?.() ?? Promise.resolve() };
  },
});

export const ADAPTERS: AdapterCase[] = [
  redisCase("@keyv/redis 5.1.6 (import)", KeyvRedis as never),
  redisCase("@keyv/redis 5.1.5 (another copy)", KeyvRedis515 as never),
  // require() loads the package's CommonJS build: a second module instance, a different class.
  redisCase("@keyv/redis (require)", (require("@keyv/redis") as { default: never }).default),
  {
    name: "@keyv/valkey",
    redis: true,
    open() {
      const store = new KeyvValkey(REDIS_URL) as unknown as KeyvStoreAdapter;
      return { store, close: async () => void (await store.disconnect?.()) };
    },
  },
  {
    name: "keyv-file",
    redis: false,
    open() {
      const dir = tempDir();
      const store = new KeyvFile({
        filename: join(dir.path, "store.json"),
        writeDelay: 1,
      }) as unknown as KeyvStoreAdapter;
      return { store, close: async () => dir.remove() };
    },
  },
];
