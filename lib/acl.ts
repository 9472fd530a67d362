/**
 * Isolation in depth for Redis: one ACL user per workspace, so that even code that bypasses
 * this library (or a bug in it) cannot read or write another workspace's keys through that
 * user's connection. The key layout makes it one pattern: everything of workspace `id`,
 * values and bookkeeping alike (`<prefix>#index`, and `<prefix>#log` where changes are tracked), lives under
 * `<root>:ws:<id>:` (`<root>:ws:{<id>}:` in the hash-tag layout; braces are literal in ACL globs).
 *
 * On a Redis Cluster, `ACL SETUSER` is not propagated between nodes: provisioning applies the
 * user to every master and replica the seed node knows of. Behind Sentinel (a redis+sentinel://
 * admin URL) it is applied to the master and every replica the Sentinels list, so the user is
 * there on whichever node a failover promotes.
 */
import { channelOf } from "./backends/redis/notify.js";
import { quotaKeys } from "./backends/redis/quota-ledger.js";
import { isSentinelUrl } from "./backends/redis/sentinel-url.js";
import { isErrorReply } from "./backends/redis/tx.js";
import { redact, scrub, withCredentials } from "./backends/redis/url.js";
import { InvalidArgumentError, InvalidWorkspaceIdError, StoreCommandError, UnsupportedStoreError } from "./errors.js";
import { type Keyspace, metaKey } from "./keys.js";
import { workspacesPrefix } from "./lifecycle/registry.js";

export interface RedisAclOptions {
  /** Adds `><password>`. Without a password (or hash) nobody can log in as the user until one is set. */
  password?: string;
  /** Adds `#<sha256 hex>`: lets an admin provision without handling the cleartext password. */
  passwordSha256?: string;
  /** Unscoped collections (deps by default) become read-write instead of read-only. */
  depsWritable?: boolean;
}

/**
 * Commands the library sends, and no more: connection setup (node-redis's handshake), plain
 * reads and writes of values, the sorted-set index, the stream change log of tracked prefixes,
 * and MULTI/EXEC that keeps a value and its index in step. None of them runs code the caller
 * supplies: scripts and functions are denied (see ACL_DENIED).
 */
export const ACL_COMMANDS: readonly string[] = Object.freeze([
  // connection
  "hello",
  "auth",
  "ping",
  "select",
  "quit",
  "client|setinfo",
  "client|setname",
  // values
  "get",
  "mget",
  "exists",
  "strlen",
  "set",
  "mset",
  "del",
  "unlink",
  // a collection's values, one hash per prefix (lib/backends/redis/hash.ts)
  "hset",
  "hget",
  "hmget",
  "hdel",
  "hkeys",
  "hlen",
  "hexists",
  "hscan",
  "hsetnx",
  // a quota's usage counter (lib/backends/redis/quota.ts)
  "hincrby",
  // sorted-set indexes
  "zadd",
  "zrem",
  "zrange",
  "zrangebyscore",
  "zmscore",
  "zscore",
  "zcount",
  "zremrangebyscore",
  "zscan",
  // stream change logs (tracked prefixes only)
  "xadd",
  "xrange",
  "xrevrange",
  // transactions, and the server clock TTL scores are kept on
  "multi",
  "exec",
  "discard",
  "watch",
  "unwatch",
  // storage.watch(): its own workspace's change channel only (see the & rule)
  "publish",
  "subscribe",
  "unsubscribe",
  "pubsub|numsub",
  // … and on a Redis Cluster, sharded pub/sub on the workspace's shard (the same & rule applies)
  "spublish",
  "ssubscribe",
  "sunsubscribe",
  "pubsub|shardnumsub",
  "time",
  // a cluster client's handshake and redirections: the slot map, replica reads, ASK
  "cluster|slots",
  "cluster|shards",
  "readonly",
  "asking",
  // durability "replicated": the WAIT after each write (it blocks only its own connection)
  "wait",
]);

/**
 * Denied by name even though `reset` already removes everything: the list documents what a
 * workspace user must never do — see all keys (SCAN, KEYS, RANDOMKEY), wipe or swap the
 * database, move keys out of reach, reconfigure or stop the server, manage users, or run
 * code of its own on the server (a script can block every tenant: `EVAL "while true do end" 0`;
 * loading scripts or functions grows server memory outside any key).
 */
export const ACL_DENIED: readonly string[] = Object.freeze([
  "scan",
  "keys",
  "randomkey",
  "flushdb",
  "flushall",
  "swapdb",
  "move",
  "migrate",
  "debug",
  "config",
  "monitor",
  "shutdown",
  "acl",
  "module",
  "eval",
  "evalsha",
  "eval_ro",
  "evalsha_ro",
  "script",
  "function",
  "fcall",
  "fcall_ro",
]);

