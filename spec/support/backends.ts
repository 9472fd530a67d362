import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deleteUnder, REDIS_URL, rawRedis } from "./env.js";

/** Every built-in backend, as a URL per test root plus how to remove what a test left. */
export interface BackendCase {
  name: string;
  url(root: string): string;
  cleanup(root: string): Promise<void>;
}

export const BACKENDS: BackendCase[] = [
  { name: "memory", url: (root) => `memory:${root}`, cleanup: async () => {} },
  {
    name: "file",
    url: (root) => `file:${join(tmpdir(), `${root}.json`)}`,
    cleanup: async (root) => rmSync(join(tmpdir(), `${root}.json`), { force: true }),
  },
  {
    name: "redis",
    url: () => REDIS_URL,
    async cleanup(root) {
      const client = await rawRedis();
      try {
        await deleteUnder(client, root);
      } finally {
        await client.quit();
      }
    },
  },
];
