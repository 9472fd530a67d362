import { execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { main } from "../../lib/cli/main.js";
import { openStorage } from "../../lib/index.js";
import { randomRoot, tempDir } from "../support/env.js";
import { removeSqlite, sqliteFile } from "../support/sql.js";

const bin = fileURLToPath(new URL("../../dist/cli/kvws.js", import.meta.url));

/** kvws in this process (the memory backend's changes are seen within one process). */
function run(args: string[], interrupt: AbortController) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (chunk) => {
    out += chunk;
  });
  stderr.on("data", (chunk) => {
    err += chunk;
  });
  const done = main(args, {
    stdin: new PassThrough(),
    stdout,
    stderr,
    env: {},
    interrupt: () => interrupt.signal,
  });
  return { done, out: () => out, err: () => err };
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("kvws watch", () => {
  it("prints the workspace's changes as NDJSON until interrupted, only the collections asked for", async () => {
    const root = randomRoot("cliwatch");
    const url = `memory:${root}`;
    const interrupt = new AbortController();
    const cli = run(["--url", url, "--root", root, "watch", "acme", "--collections", "artifacts,notes"], interrupt);
    const s = await openStorage({ url, root, workspaceId: "acme" });
    const other = s.withWorkspace("other");
    // The command subscribes once it has opened the storage: write until its first line shows.
    await until(() => {
      void s.collection("notes").set("ping", 1);
      return cli.out().length > 0;
    });
    await other.artifacts.save("secret", 1);
    await s.vectors.upsert("v", [1, 0]);
    const saved = await s.artifacts.save("report", { ok: true });
    await until(() => cli.out().includes("report"));
    interrupt.abort();
    expect(await cli.done).toBe(0);
    const lines = cli
      .out()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines.filter((l) => l.name !== "ping")).toEqual([
      { collection: "artifacts", name: "report", op: "set", version: saved.version },
    ]);
    expect(lines.every((l) => l.collection !== "vectors" && l.name !== "secret")).toBe(true);
    await s.close();
  });

  it("on sqlite: prints what another process changes in the workspace, after the settle reset", async () => {
    const root = randomRoot("cliwatchsql");
    const url = `sqlite:${sqliteFile(root)}`;
    const interrupt = new AbortController();
    try {
      const cli = run(["--url", url, "--root", root, "watch", "acme"], interrupt);
      await until(() => cli.out().includes('"reset"'), 20_000);
      const writer = fileURLToPath(new URL("../fixtures/sql-watch-writer.ts", import.meta.url));
      const args = (ws: string) => ["--import", "tsx", writer, url, root, ws, "p", "2"];
      const exec = promisify(execFile);
      await Promise.all([exec(process.execPath, args("acme")), exec(process.execPath, args("other"))]);
      await until(() => cli.out().includes('"clear"'), 20_000);
      interrupt.abort();
      expect(await cli.done).toBe(0);
      const lines = cli
        .out()
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line))
        .filter((l) => l.op !== "reset");
      expect(lines.map((l) => [l.collection, l.name, l.op])).toEqual([
        ["artifacts", "p-0", "set"],
        ["artifacts", "p-0", "set"],
        ["artifacts", "p-1", "set"],
        ["notes", "k", "set"],
        ["artifacts", "p-0", "delete"],
        ["notes", null, "clear"],
      ]);
    } finally {
      interrupt.abort();
      removeSqlite(sqliteFile(root));
    }
  }, 60_000);

  it("on a file store, runs in a process of its own until SIGINT and prints another process's saves", async () => {
    const dir = tempDir();
    try {
      const url = `file:${join(dir.path, "store.json")}`;
      const child = spawn(process.execPath, [bin, "--url", url, "--root", "cf", "watch", "acme"], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
      });
      let err = "";
      child.stderr.on("data", (chunk: Buffer) => {
        err += chunk.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      const s = await openStorage({ url, root: "cf", workspaceId: "acme" });
      try {
        // Nothing but the watch keeps the command up; it watches once it has opened the store.
        await until(() => {
          void s.collection("notes").set("ping", 1);
          return out.length > 0;
        }, 20_000).catch((error: Error) => {
          throw new Error(`${error.message}; kvws said ${JSON.stringify(err)}`);
        });
        const saved = await s.artifacts.save("report", { ok: true });
        await until(() => out.includes("report"), 20_000);
        child.kill("SIGINT");
        expect(await exited).toBe(0);
        const lines = out
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line));
        expect(lines.filter((l) => l.name !== "ping")).toEqual([
          { collection: "artifacts", name: "report", op: "set", version: saved.version },
        ]);
      } finally {
        child.kill("SIGKILL");
        await s.close();
      }
    } finally {
      dir.remove();
    }
  }, 60_000);

  it("needs a workspace id, and refuses a bad collection list with exit 1", async () => {
    const interrupt = new AbortController();
    const missing = run(["--url", "memory:", "--root", "r", "watch"], interrupt);
    expect(await missing.done).toBe(2);
    expect(missing.err()).toContain("watch needs a workspace id");
    const bad = run(["--url", "memory:", "--root", "r", "watch", "w", "--collections", "Bad Name"], interrupt);
    expect(await bad.done).toBe(1);
    expect(bad.err()).toContain("ERR_INVALID_COLLECTION");
  });
});
