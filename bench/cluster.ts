/**
 * The isolation and scan questions asked again on a Redis Cluster (3 masters, no replicas, on
 * loopback ports this suite starts and stops by pid), plus what a cluster is for: aggregate
 * write throughput of many workspaces on 3 masters against the same load on one.
 *   1. per-op overhead: collection() get/set of a cluster storage against raw Keyv over
 *      @keyv/redis on a node-redis cluster client, latency (interleaved rounds) and throughput
 *      at 64 in flight with the server CPU summed over the three masters (INFO cpu deltas), and
 *      the same set in a workspace someone watches (storage.watch(): + SPUBLISH), and one change
 *      message sent as PUBLISH against SPUBLISH (why the feed is sharded: docs/cluster.md).
 *   2. list flat: artifacts.list() of 100 entries while other workspaces hold more and more keys,
 *      with SCAN MATCH on every master (+ MGET) as the comparison.
 *   3. aggregate writes: 1,000 workspaces, 128 in flight, on the cluster and on one private
 *      standalone redis-server (hash-tag layout on both, so the keys are the same).
 *   4. writes before and during a reshard of one workspace's slot, both layouts (cluster-reshard.ts).
 * All nodes run on this machine: see docs/cluster.md for what the 3-vs-1 ratio does and does not say.
 */
import KeyvRedis, { createCluster } from "@keyv/redis";
import { createClient } from "@redis/client";
import { Keyv } from "keyv";
import { openStorage, type WorkspaceStorage } from "../lib/index.js";
import { startCluster, type TestCluster } from "../spec/support/cluster.js";
import { tempDir } from "../spec/support/env.js";
import { freePort, PrivateRedis } from "../spec/support/servers.js";
import { reshard } from "./cluster-reshard.js";
import {
  type BenchRow,
  interleaved,
  median,
  progress,
  type RoundOptions,
  ratios,
  row,
  type SuiteOptions,
  samples,
  type Task,
  toMicros,
} from "./rows.js";
import { drive, type Op, type RedisNode } from "./server-cpu.js";
import { benchRoot } from "./support.js";

const GROUP = "cluster";
const VALUE = { n: 1, text: "x".repeat(100), tags: ["a", "b"] };
const KEYS = 1000;
const ENTRIES = 100;
const OTHER_WORKSPACES = 1000;
const WRITE_WORKSPACES = 1000;
const PAYLOAD = { text: "z".repeat(80) };
// No AOF on any node (cluster or standalone): fsync cost is not what is compared here.
const NO_AOF = ["--appendonly", "no"];

type Node = RedisNode;

async function connectNode(url: string): Promise<Node> {
  const client: Node = createClient({ url });
  client.on("error", () => {});
  await client.connect();
  return client;
}

interface Variant {
  name: string;
  nodes: readonly Node[];
  op: Op;
}

/** Each variant `rounds` times, in alternating order; per-variant ops/s and CPU samples. */
async function throughput(variants: readonly Variant[], count: number, flight: number, rounds: number) {
  const ops = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const cpu = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
      const result = await drive(v.nodes, v.op, count, flight);
      ops.get(v.name)?.push(result.opsPerSecond);
      cpu.get(v.name)?.push(result.cpuMicros);
    }
  }
  const get = (m: Map<string, number[]>, name: string) => m.get(name) as number[];
  return { ops: (name: string) => get(ops, name), cpu: (name: string) => get(cpu, name) };
}

function roundOptions(opts: SuiteOptions): RoundOptions {
  // More and longer rounds than the standalone suites: four nodes and the client share two cores.
  return opts.tiny ? { rounds: 2, time: 10, iterations: 4 } : { rounds: 8, time: 200, iterations: 100 };
}

const key = (i: number) => `k${i % KEYS}`;

