/**
 * `kvws`: argument parsing, the storage the command runs on, and how failures are reported.
 * Exit 0 on success; 1 on an error (`<code>: <message>` on stderr); 2 on a usage error (the
 * message and the usage text on stderr).
 */
import type { Readable, Writable } from "node:stream";
import { parseArgs } from "node:util";
import { envFlag } from "../config.js";
import { IOError, KeyvWorkspacesError } from "../errors.js";
import { openStorage } from "../storage.js";
import { COMMANDS, type Command, type Io, UsageError } from "./commands.js";

export const USAGE = `usage: kvws [--url URL] [--root ROOT] [--cluster] [--redis-layout keys|hash] <command> [args]
                                       defaults: KVWS_URL, KVWS_ROOT, KVWS_CLUSTER=1, KVWS_REDIS_LAYOUT

  ls [--json]                          workspace ids, one per line
  stats <id> [--json]                  entries and bytes per collection
  export <id> [--out FILE]             NDJSON to stdout or FILE
  import <id> [--in FILE] [--replace]  NDJSON from stdin or FILE; merges unless --replace
  drop <id> --yes                      deletes every key of the workspace
  migrate --to <id> [--dry-run]        legacy unscoped data into a workspace
  watch <id> [--collections a,b]       changes as NDJSON until interrupted
  quota <id> [--max-entries N] [--max-bytes B | --clear] [--json]
                                       show a workspace's quota and use; with flags, set
                                       it (the flags given are the whole quota) or remove it
  rebuild-index [<id> | --all] [--collections a,b] [--prefix P ...]
                                       Redis: index keys written outside the library, and
                                       register the workspaces and collections found

Exit 0 on success, 1 on an error (its code first on stderr), 2 on a usage error.
`;

const OPTIONS = {
  url: { type: "string" },
  root: { type: "string" },
  cluster: { type: "boolean" },
  "redis-layout": { type: "string" },
  json: { type: "boolean" },
  out: { type: "string" },
  in: { type: "string" },
  replace: { type: "boolean" },
  yes: { type: "boolean" },
  to: { type: "string" },
  "dry-run": { type: "boolean" },
  all: { type: "boolean" },
  collections: { type: "string" },
  "max-entries": { type: "string" },
  "max-bytes": { type: "string" },
  clear: { type: "boolean" },
  prefix: { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
} as const;

const GLOBAL = new Set(["url", "root", "cluster", "redis-layout", "help"]);

export interface MainIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean | undefined };
  env: Record<string, string | undefined>;
  /** The signal that ends a long-running command (watch); asked for only by such a command. */
  interrupt?: () => AbortSignal;
}

function layoutOf(raw: string | undefined): "keys" | "hash" | undefined {
  const layout = raw?.trim().toLowerCase();
  if (layout === undefined || layout === "") return undefined;
  if (layout === "keys" || layout === "hash") return layout;
  throw new UsageError(`--redis-layout (or KVWS_REDIS_LAYOUT) must be keys or hash, got ${JSON.stringify(raw)}`);
}

function parse(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    // node:util's parse errors (unknown option, missing value) are usage errors.
    throw new UsageError((error as Error).message);
  }
}

function describe(error: unknown): string {
  if (error instanceof KeyvWorkspacesError) return `${error.code}: ${error.message}`;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
    const io = new IOError((error as Error).message, { cause: error });
    return `${io.code}: ${io.message}`;
  }
  return `ERR_INTERNAL: ${error instanceof Error ? error.message : String(error)}`;
}

export async function main(argv: readonly string[], io: MainIo): Promise<number> {
  try {
    const { values, positionals } = parse(argv);
    if (values.help) {
      io.stdout.write(USAGE);
      return 0;
    }
    const [name, ...args] = positionals;
    if (name === undefined) throw new UsageError("no command given");
    const command: Command | undefined = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(name)}`);
    for (const option of Object.keys(values)) {
      if (!GLOBAL.has(option) && !command.options.includes(option)) {
        throw new UsageError(`--${option} does not apply to ${name}`);
      }
    }
    if (args.length > command.args)
      throw new UsageError(`${name}: unexpected argument ${JSON.stringify(args[command.args])}`);
    const url = values.url ?? io.env.KVWS_URL;
    const root = values.root ?? io.env.KVWS_ROOT;
    if (!url) throw new UsageError("no store: pass --url or set KVWS_URL");
    if (!root) throw new UsageError("no root: pass --root or set KVWS_ROOT");
    command.check?.(args, values);
    // A cluster's seed node: the cluster client and the hash-tag layout (docs/cluster.md).
    const cluster = values.cluster === true || envFlag(io.env, "KVWS_CLUSTER", "cluster") === true;
    // A store kept in the hash layout must be opened in it: the key layout finds none of its data.
    const redisLayout = layoutOf(values["redis-layout"] ?? io.env.KVWS_REDIS_LAYOUT);
    const storage = await openStorage({
      url,
      root,
      workspaceId: null,
      ...(cluster ? { cluster } : {}),
      ...(redisLayout ? { redisLayout } : {}),
    });
    try {
      const signal = command.interruptible ? io.interrupt?.() : undefined;
      const context: Io = { stdin: io.stdin, stdout: io.stdout, stderr: io.stderr, url, signal, cluster, redisLayout };
      await command.run(storage, args, values, context);
    } finally {
      await storage.close();
    }
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`kvws: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    io.stderr.write(`${describe(error)}\n`);
    return 1;
  }
}
