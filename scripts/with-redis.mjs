#!/usr/bin/env node
// Runs a command with REDIS_URL pointing at a Redis that answers.
// REDIS_URL (default redis://127.0.0.1:6379) is used when it answers PING; otherwise, if
// redis-server is installed, a private one is started on a free loopback port for the run
// and stopped afterwards; with no Redis at all we fail loudly instead of skipping tests.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const wanted = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

function ping(url, timeoutMs = 1500) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname || "127.0.0.1", port: Number(port || 6379) });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on("error", () => done(false));
    // An ACL-protected server answers NOAUTH: it is there, which is all we check.
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (data) => done(/^(\+PONG|-NOAUTH|-ERR)/.test(data.toString())));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

let privateServer;
let url = wanted;
if (!(await ping(wanted))) {
  const found = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (found.error) {
    console.error(
      `No Redis answers at ${wanted} and redis-server is not installed.\n` +
        "Install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL to a Redis you may use.",
    );
    process.exit(1);
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "kvws-redis-"));
  privateServer = { port, dir };
  const started = spawnSync(
    "redis-server",
    [
      "--daemonize",
      "yes",
      "--bind",
      "127.0.0.1",
      "--port",
      String(port),
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      "--pidfile",
      join(dir, "redis.pid"),
    ],
    { encoding: "utf8" },
  );
  url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50 && !(await ping(url)); i++) await new Promise((r) => setTimeout(r, 100));
  if (started.status !== 0 || !(await ping(url))) {
    console.error(`Could not start a private redis-server on port ${port}: ${started.stderr}`);
    process.exit(1);
  }
  console.error(`No Redis at ${wanted}; started a private one at ${url} for this run.`);
}

function stopPrivate() {
  if (!privateServer) return;
  spawnSync("redis-cli", ["-p", String(privateServer.port), "shutdown", "nosave"]);
  rmSync(privateServer.dir, { recursive: true, force: true });
  privateServer = undefined;
}

const [command, ...args] = process.argv.slice(2);
const child = spawn(command, args, {
  stdio: "inherit",
  env: { ...process.env, REDIS_URL: url },
  shell: process.platform === "win32",
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => {
  stopPrivate();
  process.exit(code ?? (signal ? 1 : 0));
});