// Only a handshake nicety; Redis before 7.2 does not know them, and node-redis ignores their failure.
const OPTIONAL = new Set([
  "+client|setinfo",
  "+client|setname",
  "-eval_ro",
  "-evalsha_ro",
  "-function",
  "-fcall",
  "-fcall_ro",
  "-module",
]);

const GLOB = /[*?[\]\\]/g;
const escapeGlob = (text: string) => text.replace(GLOB, "\\$&");
// biome-ignore lint/suspicious/noControlCharactersInRegex: user names and passwords are single ACL arguments
const NO_SPACE_OR_CONTROL = /^[^\s\u0000-\u001f\u007f]+$/;

function scopedWorkspace(ks: Keyspace): string {
  if (ks.workspaceId === undefined || ks.workspacePrefix === undefined) {
    throw new InvalidWorkspaceIdError(
      "a Redis ACL user belongs to one workspace, but this keyspace has no workspace id; " +
        "use keyspace({ root, workspaceId }) or storage.withWorkspace(id).keyspace",
    );
  }
  return ks.workspaceId;
}

/** Prefixes shared by all workspaces: the unscoped collections, and deps when it has its own prefix. */
function sharedPrefixes(ks: Keyspace): string[] {
  const collections = new Set(ks.unscoped);
  if (ks.depsPrefix !== undefined) collections.add("deps");
  return [...collections].map((collection) => ks.prefix(collection));
}

/**
 * The rules to pass to `ACL SETUSER <name> ...` for the workspace of `ks`: read/write on
 * `<root>:ws:<id>:*`, read-only on each unscoped collection (`<prefix>:*` and its bookkeeping
 * `<prefix>#*`), only the commands the library needs, and keyspace-wide commands denied.
 * Starts with `reset`, so applying it to an existing user replaces that user's rules entirely.
 */
