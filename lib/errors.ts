/**
 * Every error this library throws extends KeyvWorkspacesError and carries a stable
 * string `code`, so callers can branch on `err.code` without `instanceof` across
 * package copies.
 */
export class KeyvWorkspacesError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A subclass of KeyvWorkspacesError whose `code` (on instances and on the class) is C. */
export interface CodedErrorClass<C extends string> {
  new (message: string, options?: { cause?: unknown }): KeyvWorkspacesError & { readonly code: C };
  readonly code: C;
}

// Typed as an interface, so the emitted declarations carry no statics of Error (some are `any`).
function defineError<C extends string>(code: C): CodedErrorClass<C> {
  return class extends KeyvWorkspacesError {
    declare readonly code: C;
    static readonly code: C = code;
    constructor(message: string, options?: { cause?: unknown }) {
      super(code, message, options);
    }
  };
}

export class InvalidWorkspaceIdError extends defineError("ERR_INVALID_WORKSPACE_ID") {}
export class InvalidCollectionError extends defineError("ERR_INVALID_COLLECTION") {}
export class InvalidRootError extends defineError("ERR_INVALID_ROOT") {}
export class InvalidNameError extends defineError("ERR_INVALID_NAME") {}
export class InvalidValueError extends defineError("ERR_INVALID_VALUE") {}
export class InvalidArgumentError extends defineError("ERR_INVALID_ARGUMENT") {}
export class UnsupportedStoreError extends defineError("ERR_UNSUPPORTED_STORE") {}
export class ConnectionError extends defineError("ERR_CONNECTION") {}
/** The server refused the credentials (wrong password, unknown or disabled user). Retrying will not help. */
export class AuthenticationError extends defineError("ERR_AUTH") {}
/** The server's access control refused a command or key (e.g. a workspace ACL user writing shared deps). */
export class PermissionDeniedError extends defineError("ERR_PERMISSION_DENIED") {}
export class StorageClosedError extends defineError("ERR_STORAGE_CLOSED") {}
/** The backend has no room left (a full disk, a Redis at maxmemory refusing writes). Deletes still work. */
export class StorageFullError extends defineError("ERR_STORAGE_FULL") {}
/** The backend accepts no writes (a read-only filesystem, a Redis replica). */
export class ReadOnlyError extends defineError("ERR_READ_ONLY") {}
/**
 * durability "replicated": no replica confirmed a write in time (or the connection was lost while
 * waiting). The write may or may not be stored; the caller decides whether to retry or check.
 */
export class NotReplicatedError extends defineError("ERR_NOT_REPLICATED") {}
/** A value larger than the backend or the runtime can hold in one piece. */
export class ValueTooLargeError extends defineError("ERR_VALUE_TOO_LARGE") {}
/** A file system error that fits no other class (EIO, EISDIR, ...); `cause` holds the original. */
export class IOError extends defineError("ERR_IO") {}
/** The backend refused a command for a reason none of the other codes name (e.g. a key of the wrong type). */
export class StoreCommandError extends defineError("ERR_STORE_COMMAND") {}
export class ArtifactNotFoundError extends defineError("ERR_ARTIFACT_NOT_FOUND") {}
export class DimensionMismatchError extends defineError("ERR_VECTOR_DIMENSIONS") {}
export class InvalidVectorError extends defineError("ERR_INVALID_VECTOR") {}

/** Errors about one thing the caller named: a config field, a store file. */
function defineSubjectError<C extends string, K extends string>(code: C, subject: K) {
  return class extends defineError(code) {
    constructor(value: string, message: string, options?: { cause?: unknown }) {
      super(message, options);
      Object.defineProperty(this, subject, { value, enumerable: true });
    }
  } as unknown as new (
    value: string,
    message: string,
    options?: { cause?: unknown },
  ) => KeyvWorkspacesError & { readonly code: C } & { readonly [P in K]: string };
}

/** A config field failed validation; `field` is its dotted path (e.g. "url"). */
export class InvalidConfigError extends defineSubjectError("ERR_INVALID_CONFIG", "field") {}

/** A store file could not be decoded; it is left untouched on disk. `path` names it. */
export class StoreCorruptError extends defineSubjectError("ERR_STORE_CORRUPT", "path") {}

/** Another process has held a store file's lock for longer than the wait allows. `path` names the lock. */
export class StoreLockedError extends defineSubjectError("ERR_STORE_LOCKED", "path") {}

/**
 * A conditional write (`ifVersion`) found another version than the one it was given, and wrote
 * nothing. `current` is the entry's version now, or null when it does not exist.
 */
export class ConflictError extends defineError("ERR_CONFLICT") {
  readonly current: string | null;
  constructor(current: string | null, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.current = current;
  }
}

/**
 * A write would take a workspace over its quota (setQuota) and wrote nothing. Deletes and writes
 * that do not grow the workspace still succeed. `workspaceId` and `limit` name the quota.
 */
export class QuotaExceededError extends defineError("ERR_QUOTA_EXCEEDED") {
  readonly workspaceId: string;
  readonly limit: { readonly maxEntries?: number; readonly maxBytes?: number };
  constructor(
    workspaceId: string,
    limit: { readonly maxEntries?: number; readonly maxBytes?: number },
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.workspaceId = workspaceId;
    this.limit = limit;
  }
}
