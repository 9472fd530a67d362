import { createRequire } from "node:module";
import net from "node:net";

/**
 * Fails the run (never skips) when sqlite3's native addon is not built: `npm install` leaves it
 * unbuilt (allowScripts in package.json) and `npm test` builds it first; `npx vitest` does not.
 */
function requireSqlite3(): void {
  try {
    createRequire(import.meta.url)("sqlite3");
  } catch (error) {
    throw new Error(
      "sqlite3 does not load, so the SQLite tests cannot run: `npm install` skips building its native addon. " +
        "Run the tests with `npm test` (it builds it once) or run `node scripts/ensure-sqlite3.mjs` first.",
      { cause: error },
    );
  }
}

/** Fails the run (never skips) when the Redis the tests need does not answer. */
export default async function setup(): Promise<void> {
  requireSqlite3();
  const url = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  const ok = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port || 6379) });
    const done = (value: boolean) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(2000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => done(true));
  });
  if (!ok) {
    throw new Error(
      `No Redis answers at ${url.href}. Run the tests with "npm test" (it starts a private redis-server when one is installed), ` +
        "or start one: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no",
    );
  }
}