export function redisAcl(ks: Keyspace, options: RedisAclOptions = {}): string[] {
  const id = scopedWorkspace(ks);
  const rules = ["reset", "on"];
  if (options.password !== undefined) rules.push(`>${checkPassword(options.password)}`);
  if (options.passwordSha256 !== undefined) {
    if (!/^[0-9a-f]{64}$/i.test(options.passwordSha256)) {
      throw new InvalidArgumentError("passwordSha256 must be 64 hex digits (the SHA-256 of the password)");
    }
    rules.push(`#${options.passwordSha256.toLowerCase()}`);
  }
  rules.push(`~${escapeGlob(`${ks.workspacePrefix as string}:`)}*`);
  // Pub/sub channels are not keys: `reset` denies them all, this allows the workspace's own feed.
  rules.push(`&${escapeGlob(channelOf(ks.workspacePrefix as string))}`);
  // The root's workspace registry: write-only, so the user registers (and on a drop removes) its
  // own id, and can neither list the other tenants nor touch their entries.
  const registry = workspacesPrefix(ks);
  // Its #ttl too: every plain write drops the name's expiry there (lib/backends/redis/driver.ts).
  rules.push(
    `%W~${escapeGlob(`${registry}:${id}`)}`,
    `%W~${escapeGlob(metaKey(registry, "index"))}`,
    `%W~${escapeGlob(metaKey(registry, "ttl"))}`,
  );
  // Its quota's limit: read by its own writes, never writable, so a tenant cannot lift it (its usage
  // counter is under the workspace's own pattern: its writes update it in the same MULTI).
  rules.push(`%R~${escapeGlob(quotaKeys(ks.workspacePrefix as string).limit)}`);
  const shared = options.depsWritable ? "%RW~" : "%R~";
  for (const prefix of sharedPrefixes(ks)) {
    rules.push(`${shared}${escapeGlob(`${prefix}:`)}*`, `${shared}${escapeGlob(`${prefix}#`)}*`);
  }
  rules.push(...ACL_COMMANDS.map((command) => `+${command}`));
  rules.push(...ACL_DENIED.map((command) => `-${command}`));
  return rules;
}

function checkPassword(password: unknown): string {
  if (typeof password !== "string" || !NO_SPACE_OR_CONTROL.test(password)) {
    // Never echo the value: it is a secret even when malformed.
    throw new InvalidArgumentError("the password must be a non-empty string without spaces or control characters");
  }
  return password;
}

/** `kvws:<root>:<id>` — unique per workspace, since workspace ids cannot contain ":". */
export function workspaceUsername(ks: Keyspace): string {
  return `kvws:${ks.root}:${scopedWorkspace(ks)}`;
}

function checkUsername(username: unknown): string {
  if (typeof username !== "string" || !NO_SPACE_OR_CONTROL.test(username) || username.length > 256) {
    throw new InvalidArgumentError(
      `invalid Redis user name ${JSON.stringify(username)}: 1-256 characters, no spaces or control characters`,
    );
  }
  return username;
}

export interface ProvisionOptions extends Omit<RedisAclOptions, "passwordSha256"> {
  password: string;
  /** Default: workspaceUsername(keyspace), i.e. `kvws:<root>:<id>`. */
  username?: string;
  /** Bound on connecting to the admin URL; default 5000 ms. */
  connectTimeoutMs?: number;
}

type Send = (args: string[]) => Promise<unknown>;

async function withAdmin<T>(
  adminUrl: string,
  connectTimeoutMs: number | undefined,
  body: (send: Send) => Promise<T>,
): Promise<T> {
  // Loaded here, not at import: an app that never provisions users never loads a Redis client.
  const { connectRedis } = await import("./backends/redis/open.js");
  const admin = await connectRedis(adminUrl, connectTimeoutMs === undefined ? {} : { connectTimeoutMs });
  try {
    return await body((args) => admin.commander.sendCommand(args));
  } finally {
    await admin.close();
  }
}

/**
 * `body` on the admin URL's server, or, when that is a cluster node, on every master and
 * replica it knows of (each reached with the admin URL's credentials), one after the other.
 */
async function onEveryNode<T>(
  adminUrl: string,
  connectTimeoutMs: number | undefined,
  body: (send: Send) => Promise<T>,
): Promise<T[]> {
  // Loaded here, not at import: an app that never provisions users never loads a Redis client.
  const [{ clusterNodeUrls }, { sentinelDataNodeUrls }] = await Promise.all([
    import("./backends/redis/cluster-commander.js"),
    import("./backends/redis/sentinel-query.js"),
  ]);
  const urls = isSentinelUrl(adminUrl)
    ? await sentinelDataNodeUrls(adminUrl, connectTimeoutMs === undefined ? {} : { connectTimeoutMs })
    : await withAdmin(adminUrl, connectTimeoutMs, (send) => clusterNodeUrls(adminUrl, send));
  if (urls === undefined) return [await withAdmin(adminUrl, connectTimeoutMs, body)];
  const results: T[] = [];
  for (const url of urls) results.push(await withAdmin(url, connectTimeoutMs, body));
  return results;
}

/**
 * Creates (or replaces the rules of) the ACL user of `ks`'s workspace, via a connection with
 * ACL rights at `adminUrl`. Returns the user name and `adminUrl` with this user's
 * credentials, ready for `openStorage({ url, root, workspaceId })`.
 */
export async function provisionWorkspaceUser(
  adminUrl: string,
  ks: Keyspace,
  options: ProvisionOptions,
): Promise<{ username: string; url: string }> {
  const username = checkUsername(options.username ?? workspaceUsername(ks));
  const password = checkPassword(options.password);
  const rules = redisAcl(ks, { password, ...(options.depsWritable ? { depsWritable: true } : {}) });
  await onEveryNode(adminUrl, options.connectTimeoutMs, async (send) => {
    // Rules a server version does not know are dropped when optional (e.g. CLIENT SETINFO before 7.2).
    for (let left = [...rules]; ; ) {
      try {
        await send(["ACL", "SETUSER", username, ...left]);
        return;
      } catch (error) {
        // Unreachable, auth, no ACL rights are already clear; only an otherwise unnamed reply is about the rules.
        if (!(error instanceof StoreCommandError) || !isErrorReply(error.cause)) throw error;
        const reply = error.cause;
        const rejected = /modifier '([^']*)'/.exec(reply.message)?.[1];
        if (rejected !== undefined && OPTIONAL.has(rejected) && left.includes(rejected)) {
          left = left.filter((rule) => rule !== rejected);
          continue;
        }
        // The reply may quote the rule it rejected, password included: neither the message nor the cause keeps it.
        throw new UnsupportedStoreError(
          `Redis at ${redact(adminUrl)} refused ACL SETUSER ${username}: ${scrub(reply.message, [password])}. ` +
            "Workspace users need Redis 7 or later (read-only key patterns) and an admin URL allowed to run ACL.",
        );
      }
    }
  });
  return { username, url: withCredentials(adminUrl, username, password) };
}

/** Deletes a workspace's ACL user (by name, or by keyspace for the default name). Existing connections of it are closed by Redis. */
export async function revokeWorkspaceUser(
  adminUrl: string,
  user: string | Keyspace,
  options: { connectTimeoutMs?: number } = {},
): Promise<boolean> {
  const username = typeof user === "string" ? checkUsername(user) : workspaceUsername(user);
  const deleted = await onEveryNode(
    adminUrl,
    options.connectTimeoutMs,
    async (send) => Number(await send(["ACL", "DELUSER", username])) > 0,
  );
  return deleted.some(Boolean);
}
