import {
  AuthenticationError,
  ConnectionError,
  InvalidNameError,
  IOError,
  KeyvWorkspacesError,
  PermissionDeniedError,
  ReadOnlyError,
  StorageFullError,
  StoreCommandError,
  ValueTooLargeError,
} from "../../errors.js";

const codeOf = (error: unknown) => String((error as { code?: unknown } | null)?.code ?? "");
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * PostgreSQL errors by SQLSTATE (class 08 and socket errors are connections; 42501 is a refused
 * privilege or row-level-security policy), anything else a StoreCommandError. `where` is a URL
 * without its password.
 */
export function pgError(error: unknown, where: string): Error {
  if (error instanceof KeyvWorkspacesError) return error;
  const code = codeOf(error);
  const message = `PostgreSQL at ${where}: ${messageOf(error)}`;
  const cause = { cause: error };
  if (code === "42501") return new PermissionDeniedError(message, cause);
  if (code === "28P01" || code === "28000") return new AuthenticationError(message, cause);
  if (code === "53100") return new StorageFullError(message, cause);
  if (code === "25006") return new ReadOnlyError(message, cause);
  if (code === "54000") return new ValueTooLargeError(message, cause);
  if (code === "22001" || code === "22021") return new InvalidNameError(message, cause);
  if (code.startsWith("08") || code.startsWith("57P") || code.startsWith("E") || code === "") {
    // Node socket errors (ECONNREFUSED, ETIMEDOUT, ...), pg's own "Connection terminated", admin shutdown.
    return new ConnectionError(message, cause);
  }
  return new StoreCommandError(message, cause);
}

/** node-sqlite3 errors carry the SQLite result code name (SQLITE_FULL, ...) as `code`. */
export function sqliteError(error: unknown, where: string): Error {
  if (error instanceof KeyvWorkspacesError) return error;
  const code = codeOf(error);
  const message = `SQLite at ${where}: ${messageOf(error)}`;
  const cause = { cause: error };
  if (code === "SQLITE_FULL") return new StorageFullError(message, cause);
  if (code === "SQLITE_READONLY") return new ReadOnlyError(message, cause);
  if (code === "SQLITE_TOOBIG") return new ValueTooLargeError(message, cause);
  if (code === "SQLITE_PERM" || code === "SQLITE_AUTH") return new PermissionDeniedError(message, cause);
  if (code === "SQLITE_CANTOPEN" || code === "SQLITE_IOERR" || code === "SQLITE_CORRUPT" || code === "SQLITE_NOTADB") {
    return new IOError(message, cause);
  }
  if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") return new ConnectionError(message, cause);
  return new StoreCommandError(message, cause);
}