async function overhead(cluster: TestCluster, nodes: Node[], storage: WorkspaceStorage, opts: SuiteOptions) {
  const adapter = new KeyvRedis(createCluster({ rootNodes: [{ url: cluster.url }] }) as never);
  const raw = new Keyv({ store: adapter, namespace: `${storage.keyspace.root}:raw` });
  const collection = storage.collection("x");
  // A workspace someone watches (drained as a real watcher would): its writes also SPUBLISH.
  const watchedWorkspace = storage.withWorkspace("watched");
  const watchedCollection = watchedWorkspace.collection("x");
  const stopWatching = new AbortController();
  const draining = (async () => {
    for await (const _ of watchedWorkspace.watch({ signal: stopWatching.signal })) {
      // drained
    }
  })();
  const out: BenchRow[] = [];
  try {
    for (let i = 0; i < KEYS; i++) {
      await Promise.all([raw.set(key(i), VALUE), collection.set(key(i), VALUE), watchedCollection.set(key(i), VALUE)]);
    }
    progress("cluster: per-op latency");
    let i = 0;
    for (const op of ["get", "set"] as const) {
      const call = (keyv: Keyv) => (op === "get" ? () => keyv.get(key(i++)) : () => keyv.set(key(i++), VALUE));
      const tasks: Task[] = [
        { name: `scoped ${op}`, fn: call(collection) },
        { name: `raw ${op}`, fn: call(raw) },
      ];
      const results = await interleaved(tasks, roundOptions(opts));
      const scoped = samples(results, `scoped ${op}`);
      const plain = samples(results, `raw ${op}`);
      out.push(row(GROUP, `collection ${op}`, "µs/op", toMicros(scoped)));
      out.push(row(GROUP, `raw Keyv ${op}`, "µs/op", toMicros(plain)));
      out.push(row(GROUP, `${op} scoped/raw latency`, "×", ratios(scoped, plain)));
    }
    progress("cluster: throughput @64");
    const count = opts.tiny ? 500 : 15_000;
    const t = await throughput(
      [
        { name: "raw set", nodes, op: (n) => raw.set(key(n), VALUE) },
        { name: "collection set", nodes, op: (n) => collection.set(key(n), VALUE) },
        { name: "watched collection set", nodes, op: (n) => watchedCollection.set(key(n), VALUE) },
        { name: "raw get", nodes, op: (n) => raw.get(key(n)) },
        { name: "collection get", nodes, op: (n) => collection.get(key(n)) },
      ],
      count,
      64,
      opts.tiny ? 1 : 3,
    );
    for (const op of ["set", "get"] as const) {
      const [a, b] = [`collection ${op}`, `raw ${op}`];
      out.push(row(GROUP, `${a} @64 in flight`, "ops/s", t.ops(a)));
      out.push(row(GROUP, `${b} @64 in flight`, "ops/s", t.ops(b)));
      out.push(row(GROUP, `${a} @64 server CPU (3 masters)`, "µs/op", t.cpu(a)));
      out.push(row(GROUP, `${b} @64 server CPU (3 masters)`, "µs/op", t.cpu(b)));
      out.push(row(GROUP, `${op} scoped/raw ops/s @64`, "×", ratios(t.ops(a), t.ops(b))));
      out.push(row(GROUP, `${op} scoped/raw server CPU @64`, "×", ratios(t.cpu(a), t.cpu(b))));
    }
    const [w, c] = ["watched collection set", "collection set"];
    const note = "a watcher on the workspace: + SPUBLISH on its shard";
    out.push(row(GROUP, `${w} @64 in flight`, "ops/s", t.ops(w)));
    out.push(row(GROUP, `${w} @64 server CPU (3 masters)`, "µs/op", t.cpu(w)));
    out.push(row(GROUP, "set watched/unwatched ops/s @64", "×", ratios(t.ops(w), t.ops(c)), note));
    out.push(row(GROUP, "set watched/unwatched server CPU @64", "×", ratios(t.cpu(w), t.cpu(c)), note));
  } finally {
    stopWatching.abort();
    await draining;
    await adapter.disconnect().catch(() => {});
  }
  return out;
}

