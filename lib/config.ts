import type { z as Z } from "zod";
import { isSupportedUrl, SCHEMES } from "./backends/index.js";
import { InvalidConfigError } from "./errors.js";
import { keyspace } from "./keys.js";
import { lazyObject, zod } from "./zod.js";

/**
 * The storage configuration. It is also the bootstrap config a worker or child process
 * receives, so it must be plain JSON. Zod checks shape; the key layout rules (root,
 * workspace id, collection names, deps prefix) are keyspace()'s, with their own typed errors.
 */
const REDIS_URL = /^(rediss?|redis\+sentinel):/i;

function schema() {
  const z = zod();
  return z
    .object({
      url: z
        .string()
        .min(1, "url must not be empty")
        .refine(isSupportedUrl, { message: `url must start with one of: ${SCHEMES.join(" ")}` }),
      root: z.string(),
      workspaceId: z.string().nullable().optional(),
      unscoped: z.array(z.string()).optional(),
      depsPrefix: z.string().optional(),
      /** The url names one seed node of a Redis Cluster; forces hashTags. */
      cluster: z.boolean().optional(),
      /** The hash-tag key layout (keys.ts), also on a standalone Redis that may move to a cluster later. */
      hashTags: z.boolean().optional(),
      /**
       * How Redis keeps a collection: "keys" (default; key k at keyspace.key(collection, k)) or
       * "hash" (one hash per collection, one command per write; lib/backends/redis/hash.ts).
       */
      redisLayout: z.enum(["keys", "hash"]).optional(),
      /** "replicated": a write resolves only once a replica holds it (Redis WAIT; docs/operations.md). */
      durability: z.enum(["default", "replicated"]).optional(),
    })
    .strict()
    .refine((config) => !config.cluster || config.hashTags !== false, {
      message: "a cluster needs the hash-tag layout: hashTags cannot be false when cluster is true",
      path: ["hashTags"],
    })
    .refine((config) => !config.cluster || /^rediss?:/i.test(config.url), {
      message: "cluster: true needs a redis:// or rediss:// url (a seed node of the cluster)",
      path: ["cluster"],
    })
    .refine((config) => config.redisLayout === undefined || REDIS_URL.test(config.url), {
      message: "redisLayout applies to redis://, rediss:// and redis+sentinel:// urls only",
      path: ["redisLayout"],
    })
    .refine((config) => config.durability !== "replicated" || REDIS_URL.test(config.url), {
      message: 'durability "replicated" applies to redis://, rediss:// and redis+sentinel:// urls only',
      path: ["durability"],
    })
    .refine((config) => config.durability !== "replicated" || !config.cluster, {
      message: 'durability "replicated" is not supported with cluster: true yet',
      path: ["durability"],
    });
}

/** The zod schema of a StorageConfig; zod itself loads on first use of it (lib/zod.ts). */
export const storageConfigSchema: ReturnType<typeof schema> = lazyObject(schema);

export type StorageConfig = Z.infer<typeof storageConfigSchema>;

const isString = (value: unknown): value is string => typeof value === "string";
const FIELDS = [
  "url",
  "root",
  "workspaceId",
  "unscoped",
  "depsPrefix",
  "cluster",
  "hashTags",
  "redisLayout",
  "durability",
];
const CHECKS: Record<string, (value: unknown) => boolean> = {
  url: (value) => isString(value) && value.length > 0 && isSupportedUrl(value),
  root: isString,
  workspaceId: (value) => value === null || isString(value),
  unscoped: (value) => Array.isArray(value) && value.every(isString),
  depsPrefix: isString,
  cluster: (value) => typeof value === "boolean",
  hashTags: (value) => typeof value === "boolean",
  redisLayout: (value) => value === "keys" || value === "hash",
  durability: (value) => value === "default" || value === "replicated",
};

/**
 * What storageConfigSchema makes of `input` when it certainly accepts it, else undefined (the
 * schema then says why not). Opening storage thus never loads zod; spec/config.spec.ts checks
 * that this agrees with the schema on generated inputs.
 */
