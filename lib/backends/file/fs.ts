import { type BigIntStats, readlinkSync, realpathSync, statSync } from "node:fs";
import { mkdir, open } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import {
  InvalidConfigError,
  IOError,
  KeyvWorkspacesError,
  PermissionDeniedError,
  ReadOnlyError,
  StorageFullError,
  StoreCorruptError,
  ValueTooLargeError,
} from "../../errors.js";

// Linux's own limit on symlinks followed while resolving one path.
const MAX_SYMLINKS = 40;

const errnoOf = (error: unknown): string | undefined => (error as NodeJS.ErrnoException | undefined)?.code;

/**
 * The path a store file really lives at: every symlink resolved, including a dangling one
 * (its target is where the first write creates the file) and the missing directories of a
 * file not created yet. Two paths to one file give one answer, so a process keeps one store
 * and one lock for it, and writes land beside the real file rather than replacing a symlink.
 */
export function realStorePath(path: string, links = 0): string {
  const absolute = resolve(path);
  try {
    return realpathSync(absolute);
  } catch (error) {
    if (errnoOf(error) !== "ENOENT") throw error;
  }
  let target: string | undefined;
  try {
    target = readlinkSync(absolute);
  } catch (error) {
    // EINVAL: it exists and is not a symlink (cannot happen after ENOENT, but harmless); ENOENT: not there yet.
    if (!["ENOENT", "EINVAL"].includes(errnoOf(error) ?? "")) throw error;
  }
  if (target !== undefined) {
    if (links >= MAX_SYMLINKS) {
      throw Object.assign(new Error(`too many levels of symbolic links at ${absolute}`), { code: "ELOOP" });
    }
    return realStorePath(resolve(dirname(absolute), target), links + 1);
  }
  const parent = dirname(absolute);
  return parent === absolute ? absolute : join(realStorePath(parent, links), basename(absolute));
}

/** V8 refuses strings past ~512 MB (`Invalid string length`); Node's readers refuse files past their limits. */
function tooLarge(error: unknown): boolean {
  if (error instanceof RangeError && /Invalid string length/i.test(error.message)) return true;
  return ["ERR_STRING_TOO_LONG", "ERR_BUFFER_TOO_LARGE", "ERR_FS_FILE_TOO_LARGE"].includes(errnoOf(error) ?? "");
}

/**
 * A file system failure of a store as the library's typed error, the original kept as `cause`.
 * `action` says what was being done ("write", "read"), for the message.
 */
export function storeFileError(path: string, action: string, error: unknown): KeyvWorkspacesError {
  if (error instanceof KeyvWorkspacesError) return error;
  const options = { cause: error };
  if (tooLarge(error)) {
    return new ValueTooLargeError(
      `cannot ${action} the file store ${path}: its text would exceed the longest string the runtime can hold ` +
        "(about 512 MB); the write was refused and nothing stored changed. Keep large values out of a file store.",
      options,
    );
  }
  const errno = errnoOf(error);
  const message = `cannot ${action} the file store ${path} (${errno ?? "error"}: ${(error as Error)?.message ?? String(error)})`;
  switch (errno) {
    case "ENOSPC":
    case "EDQUOT":
      return new StorageFullError(`${message}; the disk or quota is full`, options);
    case "EROFS":
      return new ReadOnlyError(`${message}; the file system is read-only`, options);
    case "EACCES":
    case "EPERM":
      return new PermissionDeniedError(`${message}; this process may not change the file or its directory`, options);
    default:
      return new IOError(message, options);
  }
}

/** Why a store could not be opened: corrupt or too large as such, anything else a config error (the url). */
export function openError(path: string, error: unknown): KeyvWorkspacesError {
  if (error instanceof StoreCorruptError || error instanceof ValueTooLargeError) return error;
  const errno = error instanceof KeyvWorkspacesError ? error.cause : error;
  const why = (errno as NodeJS.ErrnoException).code ?? (errno as Error).message;
  return new InvalidConfigError(
    "url",
    `cannot open the file store at ${path} (${why}): the url must name a file in a directory this process can create and write`,
    { cause: error },
  );
}

/** A symlink is followed once, here: the store then reads, locks and renames beside the real file. */
export function storePath(path: string): string {
  try {
    return realStorePath(path);
  } catch (error) {
    throw new InvalidConfigError(
      "url",
      `cannot open the file store at ${resolve(path)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): ` +
        "its path cannot be resolved; the url must name a file in a directory this process can create and write",
      { cause: error },
    );
  }
}

/**
 * mkdir -p, one level at a time. Node's own recursive mkdir spins forever where a parent
 * exists but refuses new entries with ENOENT (e.g. under /proc); this fails instead.
 */
export async function makeDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return;
    const parent = dirname(dir);
    if (code !== "ENOENT" || parent === dir) throw error;
    await makeDirectory(parent);
    await mkdir(dir).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== "EEXIST") throw again;
    });
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } catch (error) {
    // Some filesystems cannot fsync a directory; the rename is then as durable as they allow.
    if (!["EINVAL", "EISDIR", "EPERM", "ENOTSUP"].includes((error as NodeJS.ErrnoException).code ?? "")) throw error;
  } finally {
    await handle.close();
  }
}

/** Identity of the file's current content: every write renames a new file into place. */
export function signature(path: string): string {
  const st: BigIntStats | undefined = statSync(path, { bigint: true, throwIfNoEntry: false });
  return st ? `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` : "absent";
}