/**
 * Why the change feed uses sharded pub/sub on a cluster: one 200-byte change message to one
 * subscriber on the channel's master, sent as classic PUBLISH (which the cluster bus copies to
 * every node) and as SPUBLISH (kept on the slot's shard), server CPU summed over the 3 masters.
 */
async function publishCost(cluster: TestCluster, nodes: Node[], root: string, opts: SuiteOptions) {
  const channel = `${root}:ws:{feed}#changes`;
  const message = JSON.stringify({ p: `${root}:ws:{feed}:artifacts`, o: "set", n: ["x".repeat(120)], s: "bench" });
  const pub = createCluster({ rootNodes: [{ url: cluster.url }] });
  pub.on("error", () => {});
  await pub.connect();
  const owner = pub.getSlotMaster(Number(await pub.sendCommand(channel, true, ["CLUSTER", "KEYSLOT", channel])));
  const sub = createClient({ url: `redis://${owner.host}:${owner.port}` });
  sub.on("error", () => {});
  await sub.connect();
  let heard = 0;
  await sub.subscribe(channel, () => void heard++);
  await sub.sSubscribe(channel, () => void heard++);
  try {
    progress("cluster: PUBLISH vs SPUBLISH");
    const count = opts.tiny ? 500 : 20_000;
    const t = await throughput(
      [
        { name: "PUBLISH", nodes, op: () => pub.sendCommand(channel, false, ["PUBLISH", channel, message]) },
        { name: "SPUBLISH", nodes, op: () => pub.sendCommand(channel, false, ["SPUBLISH", channel, message]) },
      ],
      count,
      64,
      opts.tiny ? 1 : 3,
    );
    if (heard === 0) throw new Error("the subscriber heard no message");
    const note = "one subscriber on the channel's master; PUBLISH is copied to every node by the cluster bus";
    return [
      row(GROUP, "change message: PUBLISH server CPU (3 masters)", "µs/op", t.cpu("PUBLISH"), note),
      row(GROUP, "change message: SPUBLISH server CPU (3 masters)", "µs/op", t.cpu("SPUBLISH"), note),
      row(GROUP, "change message: SPUBLISH / PUBLISH server CPU", "×", ratios(t.cpu("SPUBLISH"), t.cpu("PUBLISH"))),
    ];
  } finally {
    sub.destroy();
    pub.destroy();
  }
}

function listSizes(opts: SuiteOptions): number[] {
  if (opts.tiny) return [1000, 3000];
  return opts.full ? [10_000, 100_000, 1_000_000] : [10_000, 100_000];
}

/** Raw keys of other workspaces, [from, to): one MSET per workspace (one slot each), many in flight. */
type Send = (firstKey: string, args: string[]) => Promise<unknown>;

