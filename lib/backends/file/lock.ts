import { randomBytes } from "node:crypto";
import { linkSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { link, readFile, rename, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { StoreLockedError } from "../../errors.js";

interface LockOwner {
  pid: number;
  host: string;
  token: string;
}

const HOST = hostname();

/**
 * Tokens of the locks this process holds right now, across every FileLock object: a lock
 * file naming our pid is ours only if its token is here; otherwise an earlier process that
 * had the same pid left it behind.
 */
const heldHere = new Set<string>();

/** Lock paths some FileLock of this process is acquiring or holding, with how many. */
const busyHere = new Map<string, number>();

function busy(path: string, by: 1 | -1): void {
  const count = (busyHere.get(path) ?? 0) + by;
  if (count > 0) busyHere.set(path, count);
  else busyHere.delete(path);
}

/**
 * Whether this process is taking or holding the lock at `path`: its temp and aside files are
 * then in use, not leftovers of a crash, even though they carry this process's pid.
 */
export function lockBusyHere(path: string): boolean {
  return busyHere.has(path);
}

/**
 * A killed process stays in the table as a zombie until its parent reaps it, and signal 0
 * still reaches it; it will never release a lock. Without /proc the pid counts as alive.
 */
function zombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name in parentheses may itself contain ") ", so the state follows the last one.
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    return state === "Z" || state === "X";
  } catch {
    return false;
  }
}

/** Whether a process with this pid runs on this machine (EPERM: it exists, it just isn't ours). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  return !zombie(pid);
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(text) as Partial<LockOwner>;
    if (typeof owner.pid === "number" && typeof owner.host === "string" && typeof owner.token === "string") {
      return owner as LockOwner;
    }
  } catch {}
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A lock file whose content cannot be read is only treated as abandoned after this long,
// so a reader never breaks a lock whose owner is between creating and describing it.
const UNREADABLE_GRACE_MS = 30_000;

/**
 * A cross-process lock on a store file: `<file>.lock` holds its owner's pid, host and a
 * random token. It is created atomically complete (written aside, then hard-linked into
 * place, which fails if a lock exists), so nobody ever sees a half-written lock.
 *
 * A lock whose owner process is gone (a crash, a SIGKILL) is taken over: Node has no
 * portable flock(), and a lock file that outlives its owner must not block every later open.
 */
export class FileLock {
  readonly path: string;
  #token: string | undefined;

  constructor(path: string) {
    this.path = path;
  }

  // Taking and releasing run synchronously: each is a few metadata calls of microseconds, cheaper
  // than a round trip through the thread pool each, and paid on every write batch.
  async acquire(timeoutMs: number): Promise<void> {
    const token = randomBytes(8).toString("hex");
    const aside = `${this.path}.${process.pid}-${token}`;
    busy(this.path, 1);
    let acquired = false;
    try {
      writeFileSync(aside, JSON.stringify({ pid: process.pid, host: HOST, token } satisfies LockOwner));
      const deadline = Date.now() + timeoutMs;
      for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
        try {
          linkSync(aside, this.path);
          this.#token = token;
          heldHere.add(token);
          acquired = true;
          return;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        }
        if (await this.#breakIfStale()) continue;
        if (Date.now() > deadline) {
          const owner = parseOwner(await readFile(this.path, "utf8").catch(() => ""));
          throw new StoreLockedError(
            this.path,
            `store lock ${this.path} is held by ${owner ? `process ${owner.pid} on ${owner.host}` : "another process"} ` +
              `for more than ${timeoutMs} ms; if no such process is running, delete the lock file`,
          );
        }
        await sleep(delay);
      }
    } finally {
      if (!acquired) busy(this.path, -1);
      try {
        unlinkSync(aside);
      } catch {}
    }
  }

  async release(): Promise<void> {
    const token = this.#token;
    if (token === undefined) return;
    this.#token = undefined;
    heldHere.delete(token);
    busy(this.path, -1);
    // Only remove the lock if it is still ours (it always should be; this guards against a takeover bug).
    let text = "";
    try {
      text = readFileSync(this.path, "utf8");
    } catch {}
    if (parseOwner(text)?.token === token) {
      try {
        unlinkSync(this.path);
      } catch {}
    }
  }

  /** For process exit, where nothing async runs any more. */
  releaseSync(unlinkNow: (path: string) => void = unlinkSync): void {
    if (this.#token === undefined) return;
    heldHere.delete(this.#token);
    busy(this.path, -1);
    this.#token = undefined;
    try {
      unlinkNow(this.path);
    } catch {}
  }

  /** Removes the lock if its owner is gone. True when the caller should retry at once. */
  async #breakIfStale(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "ENOENT";
    }
    const owner = parseOwner(text);
    if (owner) {
      // Another host's pid means nothing here; such locks are never broken (the README says: one machine per file).
      if (owner.host !== HOST) return false;
      // Our own pid: held if one of our lock objects holds that token (another store object on the
      // same file), else a leftover of an earlier process that had the same pid.
      if (owner.pid === process.pid ? heldHere.has(owner.token) : processAlive(owner.pid)) return false;
    } else {
      const age = await stat(this.path).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age < UNREADABLE_GRACE_MS) return false;
    }
    // Move the stale lock aside and check it is the one we judged: if another process broke it
    // and locked anew in between, we moved a live lock and must put it back.
    const moved = `${this.path}.stale-${randomBytes(6).toString("hex")}`;
    try {
      await rename(this.path, moved);
    } catch {
      return true;
    }
    const movedText = await readFile(moved, "utf8").catch(() => "");
    if (movedText !== text) await link(moved, this.path).catch(() => {});
    await unlink(moved).catch(() => {});
    return true;
  }
}
