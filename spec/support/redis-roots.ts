/** Random roots for one spec file on the shared Redis, each deleted (key by key) after its tests. */
import { afterAll } from "vitest";
import { deleteUnder, randomRoot, rawRedis } from "./env.js";

export function redisRoots(tag: string): () => string {
  const roots: string[] = [];
  afterAll(async () => {
    const raw = await rawRedis();
    try {
      for (const root of roots) await deleteUnder(raw, root);
    } finally {
      await raw.quit();
    }
  });
  return () => {
    const root = randomRoot(tag);
    roots.push(root);
    return root;
  };
}
