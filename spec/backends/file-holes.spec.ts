import { spawn } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileLock } from "../../lib/backends/file/lock.js";
import { openFileBackend } from "../../lib/backends/file/open.js";
import { FileStore } from "../../lib/backends/file/store.js";
import { openStorage, type WorkspaceStorage } from "../../lib/index.js";
import { tempDir } from "../support/env.js";
import { diskEntries, diskText } from "../support/file-disk.js";

const config = (path: string) => ({ url: `file:${path}`, root: "fw", workspaceId: "shared" });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The process state letter from /proc/<pid>/stat (R, S, Z, ...), or undefined once the pid is gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

describe("file store: one file reached by several paths", () => {
  let dir: ReturnType<typeof tempDir>;
  const open: WorkspaceStorage[] = [];

  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(async () => {
    for (const storage of open.splice(0)) await storage.close();
    dir.remove();
  });

  it("keeps every save when two storages reach one file through a symlinked directory", async () => {
    mkdirSync(join(dir.path, "real"));
    symlinkSync(join(dir.path, "real"), join(dir.path, "alias"));
    const a = await openStorage(config(join(dir.path, "real", "store.json")));
    const b = await openStorage(config(join(dir.path, "alias", "store.json")));
    open.push(a, b);
    const saves = async (storage: WorkspaceStorage, tag: string) => {
      for (let i = 0; i < 100; i++) await storage.artifacts.save(`${tag}-${i}`, i);
    };
    await Promise.all([saves(a, "a"), saves(b, "b")]);
    const fresh = await openStorage(config(join(dir.path, "real", "store.json")));
    open.push(fresh);
    expect(await fresh.artifacts.list()).toHaveLength(200);
  });

  it("shares one store between a path and a symlink to it, and one lock file beside the real file", async () => {
    const real = join(dir.path, "store.json");
    symlinkSync(real, join(dir.path, "link.json"));
    const a = await openFileBackend(real);
    const b = await openFileBackend(join(dir.path, "link.json"));
    try {
      expect(b.store).toBe(a.store);
      expect(b.url).toBe(`file:${join(dir.path, "link.json")}`);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("never breaks a lock this process holds, even when asked through a second lock object", async () => {
    const lockPath = join(dir.path, "store.json.lock");
    const first = new FileLock(lockPath);
    const second = new FileLock(lockPath);
    await first.acquire(1000);
    await expect(second.acquire(150)).rejects.toMatchObject({ code: "ERR_STORE_LOCKED" });
    await first.release();
    await second.acquire(150);
    await second.release();
    expect(existsSync(lockPath)).toBe(false);
  });

  it("loses nothing when two FileStore objects of one process write the same file", async () => {
    const path = join(dir.path, "store.json");
    const x = new FileStore(path);
    const y = new FileStore(join(dir.path, ".", "store.json"));
    await x.open();
    await y.open();
    const writes = async (store: FileStore, tag: string) => {
      for (let i = 0; i < 100; i++) await store.set(`${tag}-${i}`, String(i));
    };
    await Promise.all([writes(x, "x"), writes(y, "y")]);
    await x.close();
    await y.close();
    expect(await diskEntries(path)).toHaveLength(200);
  });

  it("opening a second FileStore object leaves alone the temp file of this process's write in flight", async () => {
    const path = join(dir.path, "store.json");
    const writing = new FileLock(`${path}.lock`);
    await writing.acquire(1000);
    try {
      // What a writer of this process has on disk between its temp file and its rename.
      const temp = `${path}.tmp.${process.pid}-0123abcd`;
      writeFileSync(temp, "{}");
      await new FileStore(path).open();
      expect(existsSync(temp)).toBe(true);
    } finally {
      await writing.release();
    }
  });

  it("still takes over a leftover lock that carries this process's pid but not one of its tokens", async () => {
    const path = join(dir.path, "store.json");
    const backend = await openFileBackend(path, { lockTimeoutMs: 150 });
    try {
      writeFileSync(`${path}.lock`, JSON.stringify({ pid: process.pid, host: hostname(), token: "earlier" }));
      await backend.store.set("k", "v");
      expect(await backend.store.get("k")).toBe("v");
      expect(existsSync(`${path}.lock`)).toBe(false);
    } finally {
      await backend.close();
    }
  });

  it("writes through a symlinked store path into the real file and leaves the symlink a symlink", async () => {
    mkdirSync(join(dir.path, "data"));
    mkdirSync(join(dir.path, "links"));
    const real = join(dir.path, "data", "store.json");
    const link = join(dir.path, "links", "store.json");
    const first = await openStorage(config(real));
    await first.artifacts.save("before", 1);
    await first.close();
    symlinkSync("../data/store.json", link);

    const viaLink = await openStorage(config(link));
    open.push(viaLink);
    await viaLink.artifacts.save("after", 2);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(realpathSync(link)).toBe(realpathSync(real));
    const onDisk = diskText(real);
    expect(onDisk).toContain("before");
    expect(onDisk).toContain("after");
    expect(readdirSync(join(dir.path, "links"))).toEqual(["store.json"]);
    expect(readdirSync(join(dir.path, "data")).sort()).toEqual(["store.json", "store.json.log"]);
  });

  it("creates a dangling symlink's target on the first write, keeping the symlink", async () => {
    const real = join(dir.path, "later", "store.json");
    const link = join(dir.path, "store.json");
    symlinkSync(real, link);
    const storage = await openStorage(config(link));
    open.push(storage);
    await storage.artifacts.save("first", 1);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(diskText(real)).toContain("first");
  });
});

describe("file store: a zombie lock holder", () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => dir.remove());

  it("takes over a lock whose holder was killed but not yet reaped", async () => {
    // The background `sleep 0` exits at once; its parent, now `sleep 30`, never reaps it.
    const parent = spawn("sh", ["-c", "sleep 0 & echo $!; exec sleep 30"], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const zombie = await new Promise<number>((resolve, reject) => {
        parent.stdout?.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
        parent.once("error", reject);
      });
      for (let i = 0; i < 100 && procState(zombie) !== "Z"; i++) await sleep(20);
      expect(procState(zombie)).toBe("Z");

      const path = join(dir.path, "store.json");
      const backend = await openFileBackend(path, { lockTimeoutMs: 300 });
      try {
        writeFileSync(`${path}.lock`, JSON.stringify({ pid: zombie, host: hostname(), token: "zombie" }));
        await backend.store.set("k", "v");
        expect(await backend.store.get("k")).toBe("v");
        expect(existsSync(`${path}.lock`)).toBe(false);
      } finally {
        await backend.close();
      }
    } finally {
      parent.kill("SIGKILL");
    }
  });
});
