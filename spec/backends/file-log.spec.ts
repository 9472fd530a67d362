// The file store's log beside its snapshot: old files converted, torn and damaged logs, compaction
// under concurrent readers, crash-safety of compaction under SIGKILL, and bounded growth.
import { spawn } from "node:child_process";
import { appendFileSync, copyFileSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openFileBackend } from "../../lib/backends/file/open.js";
import { FileStore } from "../../lib/backends/file/store.js";
import { openStorage, StoreCorruptError } from "../../lib/index.js";
import { tempDir } from "../support/env.js";
import { diskKeys } from "../support/file-disk.js";

const v1Fixture = fileURLToPath(new URL("../fixtures/file-store-v1.json", import.meta.url));
const compactor = fileURLToPath(new URL("../fixtures/file-compactor.mjs", import.meta.url));

/** Process warnings with `code` emitted while `fn` runs. */
async function warningsDuring(code: string, fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (warning: Error & { code?: string }) => {
    if (warning.code === code) seen.push(warning.message);
  };
  process.on("warning", listener);
  try {
    await fn();
    // emitWarning delivers on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off("warning", listener);
  }
  return seen;
}

async function names(collection: { iterator?: (ns: undefined) => AsyncGenerator<[unknown, unknown]> }) {
  const out: string[] = [];
  for await (const [key] of collection.iterator?.(undefined) ?? []) out.push(key as string);
  return out.sort();
}

const opened = async (path: string, options = {}) => {
  const store = new FileStore(path, options);
  await store.open();
  return store;
};

