import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import type { WorkspaceStorage } from "../../lib/index.js";
import { deleteUnder, REDIS_URL, randomRoot, rawRedis } from "./env.js";
import { dropPgTables, pgTable, pgUrl, removeSqlite, sqliteFile } from "./sql.js";

/** Every built-in backend, as a URL per test root plus how to remove what a test left. */
export interface BackendCase {
  name: string;
  /** Config fields the case adds to every openStorage (the Redis hash layout). */
  config?: { redisLayout: "hash" };
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
  {
    name: "sqlite",
    url: (root) => `sqlite:${sqliteFile(root)}`,
    cleanup: async (root) => removeSqlite(sqliteFile(root)),
  },
  // One table per root (`?table=`), so a test drops only the tables it created.
  { name: "postgres", url: pgUrl, cleanup: (root) => dropPgTables(pgTable(root)) },
];

/** Redis with every collection in one hash (config redisLayout "hash"), for the suites that cover it too. */
export const REDIS_HASH: BackendCase = {
  ...(BACKENDS[2] as BackendCase),
  name: "redis-hash",
  config: { redisLayout: "hash" },
};

/**
 * Fresh roots and opened storages for the tests of one describe block on one backend: after
 * each test every storage is closed and every root removed.
 */
export function perTest(backend: BackendCase, tag: string = backend.name) {
  const opened: WorkspaceStorage[] = [];
  const roots: string[] = [];
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    for (const root of roots.splice(0)) await backend.cleanup(root);
  });
  return {
    newRoot(): string {
      const root = randomRoot(tag);
      roots.push(root);
      return root;
    },
    async track(storage: Promise<WorkspaceStorage>): Promise<WorkspaceStorage> {
      const s = await storage;
      opened.push(s);
      return s;
    },
  };
}
