import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { createClient } from "@redis/client";
import { tempDir } from "./env.js";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether something at 127.0.0.1:port answers PING (a Redis loading its AOF answers -LOADING: not yet). */
export function pings(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (data) => done(data.toString().startsWith("+PONG")));
  });
}

/**
 * A redis-server of the test's own on a loopback port, as a child process (never daemonised,
 * so the test can kill exactly this pid). AOF with fsync on every write: what Redis
 * acknowledged survives a kill -9, which is what a restart test needs to tell "rejected" from "lost".
 */
export class PrivateRedis {
  readonly port: number;
  readonly dir: string;
  /** Extra redis-server arguments; later ones override the defaults above (e.g. "--appendonly", "no"). */
  readonly args: readonly string[];
  #child: ChildProcess | undefined;

  constructor(port: number, dir: string, args: readonly string[] = []) {
    this.port = port;
    this.dir = dir;
    this.args = args;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server unless this object's process is already running. */
  async start(): Promise<void> {
    if (this.#child && this.#child.exitCode === null) return;
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        this.dir,
        ...this.args,
      ],
      { stdio: "ignore" },
    );
    this.#child = child;
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited with ${child.exitCode}`);
      if (await pings(this.port)) return;
      await sleep(50);
    }
    throw new Error(`redis-server on port ${this.port} did not answer`);
  }

  /** SIGKILL: no shutdown, no final fsync — only what was already durable survives. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }
}

/**
 * A TCP server that speaks just enough RESP to get a client connected (+OK to every
 * command) and can then fall silent: it keeps reading and never answers again.
 */
export async function fakeRedis(options: { silent: boolean }) {
  let silent = options.silent;
  let accepted = 0;
  let ignored = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let pending = "";
    socket.on("data", (chunk) => {
      pending += chunk.toString("latin1");
      for (;;) {
        const parsed = parseCommand(pending);
        if (!parsed) break;
        pending = pending.slice(parsed);
        if (silent) ignored++;
        else socket.write("+OK\r\n");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    /** Connections the client still holds open. */
    get connections() {
      return sockets.size;
    },
    /** Connections accepted so far. */
    get accepted() {
      return accepted;
    },
    /** Commands received and left unanswered. */
    get ignored() {
      return ignored;
    },
    silence() {
      silent = true;
    },
    speak() {
      silent = false;
    },
    /** Server-side hang-up of every connection (the client then reconnects). */
    hangUp() {
      for (const socket of sockets) socket.destroy();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Length of the first complete RESP array of bulk strings in `text`, or 0 if incomplete. */
function parseCommand(text: string): number {
  let at = 0;
  const line = () => {
    const end = text.indexOf("\r\n", at);
    if (end < 0) return undefined;
    const value = text.slice(at, end);
    at = end + 2;
    return value;
  };
  const head = line();
  if (head === undefined || !head.startsWith("*")) return head === undefined ? 0 : at;
  for (let n = Number(head.slice(1)); n > 0; n--) {
    const size = line();
    if (size === undefined) return 0;
    at += Number(size.slice(1)) + 2;
    if (at > text.length) return 0;
  }
  return at;
}

export type Cleanups = Array<() => Promise<void> | void>;

/**
 * A private redis-server for one test (no AOF unless `args` says otherwise) and an admin client
 * on it; stopping both, and removing its directory, is pushed onto `cleanups`.
 */
export async function startPrivateRedis(cleanups: Cleanups, args: readonly string[] = []) {
  const dir = tempDir();
  const server = new PrivateRedis(await freePort(), dir.path, ["--appendonly", "no", ...args]);
  await server.start();
  cleanups.push(() => dir.remove());
  cleanups.push(() => server.kill());
  const admin = createClient({ url: server.url });
  admin.on("error", () => {});
  await admin.connect();
  cleanups.push(() => admin.destroy());
  return { server, admin };
}

/** Calls per command (INFO itself left out) that `work` made on the server `admin` is connected to. */
export async function commandsSent(admin: { info(section: string): Promise<unknown> }, work: () => Promise<unknown>) {
  const calls = async () => {
    const info = String(await admin.info("commandstats"));
    return new Map([...info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)].map((m) => [m[1] as string, Number(m[2])]));
  };
  const before = await calls();
  await work();
  const delta: Record<string, number> = {};
  for (const [name, n] of await calls()) {
    const d = n - (before.get(name) ?? 0);
    if (d > 0 && name !== "info") delta[name] = d;
  }
  return delta;
}
