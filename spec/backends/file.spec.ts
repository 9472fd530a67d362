import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Keyv } from "keyv";
import { KeyvFile } from "keyv-file";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Backend, Driver } from "../../lib/backends/driver.js";
import { DRIVER } from "../../lib/backends/driver.js";
import { openFileBackend } from "../../lib/backends/file/open.js";
import { FileStore } from "../../lib/backends/file/store.js";
import { openStorage, StoreCorruptError, type WorkspaceStorage } from "../../lib/index.js";
import { tempDir } from "../support/env.js";
import { diskText } from "../support/file-disk.js";

const writer = fileURLToPath(new URL("../fixtures/file-writer.ts", import.meta.url));
const run = promisify(execFile);
const config = (path: string) => ({ url: `file:${path}`, root: "fw", workspaceId: "shared" });

function writerProcess(args: string[]): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", writer, ...args], { stdio: ["ignore", "pipe", "pipe"] });
}

/** A pid that certainly belonged to a process that is gone now. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid ?? 0;
}

describe("file backend", () => {
  let dir: ReturnType<typeof tempDir>;
  let path = "";
  const open: WorkspaceStorage[] = [];
  const openHere = async () => {
    const storage = await openStorage(config(path));
    open.push(storage);
    return storage;
  };

  beforeEach(() => {
    dir = tempDir();
    path = join(dir.path, "store.json");
  });
  afterEach(async () => {
    for (const storage of open.splice(0)) await storage.close();
    dir.remove();
  });

  it("keeps every acknowledged save when the writer is SIGKILLed right after", async () => {
    const child = writerProcess([path, "k", "20", "hang"]);
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("saved 20")) {
          child.kill("SIGKILL");
          resolve();
        }
      });
      child.once("exit", (code) => reject(new Error(`writer exited early with ${code}`)));
    });
    await new Promise((resolve) => child.once("exit", resolve));
    const storage = await openHere();
    const names = (await storage.artifacts.list()).map((a) => a.name);
    expect(names).toHaveLength(20);
    for (let i = 0; i < 20; i++) expect(await storage.artifacts.load(`k-${i}`)).toMatchObject({ tag: "k", i });
  });

  it("loses nothing when two processes write the same file at once", async () => {
    const args = (tag: string) => ["--import", "tsx", writer, path, tag, "40", "seq"];
    const env = { ...process.env, START_AT: String(Date.now() + 2000) };
    await Promise.all([
      run(process.execPath, args("a"), { timeout: 60_000, env }),
      run(process.execPath, args("b"), { timeout: 60_000, env }),
    ]);
    const storage = await openHere();
    const names = (await storage.artifacts.list()).map((a) => a.name);
    expect(names).toHaveLength(80);
    expect(names.filter((n) => n.startsWith("a-"))).toHaveLength(40);
    expect(names.filter((n) => n.startsWith("b-"))).toHaveLength(40);
  });

  it("serves another process's committed write on the next read", async () => {
    const storage = await openHere();
    await storage.artifacts.save("mine", 1);
    await run(process.execPath, ["--import", "tsx", writer, path, "other", "3"], { timeout: 30_000 });
    expect(await storage.artifacts.load("other-2")).toMatchObject({ tag: "other", i: 2 });
    expect((await storage.artifacts.list()).map((a) => a.name)).toEqual(["mine", "other-0", "other-1", "other-2"]);
    await storage.artifacts.save("after", 2);
    expect(await storage.artifacts.has("other-0")).toBe(true);
  });

  for (const [damage, corrupt] of [
    ["a truncated file", (text: string) => text.slice(0, Math.floor(text.length / 2))],
    ["garbage bytes", () => "\u0000\u0001garbage\u00ff{{{"],
    ["an empty file", () => ""],
    ["JSON of another shape", () => JSON.stringify({ hello: "world" })],
  ] as const) {
    it(`refuses ${damage} with ERR_STORE_CORRUPT and leaves it byte for byte`, async () => {
      const first = await openStorage(config(path));
      await first.artifacts.save("precious", { keep: true });
      await first.close();
      writeFileSync(path, corrupt(readFileSync(path, "utf8")));
      const before = readFileSync(path);

      const error = await openStorage(config(path)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreCorruptError);
      expect(error).toMatchObject({ code: "ERR_STORE_CORRUPT", path });
      expect((error as Error).message).toContain(path);
      expect(readFileSync(path).equals(before)).toBe(true);
    });
  }

  it("refuses reads and writes once another process damages an open store, without overwriting it", async () => {
    const storage = await openHere();
    await storage.artifacts.save("a", 1);
    writeFileSync(path, "{ torn");
    await expect(storage.artifacts.load("a")).rejects.toMatchObject({ code: "ERR_STORE_CORRUPT" });
    await expect(storage.artifacts.save("b", 2)).rejects.toMatchObject({ code: "ERR_STORE_CORRUPT" });
    expect(readFileSync(path, "utf8")).toBe("{ torn");
  });

  it("takes over a lock left by a process that is gone", async () => {
    const storage = await openHere();
    await storage.artifacts.save("before", 1);
    const pid = await deadPid();
    writeFileSync(`${path}.lock`, JSON.stringify({ pid, host: (await import("node:os")).hostname(), token: "dead" }));
    await storage.artifacts.save("after", 2);
    expect(await storage.artifacts.load("after")).toBe(2);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it("waits for a live lock holder and reports ERR_STORE_LOCKED when it never lets go", async () => {
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 20000)"], { stdio: "ignore" });
    try {
      const backend = await openFileBackend(path, { lockTimeoutMs: 150 });
      const host = (await import("node:os")).hostname();
      writeFileSync(`${path}.lock`, JSON.stringify({ pid: holder.pid, host, token: "live" }));
      await expect(backend.store.set("k", "v")).rejects.toMatchObject({
        code: "ERR_STORE_LOCKED",
        path: `${path}.lock`,
      });
      expect(existsSync(`${path}.lock`)).toBe(true);
      await backend.close();
    } finally {
      holder.kill("SIGKILL");
    }
  });

  it("ignores and removes a temp file a crashed writer left behind", async () => {
    const storage = await openStorage(config(path));
    await storage.artifacts.save("kept", "yes");
    await storage.close();
    const leftover = `${path}.tmp.${await deadPid()}-deadbeef`;
    writeFileSync(leftover, "{ half a docu");
    const reopened = await openHere();
    expect(await reopened.artifacts.load("kept")).toBe("yes");
    expect(existsSync(leftover)).toBe(false);
    await reopened.artifacts.save("more", 1);
    expect(readdirSync(dir.path).sort()).toEqual(["store.json", "store.json.log"]);
  });

  it("batches concurrent writes and resolves each only once it is on disk", async () => {
    const storage = await openHere();
    await Promise.all(Array.from({ length: 50 }, (_, i) => storage.collection("notes").set(`n${i}`, i)));
    const onDisk = diskText(path);
    for (let i = 0; i < 50; i++) expect(onDisk).toContain(`"fw:ws:shared:notes:n${i}"`);
  });

  it("reads a store keyv-file wrote, and converts it on the first write", async () => {
    const legacy = new KeyvFile({ filename: path, writeDelay: 1 });
    const raw = new Keyv({ store: legacy, namespace: undefined, useKeyPrefix: false });
    // keyv-file resolves set() once it has written the file (after writeDelay).
    await raw.set("fw:ws:shared:notes:old", { from: "keyv-file" });
    const storage = await openHere();
    expect(await storage.collection("notes").get("old")).toEqual({ from: "keyv-file" });
    await storage.collection("notes").set("new", 1);
    expect(JSON.parse(readFileSync(path, "utf8")).format).toBe("keyv-workspaces/file");
    expect(await storage.collection("notes").get("old")).toEqual({ from: "keyv-file" });
  });

  it("drops values written with a TTL once they expire, from reads, from a reopened store, and from the next snapshot", async () => {
    const storage = await openHere();
    // The same store object the storage writes through (one per path in a process).
    const backend = await openFileBackend(path);
    const notes = storage.collection("notes");
    await notes.set("brief", 1, 30);
    await notes.set("lasting", 2);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await notes.get("brief")).toBeUndefined();
    await notes.set("trigger", 3);
    const fresh = new FileStore(path);
    await fresh.open();
    expect(await fresh.get("fw:ws:shared:notes:brief")).toBeUndefined();
    // The log keeps the record until the next compaction, which writes only live entries.
    await (backend.store as FileStore).compact();
    expect(diskText(path)).not.toContain("brief");
    expect(await notes.get("lasting")).toBe(2);
    await backend.close();
  });

  it("completes a write issued as soon as the previous one resolved", async () => {
    const backend = await openFileBackend(path);
    const driver = (backend.store as FileStore)[DRIVER];
    // Awaiting the driver directly resumes before the finished batch is let go of.
    await driver.scope("fw:notes").set("a", "1");
    await driver.scope("fw:notes").set("b", "2");
    await driver.scope("fw:notes").delete("a");
    expect(await driver.scope("fw:notes").get("b")).toBe("2");
    await backend.close();
  });

  it("shares one store per path in a process and releases it after the last close", async () => {
    const a = await openFileBackend(path);
    const b = await openFileBackend(join(dir.path, ".", "store.json"));
    expect(b.store).toBe(a.store);
    await a.close();
    await b.store.set("still-open", "1");
    await b.close();
    const c = await openFileBackend(path);
    expect(c.store).not.toBe(a.store);
    expect(await c.store.get("still-open")).toBe("1");
    await c.close();
  });
});

describe("file backend change log", () => {
  const ops = fileURLToPath(new URL("../fixtures/file-ops.ts", import.meta.url));
  let dir: ReturnType<typeof tempDir>;
  let path = "";
  let backend: Backend | undefined;
  const A = "fw:ws:a:vectors";
  const B = "fw:ws:b:vectors";

  beforeEach(() => {
    dir = tempDir();
    path = join(dir.path, "store.json");
  });
  afterEach(async () => {
    await backend?.close();
    backend = undefined;
    dir.remove();
  });

  const openHere = async (): Promise<Driver> => {
    backend = await openFileBackend(path);
    return (backend.store as FileStore)[DRIVER];
  };
  /** Runs driver writes in a process of their own, as another app sharing the file would. */
  const elsewhere = (...list: unknown[][]) =>
    run(process.execPath, ["--import", "tsx", ops, path, JSON.stringify(list)], { timeout: 60_000 });

  it("names exactly what another process wrote or deleted, and nothing under other prefixes", async () => {
    const driver = await openHere();
    await driver.scope(A).setMany([
      { name: "keep", value: "1" },
      { name: "gone", value: "2" },
    ]);
    await driver.scope(B).set("other", "3");
    const a0 = await driver.scope(A).version!();
    const b0 = await driver.scope(B).version!();
    await elsewhere(["set", A, "new", "4"]);
    expect(await driver.scope(A).changedSince!(a0)).toEqual(["new"]);
    expect(await driver.scope(B).changedSince!(b0)).toEqual([]);
    expect(await driver.scope(B).version!()).toBe(b0);
    const a1 = await driver.scope(A).version!();
    expect(a1).not.toBe(a0);
    expect(Number(a1)).toBeGreaterThan(Number(a0));
    // Same text written again is no change; a new value and a deletion are.
    await elsewhere(["set", A, "keep", "1"], ["set", A, "new", "5"], ["delete", A, "gone"]);
    expect((await driver.scope(A).changedSince!(a1))?.sort()).toEqual(["gone", "new"]);
    expect((await driver.scope(A).changedSince!(a0))?.sort()).toEqual(["gone", "new"]);
    const names: string[] = [];
    for await (const name of driver.scope(A).names()) names.push(name);
    expect(names.sort()).toEqual(["keep", "new"]);
    expect(await driver.scope(A).get("new")).toBe("5");
  });

  it("keeps no state for a prefix another process emptied, and names no further back than its log", async () => {
    const driver = await openHere();
    await driver.scope(B).setMany([
      { name: "p", value: "1" },
      { name: "q", value: "2" },
    ]);
    await driver.scope(A).set("x", "1");
    const a0 = await driver.scope(A).version!();
    const b0 = await driver.scope(B).version!();
    // Another process's clear arrives as the file's new contents: B is empty, so nothing of it is
    // kept (a reader of b0 reloads, which costs nothing for an empty prefix).
    await elsewhere(["clear", B]);
    expect(await driver.scope(B).changedSince!(b0)).toBeUndefined();
    expect(await driver.scope(B).version!()).toBe("0");
    expect(await driver.scope(A).changedSince!(a0)).toEqual([]);
    // More names than the log keeps (1000) cannot be named one by one.
    await elsewhere(["fill", A, "t", "1001"]);
    expect(await driver.scope(A).changedSince!(a0)).toBeUndefined();
    const a1 = await driver.scope(A).version!();
    await elsewhere(["set", A, "y", "2"]);
    expect(await driver.scope(A).changedSince!(a1)).toEqual(["y"]);
  });

  it("follows raw Keyv writes to the same file by full key", async () => {
    const driver = await openHere();
    const store = backend!.store as FileStore;
    await driver.scope(A).set("x", "1");
    const v0 = await driver.scope(A).version!();
    await store.set(`${A}:raw`, "2");
    await store.delete(`${A}:x`);
    expect((await driver.scope(A).changedSince!(v0))?.sort()).toEqual(["raw", "x"]);
    const v1 = await driver.scope(A).version!();
    await store.clear();
    expect(await driver.scope(A).changedSince!(v1)).toBeUndefined();
    expect(await driver.scope(A).changedSince!(await driver.scope(A).version!())).toEqual([]);
  });

  it("refuses versions it never handed out, including those of an earlier opening of the file", async () => {
    let driver = await openHere();
    await driver.scope(A).set("x", "1");
    const old = await driver.scope(A).version!();
    expect(await driver.scope(A).changedSince!(`${Number(old) + 1000}`)).toBeUndefined();
    expect(await driver.scope(A).changedSince!("1.2")).toBeUndefined();
    await backend!.close();
    driver = await openHere();
    expect(await driver.scope(A).changedSince!(old)).toBeUndefined();
  });
});
