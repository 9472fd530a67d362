import { InvalidConfigError } from "../errors.js";
import type { Backend, OpenOptions } from "./driver.js";
import { openMemoryBackend } from "./memory.js";
import { redact } from "./redis/url.js";

/**
 * URL schemes → the backend that serves them. Adding a backend = one file + one line here.
 * Every engine but memory is loaded when a URL of its scheme is first opened, never at import:
 * a `memory:` app must not pay for @redis/client, @keyv/redis, pg or sqlite3 (about 100 ms and
 * 15 MiB for the Redis client alone). spec/cold-start.spec.ts checks that nothing else loads them.
 */
const OPENERS: Record<string, (url: string, options: OpenOptions) => Promise<Backend> | Backend> = {
  "memory:": (url) => openMemoryBackend(url),
  "file:": async (url) => {
    const path = filePath(url);
    return (await import("./file/open.js")).openFileBackend(path);
  },
  "redis:": openRedis,
  "rediss:": openRedis,
  "redis+sentinel:": async (url, options) =>
    (await import("./redis/sentinel.js")).openRedisSentinelBackend(url, options),
  "sqlite:": async (url, options) => (await import("./sql/open.js")).openSqliteBackend(url, options),
  "postgres:": openPostgres,
  "postgresql:": openPostgres,
};

async function openRedis(url: string, options: OpenOptions): Promise<Backend> {
  return options.cluster
    ? (await import("./redis/cluster.js")).openRedisClusterBackend(url, options)
    : (await import("./redis/backend.js")).openRedisBackend(url, options);
}

async function openPostgres(url: string, options: OpenOptions): Promise<Backend> {
  return (await import("./sql/open.js")).openPostgresBackend(url, options);
}

export const SCHEMES = Object.keys(OPENERS);

export function schemeOf(url: string): string | undefined {
  const match = /^([a-z][a-z0-9+.-]*:)/i.exec(url);
  return match?.[1]?.toLowerCase();
}

export function isSupportedUrl(url: string): boolean {
  const scheme = schemeOf(url);
  return scheme !== undefined && scheme in OPENERS;
}

/** `file:data/x.json`, `file:/abs/x.json` and `file:///abs/x.json` all name a path. */
export function filePath(url: string): string {
  const rest = url.slice("file:".length);
  const path = rest.startsWith("//") ? localPath(url) : rest;
  if (path === "") throw new InvalidConfigError("url", `file URL ${JSON.stringify(url)} names no path`);
  return path;
}

/** The path of a `file://` URL; another host's file would silently become a local one, so it is refused. */
function localPath(url: string): string {
  let parsed: URL;
  let path: string;
  try {
    parsed = new URL(url);
    path = decodeURIComponent(parsed.pathname);
  } catch {
    throw new InvalidConfigError("url", `file URL ${JSON.stringify(url)} is not a valid URL (bad %-escape?)`);
  }
  if (parsed.hostname !== "" && parsed.hostname !== "localhost") {
    throw new InvalidConfigError(
      "url",
      `file URL ${JSON.stringify(url)} names host ${JSON.stringify(parsed.hostname)}; only local files are supported`,
    );
  }
  return path;
}

export async function openBackend(url: string, options: OpenOptions = {}): Promise<Backend> {
  const scheme = schemeOf(url);
  const open = scheme === undefined ? undefined : OPENERS[scheme];
  if (!open) {
    throw new InvalidConfigError(
      "url",
      `unsupported storage URL scheme in ${JSON.stringify(redact(url))}; use one of ${SCHEMES.join(" ")}`,
    );
  }
  if (options.cluster && scheme !== "redis:" && scheme !== "rediss:") {
    throw new InvalidConfigError("cluster", `cluster: true needs a redis:// or rediss:// url, got ${scheme}`);
  }
  if (options.durability === "replicated" && !REDIS_SCHEMES.has(scheme as string)) {
    throw new InvalidConfigError("durability", `durability "replicated" needs a Redis url, got ${scheme}`);
  }
  if (options.durability === "replicated" && options.cluster) {
    throw new InvalidConfigError("durability", 'durability "replicated" is not supported on a Redis Cluster yet');
  }
  return open(url, options);
}

const REDIS_SCHEMES = new Set(["redis:", "rediss:", "redis+sentinel:"]);

export { redact } from "./redis/url.js";
