/**
 * A Redis Cluster of the test's own: three masters (no replicas) on free loopback ports, each a
 * PrivateRedis child process in its own temp dir (nodes.conf and AOF there, so a killed master
 * restarts with its slots). Started per spec file in beforeAll, stopped by pid in afterAll —
 * which vitest runs even when a test fails.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createClient } from "@redis/client";
import { tempDir } from "./env.js";
import { freePort, PrivateRedis } from "./servers.js";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface TestCluster {
  readonly masters: PrivateRedis[];
  /** The seed URL a storage is opened with. */
  readonly url: string;
  /** CLUSTER <args> (or any command) on one node, by port. */
  command(port: number, args: string[]): Promise<unknown>;
  /** Waits until every running node reports cluster_state:ok and agrees on the slot map. */
  ready(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

async function once(port: number, args: string[]): Promise<unknown> {
  const client = createClient({ socket: { host: "127.0.0.1", port, reconnectStrategy: false, connectTimeout: 1000 } });
  client.on("error", () => {});
  await client.connect();
  try {
    return await client.sendCommand(args);
  } finally {
    client.destroy();
  }
}

export async function startCluster(extraArgs: readonly string[] = []): Promise<TestCluster> {
  const dir = tempDir();
  const args = ["--cluster-enabled", "yes", "--cluster-node-timeout", "3000", ...extraArgs];
  const masters: PrivateRedis[] = [];
  const stop = async () => {
    for (const master of masters) await master.kill();
    dir.remove();
  };
  try {
    for (let i = 0; i < 3; i++) {
      const sub = `${dir.path}/n${i}`;
      await run("mkdir", ["-p", sub]);
      // Its own bus port: the default (port + 10000) may be taken, or beyond 65535.
      const master = new PrivateRedis(await freePort(), sub, [...args, "--cluster-port", String(await freePort())]);
      masters.push(master);
      await master.start();
    }
    await run(
      "redis-cli",
      ["--cluster", "create", ...masters.map((m) => `127.0.0.1:${m.port}`), "--cluster-replicas", "0", "--cluster-yes"],
      { timeout: 20_000 },
    );
    const cluster: TestCluster = {
      masters,
      url: masters[0]!.url,
      command: once,
      async ready(timeoutMs = 15_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          try {
            const states = await Promise.all(masters.map((m) => once(m.port, ["CLUSTER", "INFO"])));
            const slots = await Promise.all(masters.map((m) => once(m.port, ["CLUSTER", "SLOTS"])));
            const same = slots.every((s) => JSON.stringify(s) === JSON.stringify(slots[0]));
            if (same && states.every((s) => String(s).includes("cluster_state:ok"))) return;
          } catch {
            // a node still starting: try again
          }
          if (Date.now() > deadline) throw new Error("the test cluster did not become ready");
          await sleep(100);
        }
      },
      stop,
    };
    await cluster.ready();
    return cluster;
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The port of the master that serves `slot`, from CLUSTER SLOTS as node `port` sees it. */
export async function ownerOf(cluster: TestCluster, slot: number): Promise<number> {
  const ranges = (await cluster.command(cluster.masters[0]!.port, ["CLUSTER", "SLOTS"])) as [
    number,
    number,
    [string, number],
  ][];
  for (const [from, to, [, port]] of ranges) if (slot >= from && slot <= to) return Number(port);
  throw new Error(`slot ${slot} has no owner`);
}

export interface SlotMigration {
  /** Pause after each MIGRATE, so writes land while the slot is half-migrated. */
  pauseMs?: number;
  /** Keys per MIGRATE (redis-cli --cluster-pipeline, 10 by default there); default 1. */
  batch?: number;
  /** Moves this key (a collection's #index or #data) once half of the others have moved. */
  middle?: string;
  /** Runs once `middle` has moved, the slot still MIGRATING/IMPORTING. */
  atMiddle?: () => Promise<void>;
}

/**
 * Moves `slot` to the master on port `to` the way redis-cli --cluster reshard does it:
 * SETSLOT IMPORTING/MIGRATING, MIGRATE a batch of keys at a time, then SETSLOT NODE on every master.
 */
export async function migrateSlot(cluster: TestCluster, slot: number, to: number, options: SlotMigration = {}) {
  const from = await ownerOf(cluster, slot);
  const id = async (port: number) => String(await cluster.command(port, ["CLUSTER", "MYID"]));
  const [fromId, toId] = [await id(from), await id(to)];
  const move = async (keys: string[]) => {
    await cluster.command(from, ["MIGRATE", "127.0.0.1", String(to), "", "0", "5000", "KEYS", ...keys]);
    if (options.pauseMs) await sleep(options.pauseMs);
  };
  await cluster.command(to, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", fromId]);
  await cluster.command(from, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", toId]);
  const all = ((await cluster.command(from, ["CLUSTER", "GETKEYSINSLOT", String(slot), "100000"])) as string[])
    .map(String)
    .filter((key) => key !== options.middle);
  const batch = options.batch ?? 1;
  const moveAll = async (keys: string[]) => {
    for (let i = 0; i < keys.length; i += batch) await move(keys.slice(i, i + batch));
  };
  const half = Math.floor(all.length / 2);
  await moveAll(all.slice(0, half));
  if (options.middle !== undefined) {
    await move([options.middle]);
    await options.atMiddle?.();
  }
  await moveAll(all.slice(half));
  // Keys written to the source meanwhile (overwrites land where the key is; nothing new should).
  for (;;) {
    const keys = (await cluster.command(from, ["CLUSTER", "GETKEYSINSLOT", String(slot), "100"])) as string[];
    if (keys.length === 0) break;
    await move(keys.map(String));
  }
  for (const master of cluster.masters) {
    await cluster.command(master.port, ["CLUSTER", "SETSLOT", String(slot), "NODE", toId]);
  }
}
