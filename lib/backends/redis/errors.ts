/**
 * What node-redis rejects with, as this library's typed errors. Recognised by class name (tx.ts
 * isA), so this module loads without @redis/client: the adapters of an app that holds its own
 * copy use it too, and a `memory:` app never loads a Redis client at all.
 */
import { AuthenticationError, ConnectionError, KeyvWorkspacesError } from "../../errors.js";
import { isA, isErrorReply, replyKind, typedReply } from "./tx.js";
import { scrub } from "./url.js";

export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

/**
 * Maps what node-redis rejects with to this library's typed errors: every server reply gets a
 * code (tx.ts typedReply), lost or missing connections are ConnectionErrors.
 */
export function redisError(error: unknown, where: string, secrets: ReadonlyArray<string | undefined>): Error {
  if (error instanceof KeyvWorkspacesError) return error;
  if (isA(error, "ClientOfflineError")) {
    return new ConnectionError(`Redis at ${where} is not connected (reconnecting); the command was not sent`, {
      cause: error,
    });
  }
  if (isA(error, "SocketClosedUnexpectedlyError") || isA(error, "DisconnectsClientError")) {
    return new ConnectionError(
      `the connection to Redis at ${where} was lost before the reply; the command may or may not have been applied`,
      { cause: error },
    );
  }
  const message = scrub(error instanceof Error ? error.message : String(error), secrets);
  if (isErrorReply(error)) {
    if (replyKind(message) === "auth") {
      return new AuthenticationError(`Redis at ${where} refused the credentials: ${message}`, { cause: error });
    }
    return typedReply(error, message, where);
  }
  return new ConnectionError(`Redis at ${where} is unreachable: ${message || "connection failed"}`, { cause: error });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
