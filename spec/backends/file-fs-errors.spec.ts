import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync, symlinkSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Backend } from "../../lib/backends/driver.js";
import { storeFileError } from "../../lib/backends/file/fs.js";
import { openFileBackend } from "../../lib/backends/file/open.js";
import {
  IOError,
  PermissionDeniedError,
  ReadOnlyError,
  StorageFullError,
  ValueTooLargeError,
} from "../../lib/index.js";
import { tempDir } from "../support/env.js";
import { diskEntries, diskKeys } from "../support/file-disk.js";

// Real conditions, not mocks: these need root (mount, chattr, a child running as another user),
// which this project's test machine has. Without it they fail rather than skip.
const run = promisify(execFile);
const writeError = fileURLToPath(new URL("../fixtures/file-write-error.ts", import.meta.url));

describe("file store: file system errors are typed", () => {
  let dir: ReturnType<typeof tempDir>;
  let path = "";
  let backend: Backend | undefined;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeEach(() => {
    dir = tempDir();
    path = join(dir.path, "store.json");
  });
  afterEach(async () => {
    await backend?.close();
    backend = undefined;
    // Last set up, first undone: a remount before the unmount.
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
    dir.remove();
  });

  /** A tmpfs of `size` mounted over the test directory, unmounted after the test. */
  async function smallDisk(size: string): Promise<void> {
    await run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir.path]);
    cleanups.push(() => run("umount", [dir.path]));
  }

  it("maps a full disk to StorageFullError, changes nothing, and takes the next write that fits", async () => {
    await smallDisk("256k");
    backend = await openFileBackend(path);
    await backend.store.set("a", "x".repeat(100_000));
    const before = readFileSync(path);
    const logBefore = readFileSync(`${path}.log`);
    // The appended record does not fit: 100 KB + 200 KB > 256 KB.
    const error = await backend.store.set("b", "y".repeat(200_000)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageFullError);
    expect(error).toMatchObject({ code: "ERR_STORAGE_FULL", cause: { code: "ENOSPC" } });
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).toContain("ENOSPC");
    expect(readFileSync(path).equals(before)).toBe(true);
    // The half-written record was cut off again: the log is as it was.
    expect(readFileSync(`${path}.log`).equals(logBefore)).toBe(true);
    expect(await backend.store.get("b")).toBeUndefined();
    expect(readdirSync(dir.path).sort()).toEqual(["store.json", "store.json.log"]);
    await backend.store.set("c", "small");
    expect(await backend.store.get("c")).toBe("small");
    expect(await diskKeys(path)).toEqual(["a", "c"]);
  });

  it("maps a read-only file system to ReadOnlyError and keeps serving reads", async () => {
    await smallDisk("1m");
    backend = await openFileBackend(path);
    await backend.store.set("a", "1");
    await run("mount", ["-o", "remount,ro", dir.path]);
    cleanups.push(() => run("mount", ["-o", "remount,rw", dir.path]));
    const error = await backend.store.set("b", "2").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReadOnlyError);
    expect(error).toMatchObject({ code: "ERR_READ_ONLY", cause: { code: "EROFS" } });
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).toContain("EROFS");
    expect(await backend.store.get("a")).toBe("1");
    expect(await backend.store.get("b")).toBeUndefined();
  });

  it("maps EPERM (an immutable directory) to PermissionDeniedError", async () => {
    backend = await openFileBackend(path);
    await backend.store.set("a", "1");
    await run("chattr", ["+i", dir.path]);
    cleanups.push(() => run("chattr", ["-i", dir.path]));
    const error = await backend.store.set("b", "2").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect(error).toMatchObject({ code: "ERR_PERMISSION_DENIED", cause: { code: "EPERM" } });
    expect((error as Error).message).toContain(path);
    expect(await backend.store.get("b")).toBeUndefined();
  });

  it("maps EACCES (a directory another user owns) to PermissionDeniedError", async () => {
    backend = await openFileBackend(path);
    await backend.store.set("a", "1");
    await backend.close();
    backend = undefined;
    // Root passes every permission check, so the write runs in a process of the unprivileged user `nobody`.
    chmodSync(dir.path, 0o755);
    const { stdout } = await run(process.execPath, ["--import", "tsx", writeError, path], {
      uid: 65534,
      gid: 65534,
      timeout: 30_000,
    });
    expect(JSON.parse(stdout)).toMatchObject({
      name: "PermissionDeniedError",
      code: "ERR_PERMISSION_DENIED",
      causeCode: "EACCES",
      message: expect.stringContaining(path),
    });
  });

  it("maps any other file system error to IOError (ERR_IO), for writes and reads", async () => {
    backend = await openFileBackend(path);
    await backend.store.set("a", "1");
    unlinkSync(path);
    mkdirSync(path);
    const write = await backend.store.set("b", "2").catch((e: unknown) => e);
    expect(write).toBeInstanceOf(IOError);
    expect(write).toMatchObject({ code: "ERR_IO", cause: { code: "EISDIR" } });
    expect((write as Error).message).toContain(path);
    expect((write as Error).message).toContain("EISDIR");
    await expect(backend.store.get("a")).rejects.toMatchObject({ code: "ERR_IO", cause: { code: "EISDIR" } });
  });

  it("maps a store path that cannot even be looked at (a symlink loop) to IOError, as a rejection", async () => {
    backend = await openFileBackend(path);
    await backend.store.set("a", "1");
    unlinkSync(path);
    symlinkSync(path, path);
    const store = backend.store;
    // Through a promise chain, so a synchronous throw fails the test as surely as a wrong rejection.
    const read = await Promise.resolve()
      .then(() => store.get("a"))
      .catch((e: unknown) => e);
    expect(read).toMatchObject({ code: "ERR_IO", cause: { code: "ELOOP" } });
    const write = await Promise.resolve()
      .then(() => store.set("b", "2"))
      .catch((e: unknown) => e);
    expect(write).toMatchObject({ code: "ERR_IO", cause: { code: "ELOOP" } });
    unlinkSync(path);
  });

  it("refuses a write too large to encode with ValueTooLargeError, changes nothing, and writes on", async () => {
    backend = await openFileBackend(path);
    await backend.store.set("a", "1");
    const before = readFileSync(path);
    // JSON escapes each control character to 6 characters: 100 M of them exceed V8's longest string (~512 M).
    const error = await backend.store.set("huge", "\u0001".repeat(100_000_000)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValueTooLargeError);
    expect(error).toMatchObject({ code: "ERR_VALUE_TOO_LARGE", cause: expect.any(RangeError) });
    expect((error as Error).message).toContain(path);
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(await backend.store.get("huge")).toBeUndefined();
    expect(await backend.store.get("a")).toBe("1");
    await backend.store.set("b", "2");
    expect(await diskEntries(path)).toEqual([
      ["a", "1", null],
      ["b", "2", null],
    ]);
  });

  it("refuses only the oversized write, not the writes batched with it", async () => {
    backend = await openFileBackend(path);
    const store = backend.store;
    const [small, huge, other] = await Promise.allSettled([
      store.set("small", "1"),
      store.set("huge", "\u0001".repeat(100_000_000)),
      store.set("other", "2"),
    ]);
    expect(small.status).toBe("fulfilled");
    expect(other.status).toBe("fulfilled");
    expect(huge).toMatchObject({ status: "rejected", reason: { code: "ERR_VALUE_TOO_LARGE" } });
    expect(await diskEntries(path)).toEqual([
      ["small", "1", null],
      ["other", "2", null],
    ]);
  });

  it("maps EDQUOT like ENOSPC (this machine mounts no quota file system, so that errno is built by hand)", () => {
    const cause = Object.assign(new Error("EDQUOT: disk quota exceeded, write"), { code: "EDQUOT" });
    const error = storeFileError(path, "write", cause);
    expect(error).toBeInstanceOf(StorageFullError);
    expect(error).toMatchObject({ code: "ERR_STORAGE_FULL", cause });
    expect(error.message).toContain(path);
    expect(error.message).toContain("EDQUOT");
  });
});
