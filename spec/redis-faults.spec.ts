import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { KeyvWorkspacesError, keyspace, openStorage, provisionWorkspaceUser } from "../lib/index.js";
import { tempDir } from "./support/env.js";
import { fakeRedis, freePort, PrivateRedis } from "./support/servers.js";

const fixture = fileURLToPath(new URL("./fixtures/redis-open-fail.ts", import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the fixture; resolves with its JSON lines and exit code, or rejects if it has not exited after 40 s (tsx startup on a loaded machine is slow). */
function runFixture(args: string[], onLine?: (line: Record<string, unknown>, child: ChildProcess) => void) {
  const child = spawn(process.execPath, ["--import", "tsx", fixture, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = "";
  let buffered = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  child.stdout?.on("data", (d) => {
    buffered += d;
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      const line = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      onLine?.(line, child);
    }
  });
  return new Promise<{ lines: typeof lines; code: number | null; stderr: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`fixture did not exit on its own; output: ${JSON.stringify(lines)} ${stderr}`));
    }, 40_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ lines, code, stderr });
    });
  });
}

describe("opening Redis that is not there", () => {
  it("rejects with ERR_CONNECTION for a closed loopback port, password redacted", async () => {
    const port = await freePort();
    const started = Date.now();
    const error = await openStorage(
      { url: `redis://someone:hunter2-secret@127.0.0.1:${port}`, root: "kvwst_f", workspaceId: "w" },
      { connectTimeoutMs: 1000 },
    ).catch((e: unknown) => e);
    console.log(`closed port: ${(error as { code?: string }).code} after ${Date.now() - started} ms`);
    expect(error).toBeInstanceOf(KeyvWorkspacesError);
    expect(error).toMatchObject({ code: "ERR_CONNECTION" });
    expect((error as Error).message).toContain("redis://someone:***@127.0.0.1");
    expect((error as Error).message).not.toContain("hunter2");
  });

  it("rejects with ERR_CONNECTION when the server accepts and never answers, and drops its socket", async () => {
    const silent = await fakeRedis({ silent: true });
    try {
      const started = Date.now();
      const error = await openStorage(
        { url: silent.url, root: "kvwst_f", workspaceId: "w" },
        { connectTimeoutMs: 500 },
      ).catch((e: unknown) => e);
      console.log(`silent server: ${(error as { code?: string }).code} after ${Date.now() - started} ms`);
      expect(error).toMatchObject({ code: "ERR_CONNECTION" });
      expect((error as Error).message).toMatch(/within 500 ms/);
      for (let i = 0; i < 100 && silent.connections > 0; i++) await sleep(20);
      expect(silent.connections).toBe(0);
    } finally {
      await silent.close();
    }
  });

  it("fails a command with ERR_CONNECTION when the server falls silent, drops that connection, and reconnects", async () => {
    const server = await fakeRedis({ silent: false });
    try {
      const storage = await openStorage(
        { url: server.url, root: "kvwst_f", workspaceId: "w" },
        { connectTimeoutMs: 300 },
      );
      server.silence();
      const error = await storage.artifacts.load("x").catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "ERR_CONNECTION" });
      expect((error as Error).message).toMatch(/did not answer (EXISTS|GET) within 600 ms/);
      // The overdue connection was dropped; once the server answers again, the next command reconnects.
      for (let i = 0; i < 100 && server.connections > 0; i++) await sleep(20);
      expect(server.connections).toBe(0);
      server.speak();
      expect(await storage.artifacts.has("x")).toBe(false); // the fake answers +OK: a round trip, not a value
      expect(server.connections).toBe(1);
      await storage.close();
      for (let i = 0; i < 100 && server.connections > 0; i++) await sleep(20);
      expect(server.connections).toBe(0);
    } finally {
      await server.close();
    }
  });

  it("bounds each reply by commandTimeoutMs when openStorage is given one", async () => {
    const server = await fakeRedis({ silent: false });
    try {
      const storage = await openStorage(
        { url: server.url, root: "kvwst_f", workspaceId: "w" },
        { connectTimeoutMs: 2000, commandTimeoutMs: 250 },
      );
      server.silence();
      const error = await storage.artifacts.load("x").catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "ERR_CONNECTION" });
      expect((error as Error).message).toMatch(/did not answer (EXISTS|GET) within 250 ms/);
      await storage.close();
    } finally {
      await server.close();
    }
  });

  it("recovers when a reconnection's handshake hangs: that connection is torn down, a later one succeeds", async () => {
    const server = await fakeRedis({ silent: false });
    try {
      const storage = await openStorage(
        { url: server.url, root: "kvwst_f", workspaceId: "w" },
        { connectTimeoutMs: 300 },
      );
      const roundTrip = () =>
        storage.artifacts.has("x").then(
          () => "ok",
          (e: { code?: string }) => e.code ?? "untyped",
        );
      expect(await roundTrip()).toBe("ok");
      server.silence();
      server.hangUp(); // node-redis reconnects; the new connection's handshake is never answered
      for (let i = 0; i < 100 && server.ignored === 0; i++) await sleep(20);
      expect(server.accepted).toBe(2);
      expect(server.ignored).toBeGreaterThan(0);
      expect(await roundTrip()).toBe("ERR_CONNECTION"); // offline meanwhile: fails at once, not queued
      for (let i = 0; i < 100 && server.connections > 0; i++) await sleep(20);
      expect(server.connections).toBe(0); // the hung handshake was dropped
      server.speak();
      let result = "ERR_CONNECTION";
      for (let i = 0; i < 100 && result === "ERR_CONNECTION"; i++) {
        await sleep(20);
        result = await roundTrip();
      }
      expect(result).toBe("ok");
      await storage.close();
    } finally {
      await server.close();
    }
  });

  it("lets a process that opened a dead URL, or a silent server, exit on its own", async () => {
    const dead = await runFixture([`redis://127.0.0.1:${await freePort()}`, "1000"]);
    expect(dead.code).toBe(0);
    expect(dead.lines).toEqual([expect.objectContaining({ code: "ERR_CONNECTION" })]);
    expect(dead.stderr).not.toMatch(/unhandled/i);

    const silent = await fakeRedis({ silent: true });
    try {
      const hung = await runFixture([silent.url, "500"]);
      expect(hung.code).toBe(0);
      expect(hung.lines).toEqual([expect.objectContaining({ code: "ERR_CONNECTION" })]);
    } finally {
      await silent.close();
    }
  }, 90_000);
});

