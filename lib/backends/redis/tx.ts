import type { ErrorReply } from "@redis/client";
import {
  ConnectionError,
  KeyvWorkspacesError,
  PermissionDeniedError,
  ReadOnlyError,
  StorageFullError,
  StoreCommandError,
} from "../../errors.js";
import type { Optimistic } from "./optimistic.js";

/** How `apart` reaches the cluster: one command, or a MULTI whose commands name one key. */
export interface ApartSender {
  send(command: string[]): Promise<unknown>;
  multi(commands: readonly string[][]): Promise<unknown[]>;
}

/** A transaction's effect as steps of one key each (apart.ts), for a half-migrated slot. */
export type Apart = (sender: ApartSender) => Promise<unknown[]>;

/** The one client call the driver needs; node-redis clients (and KeyvRedis's) provide it. */
export interface RedisCommander {
  sendCommand(args: string[]): Promise<unknown>;
  /**
   * MULTI, the commands, EXEC, as one unit (connectRedis's commander retries the whole unit on
   * a busy or loading server). Without it the driver sends the same through sendCommand.
   * `apart`: the same effect as commands on one key each (apart.ts), run instead where a cluster
   * slot is half-migrated (TRYAGAIN: the transaction's keys are on two masters); a cluster
   * commander's only, and the transaction then resolves with what `apart` resolves with.
   */
  transaction?(commands: readonly string[][], apart?: Apart): Promise<unknown[]>;
  /** WATCH-based conditional writes on a connection of their own (optimistic.ts); without it there are none. */
  optimistic?: Optimistic;
}

const AUTH_FAILED = /^(WRONGPASS|NOAUTH)\b|invalid username-password/;
// Inside scripts Redis 7 reports ACL denials as "ERR The user executing the script can't ...".
const DENIED = /^NOPERM\b|user executing the script can't/;
// Replies that mean "the server is there but cannot serve now": worth a retry within the command's time.
// NOREPLICAS: a master with min-replicas-to-write set that lost its replicas (as during a failover).
const TRANSIENT = /^(BUSY|TRYAGAIN|LOADING|CLUSTERDOWN|MASTERDOWN|NOREPLICAS)\b/;

export type ReplyKind = "auth" | "denied" | "transient" | "full" | "readonly" | "other";

export function replyKind(message: string): ReplyKind {
  if (AUTH_FAILED.test(message)) return "auth";
  if (DENIED.test(message)) return "denied";
  if (TRANSIENT.test(message)) return "transient";
  if (/^OOM\b/.test(message)) return "full";
  if (/^READONLY\b/.test(message)) return "readonly";
  return "other";
}

/**
 * Whether `error` is an instance of a class named `name`, or of a subclass of one. By name, not
 * `instanceof`: this module must not load @redis/client (a `memory:` app never needs it), and an
 * app's adapter may hold another copy of it whose errors are just as good.
 */
export function isA(error: unknown, name: string): boolean {
  if (typeof error !== "object" || error === null) return false;
  for (let proto = Object.getPrototypeOf(error); proto !== null; proto = Object.getPrototypeOf(proto)) {
    if ((proto as { constructor?: { name?: unknown } }).constructor?.name === name) return true;
  }
  return false;
}

/** A node-redis server reply error (ErrorReply or a subclass: SimpleError, BlobError, MultiErrorReply), of any copy. */
export const isErrorReply = (error: unknown): error is ErrorReply => isA(error, "ErrorReply");

/** Whether `error` is (or wraps) a server reply that a later retry may not get. */
export function isTransient(error: unknown): boolean {
  const reply = error instanceof KeyvWorkspacesError ? error.cause : error;
  return isErrorReply(reply) && replyKind(reply.message) === "transient";
}

/**
 * A server error reply as a typed error. `message` is already scrubbed of secrets; `where`
 * names the server (redacted). Authentication is mapped by the caller, which knows the URL.
 */
export function typedReply(error: ErrorReply, message: string, where: string): KeyvWorkspacesError {
  switch (replyKind(message)) {
    case "denied":
      return new PermissionDeniedError(
        `Redis at ${where} denied the command to this user: ${message} ` +
          "(workspace ACL users may only touch their own workspace, and read shared collections such as deps)",
        { cause: error },
      );
    case "transient":
      return new ConnectionError(`Redis at ${where} cannot serve now: ${message}`, { cause: error });
    case "full":
      return new StorageFullError(
        `Redis at ${where} is at its memory limit and refuses writes: ${message} (deletes and clears still work)`,
        { cause: error },
      );
    case "readonly":
      return new ReadOnlyError(`Redis at ${where} accepts no writes (a read-only replica?): ${message}`, {
        cause: error,
      });
    default:
      return new StoreCommandError(`Redis at ${where} refused a command: ${message}`, { cause: error });
  }
}

/** For clients that do not map errors themselves (a raw node-redis client, KeyvRedis's). */
export function typed(error: unknown): unknown {
  if (isErrorReply(error)) return typedReply(error, error.message, "this server");
  if (error instanceof KeyvWorkspacesError) return error;
  return new ConnectionError(`Redis command failed: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });
}

/**
 * MULTI, `commands` and EXEC through plain sends, every one in the same tick, so a client that
 * multiplexes one connection (node-redis) writes them back to back: no other caller's command
 * lands inside the transaction. `before` go first (ASKING on a cluster). A command refused while
 * queueing (OOM, NOPERM, READONLY) makes EXEC fail with EXECABORT; that reason is what the caller
 * gets. Resolves with EXEC's replies, or null when a WATCH fired.
 */
export async function sendMulti(
  send: (args: string[]) => Promise<unknown>,
  commands: readonly string[][],
  before: readonly string[][] = [],
): Promise<unknown[] | null> {
  const replies = await multiReplies(send, commands, before);
  // Replies of commands that failed while running come back as errors inside EXEC's array.
  const failed = replies?.find((reply) => reply instanceof Error);
  if (failed) throw failed;
  return replies;
}

/** sendMulti's EXEC replies as they came, a command's failure among them as an Error value. */
export async function multiReplies(
  send: (args: string[]) => Promise<unknown>,
  commands: readonly string[][],
  before: readonly string[][] = [],
): Promise<unknown[] | null> {
  const queued = [...before, ["MULTI"], ...commands].map((command) => send([...command]));
  const done = send(["EXEC"]);
  const settled = await Promise.allSettled(queued);
  let replies: unknown;
  try {
    replies = await done;
  } catch (error) {
    const inner = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    throw inner ? inner.reason : error;
  }
  if (replies === null) return null;
  if (!Array.isArray(replies)) throw new StoreCommandError("Redis answered EXEC with something other than replies");
  return replies;
}

/** MULTI … EXEC without WATCH, replies as they came: a null EXEC cannot happen, so say so if it does rather than return nothing. */
export async function repliesOnce(
  send: (args: string[]) => Promise<unknown>,
  commands: readonly string[][],
): Promise<unknown[]> {
  const replies = await multiReplies(send, commands);
  if (replies === null) throw new StoreCommandError("Redis discarded a transaction (EXEC returned null)");
  return replies;
}

/** repliesOnce, the first command failure inside EXEC's array thrown. */
export async function execOnce(client: RedisCommander, commands: readonly string[][]): Promise<unknown[]> {
  const replies = await repliesOnce((args) => client.sendCommand(args), commands);
  const failed = replies.find((reply) => reply instanceof Error);
  if (failed) throw failed;
  return replies;
}

export function exec(client: RedisCommander, commands: readonly string[][], apart?: Apart): Promise<unknown[]> {
  return client.transaction ? client.transaction(commands, apart) : execOnce(client, commands);
}