async function loadOthers(send: Send, root: string, from: number, to: number) {
  const value = JSON.stringify({ value: PAYLOAD });
  const perWorkspace = new Map<number, string[]>();
  for (let i = from; i < to; i++) {
    const ws = i % OTHER_WORKSPACES;
    let args = perWorkspace.get(ws);
    if (!args) perWorkspace.set(ws, (args = []));
    args.push(`${root}:ws:{o${ws}}:artifacts:n${i}`, value);
  }
  const pending = [...perWorkspace.values()];
  const worker = async () => {
    for (let args = pending.pop(); args; args = pending.pop()) {
      for (let j = 0; j < args.length; j += 2000) {
        const chunk = args.slice(j, j + 2000);
        await send(chunk[0] as string, ["MSET", ...chunk]);
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

/** SCAN MATCH on every master (a workspace's keys are all on one, but a lister cannot know which), then MGET. */
async function scanList(nodes: readonly Node[], prefix: string): Promise<number> {
  let found = 0;
  for (const node of nodes) {
    const keys: string[] = [];
    for await (const batch of node.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) keys.push(...batch);
    for (let i = 0; i < keys.length; i += 500) {
      for (const value of await node.mGet(keys.slice(i, i + 500))) if (value !== null) found++;
    }
  }
  if (found !== ENTRIES) throw new Error(`SCAN listing found ${found} entries, expected ${ENTRIES}`);
  return found;
}

async function listFlat(cluster: TestCluster, nodes: Node[], storage: WorkspaceStorage, opts: SuiteOptions) {
  const root = storage.keyspace.root;
  const target = storage.withWorkspace("target");
  for (let i = 0; i < ENTRIES; i++) await target.artifacts.save(`a${i}`, { i, ...PAYLOAD });
  const prefix = target.keyspace.prefix("artifacts");
  const loader = createCluster({ rootNodes: [{ url: cluster.url }] });
  loader.on("error", () => {});
  await loader.connect();
  const out: BenchRow[] = [];
  const bySize = new Map<number, { index: number[]; scan: number[] }>();
  const r: RoundOptions = opts.tiny ? { rounds: 2, time: 5, iterations: 2 } : { rounds: 4, time: 250, iterations: 5 };
  try {
    let loaded = 0;
    for (const size of listSizes(opts)) {
      progress(`cluster: loading other workspaces' keys up to ${size}`);
      await loadOthers((first, args) => loader.sendCommand(first, false, args), root, loaded, size);
      loaded = size;
      const keys = await Promise.all(nodes.map(async (node) => Number(await node.dbSize())));
      const tasks: Task[] = [
        {
          name: "index",
          fn: async () => {
            const list = await target.artifacts.list();
            if (list.length !== ENTRIES) throw new Error(`list() found ${list.length} entries, expected ${ENTRIES}`);
          },
        },
        { name: "scan", fn: () => scanList(nodes, prefix) },
      ];
      const results = await interleaved(tasks, r);
      const index = samples(results, "index");
      const scan = samples(results, "scan");
      bySize.set(size, { index, scan });
      const note = `masters held ${keys.join("/")} keys`;
      out.push(row(GROUP, `list 100: library list() (index), ${size} other keys`, "ms", index, note));
      out.push(row(GROUP, `list 100: SCAN MATCH on 3 masters+MGET, ${size} other keys`, "ms", scan, note));
      out.push(row(GROUP, `list 100: SCAN / index, ${size} other keys`, "×", ratios(scan, index)));
    }
  } finally {
    loader.destroy();
  }
  const sizes = [...bySize.keys()];
  const lo = bySize.get(sizes[0] as number);
  const hi = bySize.get(sizes.at(-1) as number);
  if (lo && hi && sizes.length > 1) {
    const span = `${sizes[0]}→${sizes.at(-1)} other keys`;
    const note = `${(sizes.at(-1) as number) / (sizes[0] as number)}× more other keys; 1.0 = flat`;
    out.push(row(GROUP, `list 100 growth ${span}: library list() (index)`, "×", ratios(hi.index, lo.index), note));
    out.push(row(GROUP, `list 100 growth ${span}: SCAN on 3 masters`, "×", ratios(hi.scan, lo.scan), note));
  }
  return out;
}

/** The same many-workspace write load against the cluster storage and a one-master storage. */
async function aggregate(clusterNodes: Node[], clustered: WorkspaceStorage, opts: SuiteOptions) {
  const dir = tempDir();
  const single = new PrivateRedis(await freePort(), dir.path, NO_AOF);
  await single.start();
  const node = await connectNode(single.url);
  const root = clustered.keyspace.root;
  const standalone = await openStorage({ url: single.url, root, workspaceId: "w0", hashTags: true });
  try {
    const views = (s: WorkspaceStorage) =>
      Array.from({ length: WRITE_WORKSPACES }, (_, w) => s.withWorkspace(`t${w}`).collection("writes"));
    const onCluster = views(clustered);
    const onOne = views(standalone);
    // Spreads consecutive ops over workspaces, and each workspace over 50 names.
    const write = (cols: typeof onCluster) => (i: number) =>
      (cols[i % WRITE_WORKSPACES] as (typeof onCluster)[number]).set(`k${((i / WRITE_WORKSPACES) % 50) | 0}`, VALUE);
    // A workspace's first write also registers it (lifecycle registry): measured apart, once.
    const first = (cols: typeof onCluster) => (i: number) => (cols[i] as (typeof onCluster)[number]).set("k0", VALUE);
    const firstOnCluster = await drive(clusterNodes, first(onCluster), WRITE_WORKSPACES, 128);
    const firstOnOne = await drive([node], first(onOne), WRITE_WORKSPACES, 128);
    progress("cluster: aggregate writes, 3 masters vs 1");
    const count = opts.tiny ? 1_000 : 30_000;
    const t = await throughput(
      [
        { name: "3 masters", nodes: clusterNodes, op: write(onCluster) },
        { name: "1 master", nodes: [node], op: write(onOne) },
      ],
      count,
      128,
      opts.tiny ? 1 : 3,
    );
    const spread = await Promise.all(clusterNodes.map(async (n) => Number(await n.dbSize())));
    progress(
      `cluster: writes 3 masters ${median(t.ops("3 masters")) | 0}/s, 1 master ${median(t.ops("1 master")) | 0}/s`,
    );
    const registers = `${WRITE_WORKSPACES} workspaces, 128 in flight, one run: also registers the workspace`;
    const label = `${WRITE_WORKSPACES} workspaces, 128 in flight`;
    return [
      row(GROUP, `writes ${label}: 3 masters`, "ops/s", t.ops("3 masters"), `keys per master ${spread.join("/")}`),
      row(GROUP, `writes ${label}: 1 master`, "ops/s", t.ops("1 master")),
      row(
        GROUP,
        "writes 3 masters / 1 master ops/s",
        "×",
        ratios(t.ops("3 masters"), t.ops("1 master")),
        "one 2-core host",
      ),
      row(GROUP, "writes server CPU, 3 masters (sum)", "µs/op", t.cpu("3 masters")),
      row(GROUP, "writes server CPU, 1 master", "µs/op", t.cpu("1 master")),
      row(GROUP, `first write of each workspace: 3 masters`, "ops/s", [firstOnCluster.opsPerSecond], registers),
      row(GROUP, `first write of each workspace: 1 master`, "ops/s", [firstOnOne.opsPerSecond], registers),
    ];
  } finally {
    await standalone.close();
    node.destroy();
    await single.kill();
    dir.remove();
  }
}

export async function run(opts: SuiteOptions): Promise<BenchRow[]> {
  progress("cluster: starting 3 masters");
  // Redis's default node timeout, not the tests' 3 s: migrating a collection kept as one hash
  // blocks both nodes for seconds on this 2-core machine, and a shorter timeout made the cluster
  // declare itself down (CLUSTERDOWN) in the middle of a run. Nothing here fails a node over.
  const cluster = await startCluster([...NO_AOF, "--cluster-node-timeout", "15000"]);
  const nodes: Node[] = [];
  let storage: WorkspaceStorage | undefined;
  try {
    for (const master of cluster.masters) nodes.push(await connectNode(master.url));
    storage = await openStorage({ url: cluster.url, root: benchRoot("cluster"), workspaceId: "w1", cluster: true });
    return [
      ...(await overhead(cluster, nodes, storage, opts)),
      ...(await publishCost(cluster, nodes, storage.keyspace.root, opts)),
      ...(await listFlat(cluster, nodes, storage, opts)),
      ...(await aggregate(nodes, storage, opts)),
      ...(await reshard(cluster, opts)),
    ];
  } finally {
    await storage?.close();
    for (const node of nodes) node.destroy();
    await cluster.stop();
  }
}
