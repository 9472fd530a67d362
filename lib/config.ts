import { z } from "zod";
import { isSupportedUrl, SCHEMES } from "./backends/index.js";
import { InvalidConfigError } from "./errors.js";
import { keyspace } from "./keys.js";

/**
 * The storage configuration. It is also the bootstrap config a worker or child process
 * receives, so it must be plain JSON. Zod checks shape; the key layout rules (root,
 * workspace id, collection names, deps prefix) are keyspace()'s, with their own typed errors.
 */
export const storageConfigSchema = z
  .object({
    url: z
      .string()
      .min(1, "url must not be empty")
      .refine(isSupportedUrl, { message: `url must start with one of: ${SCHEMES.join(" ")}` }),
    root: z.string(),
    workspaceId: z.string().nullable().optional(),
    unscoped: z.array(z.string()).optional(),
    depsPrefix: z.string().optional(),
  })
  .strict();

export type StorageConfig = z.infer<typeof storageConfigSchema>;

export function parseConfig(input: unknown): StorageConfig {
  const result = storageConfigSchema.safeParse(input);
  if (result.success) {
    // A config that parses is one a process can open: a deps prefix pointing into a workspace
    // must fail here (and in configFromEnv), not later in whichever process opens it.
    keyspace(result.data);
    return result.data;
  }
  const issue = result.error.issues[0];
  const field = issue?.path.join(".") || (issue?.code === "unrecognized_keys" ? issue.keys.join(",") : "");
  const where = field ? `config field "${field}"` : "config";
  throw new InvalidConfigError(field, `invalid storage ${where}: ${issue?.message ?? "invalid"}`, {
    cause: result.error,
  });
}

/**
 * Reads KVWS_URL, KVWS_ROOT, KVWS_WORKSPACE_ID, KVWS_UNSCOPED (comma list) and
 * KVWS_DEPS_PREFIX. Without KVWS_DEPS_PREFIX, deps live at "<root>:deps" — the shared
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
  });
}