describe("file store log", () => {
  let dir: ReturnType<typeof tempDir>;
  let path = "";
  beforeEach(() => {
    dir = tempDir();
    path = join(dir.path, "store.json");
  });
  afterEach(() => dir.remove());

  it("opens a store written by version-1 code as it is, and converts it on the first write", async () => {
    copyFileSync(v1Fixture, path);
    const original = readFileSync(path);
    const storage = await openStorage({ url: `file:${path}`, root: "app", workspaceId: "alpha" });
    try {
      expect(await storage.artifacts.load("report")).toEqual({ title: "written by 0.1 code", n: 1 });
      expect(await storage.collection("notes").get("lasting-ttl")).toBe("far");
      expect(await names(storage.collection("notes"))).toEqual(["kept", "lasting-ttl"]);
      expect(await storage.withWorkspace("beta").collection("notes").get("other")).toBe(2);
      // Reading converts nothing.
      expect(readFileSync(path).equals(original)).toBe(true);
      await storage.collection("notes").set("new", 3);
    } finally {
      await storage.close();
    }
    const doc = JSON.parse(readFileSync(path, "utf8"));
    expect(doc).toMatchObject({ format: "keyv-workspaces/file", version: 2, generation: 1 });
    expect(statSync(`${path}.log`).size).toBeGreaterThan(0);
    const again = await openStorage({ url: `file:${path}`, root: "app", workspaceId: "alpha" });
    try {
      expect(await again.artifacts.load("report")).toEqual({ title: "written by 0.1 code", n: 1 });
      expect(await names(again.collection("notes"))).toEqual(["kept", "lasting-ttl", "new"]);
      expect(await again.withWorkspace("beta").collection("notes").get("other")).toBe(2);
    } finally {
      await again.close();
    }
    const raw = await opened(path);
    expect(await raw.get("raw-key")).toBe("raw");
    await raw.close();
  });

  for (const [kind, tear] of [
    ["a record cut short", (record: Buffer) => record.subarray(0, record.length - 5)],
    ["a header cut short", (record: Buffer) => record.subarray(0, 7)],
    ["zeros the file system left", (record: Buffer) => Buffer.alloc(record.length)],
  ] as const) {
    it(`drops ${kind} at the end of the log, reports it at the next write, and appends after it`, async () => {
      const store = await opened(path);
      await store.set("a", "1");
      await store.set("b", "2");
      await store.close();
      // A whole record of this store, torn: what a crash mid-append leaves.
      const probe = await opened(join(dir.path, "probe.json"));
      await probe.set("c", "3");
      await probe.set("c", "4");
      await probe.close();
      const probeLog = readFileSync(join(dir.path, "probe.json.log"));
      // The probe's first write started its log; its second is the one record after the header.
      appendFileSync(`${path}.log`, tear(probeLog.subarray(12 + probeLog.readUInt32BE(0))));

      const reader = await opened(path);
      expect(await reader.get("b")).toBe("2");
      expect(await reader.get("c")).toBeUndefined();
      const warnings = await warningsDuring("KVWS_FILE_TORN_TAIL", () => reader.set("d", "5"));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`${path}.log`);
      await reader.close();
      expect(await diskKeys(path)).toEqual(["a", "b", "d"]);
    });
  }

  it("refuses a log damaged before its last record with StoreCorruptError, and leaves it as it was", async () => {
    const store = await opened(path);
    for (const key of ["a", "b", "c"]) await store.set(key, key.repeat(50));
    await store.close();
    const log = readFileSync(`${path}.log`);
    // Inside the payload of the first change record (after the header record).
    const at = 12 + log.readUInt32BE(0) + 12 + 10;
    log[at] = (log[at] as number) ^ 0xff;
    writeFileSync(`${path}.log`, log);
    const error = await opened(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreCorruptError);
    expect(error).toMatchObject({ code: "ERR_STORE_CORRUPT", path: `${path}.log` });
    expect(readFileSync(`${path}.log`).equals(log)).toBe(true);
  });

  it("refuses a log newer than its snapshot (an old snapshot put back) instead of replaying it on the wrong base", async () => {
    const store = await opened(path);
    await store.set("a", "1");
    const old = readFileSync(path);
    await store.set("b", "2");
    await store.compact();
    await store.set("c", "3");
    await store.close();
    writeFileSync(path, old);
    await expect(opened(path)).rejects.toMatchObject({ code: "ERR_STORE_CORRUPT", path: `${path}.log` });
  });

  it("serves every write to a reader in another store object across compactions, replaying only the tail", async () => {
    const writer = await opened(path, { compactBytes: 2048 });
    const reader = await opened(path);
    try {
      for (let i = 0; i < 300; i++) {
        await writer.set(`k${i % 40}`, `${i}`);
        if (i % 7 === 0) {
          for (let k = Math.max(0, i - 39); k <= i; k++) expect(await reader.get(`k${k % 40}`)).toBe(`${k}`);
        }
      }
      const generation = JSON.parse(readFileSync(path, "utf8")).generation as number;
      expect(generation).toBeGreaterThan(3);
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it("keeps every write when a compaction stopped between its snapshot and its new log", async () => {
    const store = await opened(path);
    for (let i = 0; i < 20; i++) await store.set(`k${i}`, `${i}`);
    const oldLog = readFileSync(`${path}.log`);
    await store.compact();
    await store.close();
    // What a crash right after the snapshot's rename leaves: the new snapshot, the old log.
    writeFileSync(`${path}.log`, oldLog);
    const reopened = await opened(path);
    for (let i = 0; i < 20; i++) expect(await reopened.get(`k${i}`)).toBe(`${i}`);
    await reopened.set("after", "1");
    await reopened.close();
    expect((await diskKeys(path)).sort()).toEqual([...Array.from({ length: 20 }, (_, i) => `k${i}`), "after"].sort());
  });

  it("keeps the files bounded through a million writes to one key", async () => {
    const backend = await openFileBackend(path, { compactBytes: 16 * 1024 });
    const store = backend.store as FileStore;
    let largest = 0;
    const BATCH = 10_000;
    for (let i = 0; i < 1_000_000; i += BATCH) {
      await Promise.all(Array.from({ length: BATCH }, (_, j) => store.set("counter", `${i + j}:${"x".repeat(100)}`)));
      // A few distinct keys per batch, so each record is more than one operation.
      await Promise.all(Array.from({ length: 20 }, (_, j) => store.set(`side-${j}`, `${i}`)));
      largest = Math.max(largest, statSync(path).size + statSync(`${path}.log`).size);
    }
    await store.flush();
    await backend.close();
    expect(largest).toBeLessThan(64 * 1024);
    const reopened = await opened(path);
    expect(await reopened.get("counter")).toBe(`999999:${"x".repeat(100)}`);
    await reopened.close();
  }, 60_000);
});

describe("file store compaction under SIGKILL", () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => dir.remove());

  /** Runs the compactor until it has acknowledged some writes, kills it after `ms`, returns the last acknowledged seq. */
  function killAfter(path: string, keys: number, ms: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [compactor, path, String(keys)], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => {
        if (!out.includes("ready") && `${out}${chunk}`.includes("ready")) setTimeout(() => child.kill("SIGKILL"), ms);
        out += chunk.toString();
      });
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      child.once("exit", (code, signal) => {
        if (signal !== "SIGKILL") return reject(new Error(`compactor exited with ${code}: ${stderr}`));
        const acks = out.split("\n").filter((line) => line.startsWith("ack "));
        resolve(acks.length > 0 ? Number(acks.at(-1)?.slice(4)) : -1);
      });
    });
  }

  it("loses no acknowledged write when killed at random points while writing and compacting (50 runs)", async () => {
    const path = join(dir.path, "store.json");
    const KEYS = 20;
    let acknowledged = -1;
    let compactions = 0;
    let interrupted = 0;
    for (let run = 0; run < 50; run++) {
      const last = await killAfter(path, KEYS, 5 + Math.floor(Math.random() * 120));
      // A snapshot temp file left behind: this kill landed inside a compaction.
      if (readdirSync(dir.path).some((name) => name.startsWith("store.json.tmp."))) interrupted++;
      const store = await opened(path);
      const generation = JSON.parse(readFileSync(path, "utf8")).generation as number;
      compactions = generation;
      // The child starts its numbering at 0 each run; what it acknowledged is on disk, each key
      // holding that write or the one in flight after it.
      for (let seq = Math.max(0, last - KEYS + 1); seq <= last; seq++) {
        const value = (await store.get(`k${seq % KEYS}`)) as string | undefined;
        expect(value, `run ${run}: write ${seq} acknowledged`).toBeDefined();
        const stored = Number(value?.split(":")[0]);
        expect(stored, `run ${run}: key k${seq % KEYS}`).toBeGreaterThanOrEqual(seq);
        expect(stored).toBeLessThanOrEqual(last + 3);
      }
      acknowledged += Math.max(0, last + 1);
      // Each run overwrites the keys from seq 0 again: clear them so the next run's check is strict.
      await store.clear();
      await store.close();
      const leftovers = readdirSync(dir.path).filter((name) => name.includes(".tmp."));
      expect(leftovers, `run ${run}`).toEqual([]);
    }
    expect(acknowledged).toBeGreaterThan(500);
    expect(compactions).toBeGreaterThan(20);
    expect(interrupted).toBeGreaterThan(0);
  }, 60_000);
});