export function accepted(input: unknown): StorageConfig | undefined {
  if (typeof input !== "object" || input === null) return undefined;
  const proto = Object.getPrototypeOf(input);
  if (proto !== Object.prototype && proto !== null) return undefined;
  const given = input as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    const check = CHECKS[key];
    // Unknown keys and explicit undefineds are the schema's to judge.
    if (!Object.hasOwn(CHECKS, key) || !check || given[key] === undefined || !check(given[key])) return undefined;
  }
  if (!Object.hasOwn(given, "url") || !Object.hasOwn(given, "root")) return undefined;
  const url = given.url as string;
  if (given.cluster === true && (given.hashTags === false || !/^rediss?:/i.test(url))) return undefined;
  if (given.redisLayout !== undefined && !REDIS_URL.test(url)) return undefined;
  if (given.durability === "replicated" && (!REDIS_URL.test(url) || given.cluster)) return undefined;
  const out: Record<string, unknown> = {};
  for (const key of FIELDS) {
    if (Object.hasOwn(given, key)) out[key] = key === "unscoped" ? [...(given[key] as string[])] : given[key];
  }
  return out as StorageConfig;
}

export function parseConfig(input: unknown): StorageConfig {
  const quick = accepted(input);
  const result = quick ? { success: true as const, data: quick } : storageConfigSchema.safeParse(input);
  if (result.success) {
    // A config that parses is one a process can open: a deps prefix pointing into a workspace
    // must fail here (and in configFromEnv), not later in whichever process opens it.
    // Every key of one atomic write must share a slot on a cluster, so a cluster forces hash tags.
    const config = result.data.cluster ? { ...result.data, hashTags: true } : result.data;
    keyspace(config);
    return config;
  }
  const issue = result.error.issues[0];
  const field = issue?.path.join(".") || (issue?.code === "unrecognized_keys" ? issue.keys.join(",") : "");
  const where = field ? `config field "${field}"` : "config";
  throw new InvalidConfigError(field, `invalid storage ${where}: ${issue?.message ?? "invalid"}`, {
    cause: result.error,
  });
}

/** "1"/"true"/"yes" and "0"/"false"/"no"; anything else is a config error, not a silent false. */
export function envFlag(env: Record<string, string | undefined>, name: string, field: string): boolean | undefined {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === "") return undefined;
  if (["1", "true", "yes"].includes(raw)) return true;
  if (["0", "false", "no"].includes(raw)) return false;
  throw new InvalidConfigError(field, `${name} must be true or false (1/0, yes/no), got ${JSON.stringify(raw)}`);
}

/**
 * Reads KVWS_URL, KVWS_ROOT, KVWS_WORKSPACE_ID, KVWS_UNSCOPED (comma list),
 * KVWS_DEPS_PREFIX, KVWS_CLUSTER and KVWS_HASH_TAGS (true/false), KVWS_REDIS_LAYOUT (keys/hash),
 * KVWS_DURABILITY (default/replicated). Without KVWS_DEPS_PREFIX, deps live at "<root>:deps" — the shared
 * root namespace, never a workspace-scoped prefix; an explicit KVWS_DEPS_PREFIX wins.
 */
export function configFromEnv(env: Record<string, string | undefined> = process.env): StorageConfig {
  const value = (name: string) => {
    const raw = env[name]?.trim();
    return raw === undefined || raw === "" ? undefined : raw;
  };
  const url = value("KVWS_URL");
  const root = value("KVWS_ROOT");
  if (url === undefined)
    throw new InvalidConfigError("url", "KVWS_URL is not set (e.g. file:./data/store.json or redis://127.0.0.1:6379)");
  if (root === undefined) throw new InvalidConfigError("root", 'KVWS_ROOT is not set (e.g. "app")');
  // Set but empty means "no unscoped collections"; unset means the default ["deps"].
  const unscoped = env.KVWS_UNSCOPED;
  const depsPrefix = value("KVWS_DEPS_PREFIX");
  const cluster = envFlag(env, "KVWS_CLUSTER", "cluster");
  const hashTags = envFlag(env, "KVWS_HASH_TAGS", "hashTags");
  const redisLayout = value("KVWS_REDIS_LAYOUT");
  const durability = value("KVWS_DURABILITY");
  return parseConfig({
    url,
    root,
    workspaceId: value("KVWS_WORKSPACE_ID") ?? null,
    ...(unscoped === undefined
      ? {}
      : {
          unscoped: unscoped
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
        }),
    ...(depsPrefix === undefined ? {} : { depsPrefix }),
    ...(cluster === undefined ? {} : { cluster }),
    ...(hashTags === undefined ? {} : { hashTags }),
    ...(redisLayout === undefined ? {} : { redisLayout }),
    ...(durability === undefined ? {} : { durability }),
  });
}