describe("a private Redis that is killed and restarted", () => {
  // Created by the first test that runs, so a filtered run leaves no empty directory behind.
  let dir: ReturnType<typeof tempDir> | undefined;
  let server: PrivateRedis | undefined;
  const newServer = async () => {
    dir ??= tempDir();
    return new PrivateRedis(await freePort(), dir.path);
  };
  afterAll(async () => {
    await server?.kill();
    dir?.remove();
  });

  it("gives a process whose Redis dies a typed error and lets it exit", async () => {
    server = await newServer();
    await server.start();
    const running = server;
    const result = await runFixture([running.url, "1000", "lose"], (line, child) => {
      if (line.ready) void running.kill().then(() => child.stdin?.end("go\n"));
    });
    expect(result.code).toBe(0);
    expect(result.lines).toEqual([{ ready: true }, { code: "ERR_CONNECTION" }]);
  }, 60_000);

  it("never silently loses an acknowledged write across two kill -9 restarts", async () => {
    server ??= await newServer();
    const running = server;
    await running.start();
    const root = "kvwst_restart";
    const storage = await openStorage({ url: running.url, root, workspaceId: "w" }, { connectTimeoutMs: 1000 });
    const acked: number[] = [];
    const rejected: number[] = [];
    const untyped: unknown[] = [];
    const restarts: Array<Promise<void>> = [];
    const TOTAL = 200;
    try {
      for (let i = 0; i < TOTAL; i++) {
        if (i === 40 || i === 100) {
          // Chained, so the second restart never overlaps the first.
          const previous = restarts.at(-1) ?? Promise.resolve();
          restarts.push(
            previous.then(async () => {
              await running.kill();
              await sleep(300);
              await running.start();
            }),
          );
        }
        try {
          await storage.artifacts.save(`a${i}`, { i });
          acked.push(i);
        } catch (error) {
          if (error instanceof KeyvWorkspacesError) rejected.push(i);
          else untyped.push(error);
        }
        await sleep(20);
      }
      await Promise.all(restarts);
      // Reconnection is automatic; wait until a read goes through, then check every acknowledged write.
      for (let i = 0; i < 200; i++) {
        if (
          await storage.artifacts.has("a0").then(
            () => true,
            () => false,
          )
        )
          break;
        await sleep(50);
      }
      const lost: number[] = [];
      let rejectedButStored = 0;
      for (const i of acked) {
        const value = await storage.artifacts.load(`a${i}`).catch(() => undefined);
        if ((value as { i?: number } | undefined)?.i !== i) lost.push(i);
      }
      for (const i of rejected) if (await storage.artifacts.has(`a${i}`)) rejectedButStored++;
      const listed = (await storage.artifacts.list()).map((a) => a.name);
      console.log(
        `restart test: ${TOTAL} saves, ${acked.length} acknowledged, ${rejected.length} rejected with a typed error ` +
          `(${rejectedButStored} of them stored anyway), ${untyped.length} untyped, ${lost.length} lost`,
      );
      expect(untyped).toEqual([]);
      expect(lost).toEqual([]);
      expect(rejected.length).toBeGreaterThanOrEqual(2); // each restart was felt
      expect(acked.some((i) => i > 100 && rejected.some((r) => r > 100 && r < i))).toBe(true); // and the storage reconnected after the last one
      for (const i of acked) expect(listed).toContain(`a${i}`);
    } finally {
      await storage.close();
    }
  });

  it("reports a revoked ACL user as ERR_AUTH after a restart, and recovers once it is provisioned again", async () => {
    server ??= await newServer();
    const running = server;
    await running.start();
    const ks = keyspace({ root: "kvwst_restart_acl", workspaceId: "w" });
    const { url } = await provisionWorkspaceUser(running.url, ks, { password: "restart-pw" });
    const storage = await openStorage({ url, root: ks.root, workspaceId: "w" }, { connectTimeoutMs: 1000 });
    const attempt = () =>
      storage.artifacts.save("x", 1).then(
        () => "ok",
        (e: { code?: string }) => e.code ?? "untyped",
      );
    try {
      expect(await attempt()).toBe("ok");
      await running.kill();
      expect(await attempt()).toBe("ERR_CONNECTION");
      // No ACL file: the restarted server does not know the user any more.
      await running.start();
      let code = "ERR_CONNECTION";
      for (let i = 0; i < 200 && code === "ERR_CONNECTION"; i++) {
        await sleep(50);
        code = await attempt();
      }
      expect(code).toBe("ERR_AUTH");
      await provisionWorkspaceUser(running.url, ks, { password: "restart-pw" });
      expect(await attempt()).toBe("ok");
    } finally {
      await storage.close();
    }
  });
});
