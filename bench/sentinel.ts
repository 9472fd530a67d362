/**
 * Redis behind Sentinel (a master, two replicas, three Sentinels on loopback ports this suite
 * starts and stops by pid; failover tuned: down-after 500 ms, failover-timeout 2 s):
 *   1. write cost: collection().set() with durability "default" against "replicated" (WAIT 1 after
 *      each write), one at a time (latency, interleaved rounds) and 32 in flight (throughput);
 *   2. failover: a writer with durability "replicated" writes one value at a time; the master is
 *      killed (SIGKILL); measured: kill → the Sentinels name a new master, kill → the first write
 *      begun after the master's exit is acknowledged, and writes that failed meanwhile. The killed node is started
 *      again (the Sentinels make it a replica) before the next round.
 * Every node runs on this machine: replication over loopback is the cheapest it will ever be.
 */
import { openStorage, type WorkspaceStorage } from "../lib/index.js";
import { SentinelSet } from "../spec/support/sentinel.js";
import { type BenchRow, interleaved, progress, ratios, row, type SuiteOptions, samples, toMicros } from "./rows.js";
import { benchRoot } from "./support.js";

const GROUP = "sentinel";
const VALUE = { n: 1, text: "x".repeat(100) };
const IN_FLIGHT = 32;

async function throughput(storage: WorkspaceStorage, ops: number): Promise<number> {
  const c = storage.collection("tp");
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < ops) await c.set(`k${next++ % 1000}`, VALUE);
    }),
  );
  return ops / ((performance.now() - started) / 1000);
}

async function replicasOnline(set: SentinelSet, count: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const info = String(await set.send(await set.masterPort(), ["INFO", "replication"]));
      if ((info.match(/state=online/g) ?? []).length >= count) return;
    } catch {
      // mid-failover
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`fewer than ${count} replicas online after ${timeoutMs} ms`);
}

export async function run(opts: SuiteOptions): Promise<BenchRow[]> {
  const set = new SentinelSet();
  const rows: BenchRow[] = [];
  await set.start();
  const root = benchRoot("sentinel");
  const open = (durability: "default" | "replicated") =>
    openStorage({ url: set.url(), root, workspaceId: durability, durability }, { connectTimeoutMs: 2000 });
  try {
    // 1. write cost
    const plain = await open("default");
    const replicated = await open("replicated");
    const tasks = [
      { name: "set default", fn: () => plain.collection("lat").set("k", VALUE) },
      { name: "set replicated", fn: () => replicated.collection("lat").set("k", VALUE) },
    ];
    const rounds = opts.tiny ? 1 : opts.full ? 10 : 5;
    progress("sentinel: write latency, default vs replicated");
    const lat = await interleaved(tasks, { rounds, time: opts.tiny ? 50 : 400, iterations: 20 });
    const a = samples(lat, "set default");
    const b = samples(lat, "set replicated");
    rows.push(row(GROUP, "set() one at a time, durability default", "µs/op", toMicros(a)));
    rows.push(row(GROUP, 'set() one at a time, durability "replicated"', "µs/op", toMicros(b)));
    rows.push(row(GROUP, "replicated / default latency", "×", ratios(b, a), "same rounds, interleaved"));
    progress("sentinel: write throughput at 32 in flight");
    const ops = opts.tiny ? 500 : 5000;
    const tpA: number[] = [];
    const tpB: number[] = [];
    for (let r = 0; r < rounds; r++) {
      tpA.push(await throughput(plain, ops));
      tpB.push(await throughput(replicated, ops));
    }
    rows.push(row(GROUP, `set() ${IN_FLIGHT} in flight, durability default`, "ops/s", tpA));
    rows.push(row(GROUP, `set() ${IN_FLIGHT} in flight, durability "replicated"`, "ops/s", tpB));
    rows.push(row(GROUP, "replicated / default throughput", "×", ratios(tpB, tpA)));
    await plain.close();

    // 2. failover
    const promotedMs: number[] = [];
    const resumedMs: number[] = [];
    const failedWrites: number[] = [];
    const failovers = opts.tiny ? 1 : opts.full ? 5 : 3;
    const c = replicated.collection("failover");
    for (let round = 0; round < failovers; round++) {
      progress(`sentinel: failover ${round + 1}/${failovers}`);
      await replicasOnline(set, 2);
      let killedAt = 0;
      let firstAck = 0;
      let failed = 0;
      let stop = false;
      const writer = (async () => {
        for (let i = 0; !stop; i++) {
          const started = performance.now();
          try {
            await c.set(`r${round}-${i}`, i);
            // Only a write begun after the master died shows that writing resumed.
            if (killedAt && started > killedAt && !firstAck) firstAck = performance.now();
          } catch {
            if (killedAt) failed++;
          }
        }
      })();
      await new Promise((r) => setTimeout(r, 200));
      const old = await set.masterPort();
      await set.node(old).kill();
      killedAt = performance.now();
      await set.promoted(old);
      promotedMs.push(performance.now() - killedAt);
      const deadline = Date.now() + 15_000;
      while (!firstAck && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      stop = true;
      await writer;
      if (!firstAck) throw new Error("writes did not resume within 15 s of the failover");
      resumedMs.push(firstAck - killedAt);
      failedWrites.push(failed);
      await set.node(old).start();
    }
    rows.push(row(GROUP, "failover: master dead → Sentinels name a new master", "ms", promotedMs));
    rows.push(
      row(GROUP, 'failover: master dead → first "replicated" write begun after it is acknowledged', "ms", resumedMs),
    );
    rows.push(row(GROUP, "failover: writes that failed meanwhile", "writes", failedWrites));
    await replicated.close();
  } finally {
    await set.stop();
  }
  return rows;
}
