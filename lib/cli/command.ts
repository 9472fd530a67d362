/**
 * What a `kvws` command is and what it gets: shared by the command table (commands.ts) and the
 * commands kept in their own files (rebuild.ts), which therefore never import each other.
 */
import type { Readable, Writable } from "node:stream";
import type { WorkspaceStorage } from "../storage.js";

/** A mistake in the command line: exit 2 with the usage text. */
export class UsageError extends Error {}

export interface Io {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean | undefined };
  /** As given: may carry a password, so it is never printed (see redact). */
  url: string;
  /** Aborts on SIGINT/SIGTERM: long-running commands (watch) end cleanly on it. */
  signal?: AbortSignal | undefined;
  /** The store is a Redis Cluster (--cluster / KVWS_CLUSTER). */
  cluster?: boolean | undefined;
  /** The Redis layout the store is kept in (--redis-layout / KVWS_REDIS_LAYOUT). */
  redisLayout?: "keys" | "hash" | undefined;
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  /** Options it takes besides --url, --root and --help. */
  options: readonly string[];
  /** Positional arguments it takes at most. */
  args: number;
  /** Runs until interrupted: it gets io.signal, and the binary turns SIGINT/SIGTERM into its abort. */
  interruptible?: boolean;
  /** Usage checks before anything is opened. */
  check?(args: readonly string[], values: Values): void;
  run(storage: WorkspaceStorage, args: readonly string[], values: Values, io: Io): Promise<void>;
}
