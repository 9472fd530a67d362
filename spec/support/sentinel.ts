import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@redis/client";
import { tempDir } from "./env.js";
import { freePort, pings } from "./servers.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const MASTER_NAME = "kvwsmaster";

/** One redis-server (data node or Sentinel) of the test's own, stopped by its pid. */
class Node {
  child: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly args: readonly string[],
  ) {}
  async start(): Promise<void> {
    const child = spawn("redis-server", [...this.args], { stdio: "ignore" });
    this.child = child;
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited with ${child.exitCode}`);
      if (await pings(this.port)) return;
      await sleep(20);
    }
    throw new Error(`redis-server on port ${this.port} did not answer`);
  }
  /** SIGKILL by pid: no shutdown, the way a machine dies. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    process.kill(child.pid, "SIGKILL");
    await exited;
  }
}

async function query(port: number, args: string[]): Promise<unknown> {
  const client = createClient({ socket: { host: "127.0.0.1", port, connectTimeout: 1000, reconnectStrategy: false } });
  client.on("error", () => {});
  await client.connect();
  try {
    return await client.sendCommand(args);
  } finally {
    client.destroy();
  }
}

async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  state: () => string = () => "",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} ${state()}`.trim());
    await sleep(50);
  }
}

const field = (flat: unknown, name: string) => {
  const list = flat as string[];
  return list[list.indexOf(name) + 1];
};

/**
 * A master, two replicas and three Sentinels (quorum 2) on free loopback ports, in a temp dir.
 * Failover is tuned fast: down after 500 ms, failover-timeout 2 s.
 */
export class SentinelSet {
  readonly tmp = tempDir();
  readonly dir = this.tmp.path;
  data: Node[] = [];
  sentinels: Node[] = [];

  get sentinelPorts(): number[] {
    return this.sentinels.map((s) => s.port);
  }

  /** redis+sentinel:// URL, with data credentials if given. */
  url(auth = "", query = ""): string {
    const hosts = this.sentinelPorts.map((p) => `127.0.0.1:${p}`).join(",");
    return `redis+sentinel://${auth ? `${auth}@` : ""}${hosts}/${MASTER_NAME}${query}`;
  }

  async start(extra: readonly string[] = []): Promise<void> {
    const ports = await Promise.all([0, 1, 2, 3, 4, 5].map(() => freePort()));
    const [masterPort, ...rest] = ports as [number, ...number[]];
    const common = (port: number) => [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      this.dir,
      "--pidfile",
      join(this.dir, `redis-${port}.pid`),
      "--repl-diskless-sync",
      "yes",
      "--repl-diskless-sync-delay",
      "0",
      ...extra,
    ];
    this.data = [
      new Node(masterPort, common(masterPort)),
      ...rest
        .slice(0, 2)
        .map((port) => new Node(port, [...common(port), "--replicaof", "127.0.0.1", String(masterPort)])),
    ];
    await Promise.all(this.data.map((n) => n.start()));
    this.sentinels = rest.slice(2).map((port) => {
      const conf = join(this.dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `dir ${this.dir}`,
          `pidfile ${join(this.dir, `sentinel-${port}.pid`)}`,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} 500`,
          `sentinel failover-timeout ${MASTER_NAME} 2000`,
          `sentinel parallel-syncs ${MASTER_NAME} 2`,
          "",
        ].join("\n"),
      );
      return new Node(port, [conf, "--sentinel"]);
    });
    await Promise.all(this.sentinels.map((n) => n.start()));
    await until(
      "replicas in sync",
      async () => {
        const info = String(await query(masterPort, ["INFO", "replication"]));
        return (info.match(/state=online/g) ?? []).length === 2;
      },
      5000,
    );
    // Usually about 2 s (Sentinels greet each other every 2 s); more on a loaded machine.
    let seen = "";
    await until(
      "Sentinels to know each other and the replicas",
      async () => {
        const states = await Promise.all(
          this.sentinelPorts.map(async (port) => {
            const master = await query(port, ["SENTINEL", "MASTER", MASTER_NAME]);
            return [field(master, "num-other-sentinels"), field(master, "num-slaves")].join("/");
          }),
        );
        seen = states.join(" ");
        return states.every((state) => state === "2/2");
      },
      15_000,
      () => `other Sentinels/replicas each knows: ${seen}`,
    );
  }

  /** The data node the Sentinels name master now. */
  async masterPort(): Promise<number> {
    const reply = (await query(this.sentinelPorts[0] as number, [
      "SENTINEL",
      "GET-MASTER-ADDR-BY-NAME",
      MASTER_NAME,
    ])) as string[];
    return Number(reply[1]);
  }

  node(port: number): Node {
    const node = this.data.find((n) => n.port === port);
    if (!node) throw new Error(`no data node on ${port}`);
    return node;
  }

  /** kill -9 of the current master; resolves with its port. */
  async killMaster(): Promise<number> {
    const port = await this.masterPort();
    await this.node(port).kill();
    return port;
  }

  /** Waits until the Sentinels name a master other than `old` and it answers as one. */
  async promoted(old: number, timeoutMs = 10_000): Promise<number> {
    let port = old;
    await until(
      "a promoted master",
      async () => {
        port = await this.masterPort();
        if (port === old) return false;
        const role = (await query(port, ["ROLE"])) as unknown[];
        return role[0] === "master";
      },
      timeoutMs,
    );
    return port;
  }

  /** Runs a command on one data node, bypassing the Sentinels. */
  send(port: number, args: string[]): Promise<unknown> {
    return query(port, args);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.sentinels, ...this.data].map((n) => n.kill()));
    this.tmp.remove();
  }
}
