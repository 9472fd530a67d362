import { execFile, execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { openStorage, type WorkspaceStorage } from "../../lib/index.js";
import { deleteUnder, keysUnder, REDIS_URL, randomRoot, rawRedis, tempDir } from "../support/env.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(repo, "dist", "cli", "kvws.js");

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function kvws(args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [bin, ...args],
      { env: { ...process.env, KVWS_URL: "", KVWS_ROOT: "", ...options.env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error ? Number((error as { code?: unknown }).code ?? 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    child.stdin?.end(options.input ?? "");
  });
}

beforeAll(() => {
  // CI builds dist/ before the tests; a missing or stale build must fail loudly, never test old code.
  if (!existsSync(bin)) throw new Error("dist/cli/kvws.js is missing: run `npm run build` before this test");
  const built = statSync(bin).mtimeMs;
  for (const entry of readdirSync(join(repo, "lib"), { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith(".ts") && statSync(join(entry.parentPath, entry.name)).mtimeMs > built) {
      throw new Error(`dist/ is older than lib/${entry.name}: run \`npm run build\` before this test`);
    }
  }
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function redisRoot(): Promise<{ root: string; storage: WorkspaceStorage }> {
  const root = randomRoot("cli");
  const storage = await openStorage({ url: REDIS_URL, root, workspaceId: null });
  cleanups.push(async () => {
    await storage.close();
    const client = await rawRedis();
    await deleteUnder(client, root);
    await client.quit();
  });
  return { root, storage };
}

async function seed(s: WorkspaceStorage): Promise<void> {
  await s.artifacts.save("report", { q: 3 }, { description: "Q3", metadata: { owner: "ops" } });
  await s.artifacts.save("logo", new Uint8Array([137, 80, 78, 71]));
  await s.workflows.add({ name: "summarise", source: "print(1)", description: "summarise a quarterly report" });
  await s.vectors.upsert("v1", [1, 0, 0]);
  await s.vectors.upsert("v2", [0, 1, 0]);
  for (let i = 0; i < 50; i++) await s.collection("notes").set(`n${i}`, { i });
}

async function snapshot(s: WorkspaceStorage) {
  return {
    artifacts: await s.artifacts.list(),
    logo: await s.artifacts.load("logo"),
    search: await s.workflows.search("quarterly report"),
    vectors: await s.vectors.search([1, 0.2, 0]),
    notes: await s.collection("notes").get("n7"),
  };
}

describe("kvws (the built binary) on Redis", () => {
  it("ls, stats, export, drop --yes, import: a round trip", async () => {
    const { root, storage } = await redisRoot();
    const acme = storage.withWorkspace("acme");
    await seed(acme);
    await storage.withWorkspace("globex").artifacts.save("x", 1);
    const before = await snapshot(acme);
    const env = { KVWS_URL: REDIS_URL, KVWS_ROOT: root };

    expect(await kvws(["ls"], { env })).toEqual({ code: 0, stdout: "acme\nglobex\n", stderr: "" });
    const stats = await kvws(["stats", "acme", "--json"], { env });
    expect(JSON.parse(stats.stdout)).toEqual(await acme.stats());
    expect((await kvws(["stats", "acme"], { env })).stdout).toMatch(
      /^collection\s+entries\s+bytes\nartifacts\s+2\s+\d+\n/,
    );

    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const file = join(dir.path, "acme.ndjson");
    const exported = await kvws(["--url", REDIS_URL, "--root", root, "export", "acme", "--out", file]);
    expect(exported).toMatchObject({ code: 0, stderr: "exported 56 entries of acme\n" });
    expect(readFileSync(file, "utf8").trim().split("\n")).toHaveLength(56);

    expect(await kvws(["drop", "acme", "--yes"], { env })).toMatchObject({
      code: 0,
      stderr: "dropped acme: 56 entries deleted\n",
    });
    const client = await rawRedis();
    try {
      expect(await keysUnder(client, `${root}:ws:acme:`)).toEqual([]);
      expect((await keysUnder(client, `${root}:ws:globex:`)).length).toBeGreaterThan(0);
    } finally {
      await client.quit();
    }
    expect((await kvws(["ls"], { env })).stdout).toBe("globex\n");

    expect(await kvws(["import", "acme", "--in", file], { env })).toMatchObject({
      code: 0,
      stderr: "imported 56 entries into acme\n",
    });
    expect((await kvws(["ls", "--json"], { env })).stdout).toBe('["acme","globex"]\n');
    const fresh = await openStorage({ url: REDIS_URL, root, workspaceId: "acme" });
    try {
      expect(await snapshot(fresh)).toEqual(before);
    } finally {
      await fresh.close();
    }
  });

  it("refuses drop without --yes (exit 2, data intact), a bad id (exit 1), an unknown command (exit 2)", async () => {
    const { root, storage } = await redisRoot();
    await storage.withWorkspace("acme").artifacts.save("x", 1);
    const env = { KVWS_URL: REDIS_URL, KVWS_ROOT: root };
    const refused = await kvws(["drop", "acme"], { env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("pass --yes");
    expect(refused.stderr).toContain("usage: kvws");
    expect(await storage.withWorkspace("acme").artifacts.load("x")).toBe(1);

    const bad = await kvws(["stats", "bad/id"], { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^ERR_INVALID_WORKSPACE_ID: /);

    for (const args of [["frobnicate"], ["ls", "--bogus"], ["stats"], ["ls", "--yes"], []]) {
      const usage = await kvws(args, { env });
      expect(usage.code, args.join(" ")).toBe(2);
      expect(usage.stderr).toContain("usage: kvws");
    }
    expect((await kvws(["ls"], { env: { KVWS_ROOT: root } })).code).toBe(2);
    expect(await kvws(["--help"])).toMatchObject({ code: 0, stdout: expect.stringContaining("usage: kvws") });
  });

  it("reports an unreachable Redis as ERR_CONNECTION (exit 1) without printing the password", async () => {
    const result = await kvws(["--url", "redis://ops:hunter2-secret@127.0.0.1:1", "--root", "app", "ls"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^ERR_CONNECTION: /);
    expect(result.stderr).not.toContain("hunter2-secret");
  });

  it("names the malformed line of an import and writes nothing of it", async () => {
    const { root, storage } = await redisRoot();
    const env = { KVWS_URL: REDIS_URL, KVWS_ROOT: root };
    const input = [
      '{"collection":"notes","name":"a","value":1}',
      "",
      '{"collection":"notes","name":"b","value":2',
      '{"collection":"notes","name":"c","value":3}',
    ].join("\n");
    const result = await kvws(["import", "acme"], { env, input });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^ERR_INVALID_VALUE: line 3: /);
    const notes = storage.withWorkspace("acme").collection("notes");
    expect(await notes.get("a")).toBe(1);
    expect(await notes.get("b")).toBeUndefined();
    expect(await notes.get("c")).toBeUndefined();
  });

  it("migrates legacy data (dry run first) and rebuilds the index and registry of raw keys", async () => {
    const { root, storage } = await redisRoot();
    const env = { KVWS_URL: REDIS_URL, KVWS_ROOT: root };
    await storage.artifacts.save("old", { v: 1 });
    await storage.deps.add("zod@4");
    expect(await kvws(["migrate", "--to", "acme", "--dry-run"], { env })).toMatchObject({
      code: 0,
      stderr: "would move 1 entries into acme\n",
    });
    expect(await kvws(["migrate", "--to", "acme"], { env })).toMatchObject({
      code: 0,
      stderr: "moved 1 entries into acme\n",
    });
    expect(await storage.withWorkspace("acme").artifacts.load("old")).toEqual({ v: 1 });
    expect(await storage.deps.list()).toEqual(["zod@4"]);
    expect((await kvws(["migrate"], { env })).code).toBe(2);

    const client = await rawRedis();
    try {
      await client.set(`${root}:ws:rawws:artifacts:a`, '{"value":{"x":1}}');
    } finally {
      await client.quit();
    }
    expect((await kvws(["ls"], { env })).stdout).toBe("acme\n");
    const rebuilt = await kvws(["rebuild-index", "--all"], { env });
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stdout).toContain(`${root}:ws:rawws:artifacts: 1 keys scanned, 1 index entries added or fixed`);
    expect((await kvws(["ls"], { env })).stdout).toBe("acme\nrawws\n");
    expect(JSON.parse((await kvws(["stats", "rawws", "--json"], { env })).stdout)).toEqual({
      artifacts: { entries: 1, bytes: 17 },
    });
  });

  it("works on a store kept in the hash layout with --redis-layout hash (or KVWS_REDIS_LAYOUT), and refuses it without", async () => {
    const { root } = await redisRoot();
    const hashed = await openStorage({ url: REDIS_URL, root, workspaceId: "acme", redisLayout: "hash" });
    try {
      await hashed.artifacts.save("plan", { step: 1 });
    } finally {
      await hashed.close();
    }
    const env = { KVWS_URL: REDIS_URL, KVWS_ROOT: root };
    // Without the layout the key layout would find nothing: it says why instead.
    const keys = await kvws(["export", "acme"], { env });
    expect(keys).toMatchObject({ code: 1, stderr: expect.stringMatching(/^ERR_INVALID_CONFIG: .*hash layout/) });
    const exported = await kvws(["--redis-layout", "hash", "export", "acme"], { env });
    expect(exported.code).toBe(0);
    expect(exported.stdout.trim().split("\n")).toHaveLength(1);
    expect(
      JSON.parse((await kvws(["stats", "acme", "--json"], { env: { ...env, KVWS_REDIS_LAYOUT: "hash" } })).stdout),
    ).toMatchObject({
      artifacts: { entries: 1 },
    });
    expect(await kvws(["--redis-layout", "tree", "ls"], { env })).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("--redis-layout (or KVWS_REDIS_LAYOUT) must be keys or hash"),
    });

    // A key written around the library is moved into the collection's hash by rebuild-index.
    const client = await rawRedis();
    try {
      await client.set(`${root}:ws:acme:artifacts:stray`, '{"value":{"x":1}}');
      const rebuilt = await kvws(["--redis-layout", "hash", "rebuild-index", "acme"], { env });
      expect(rebuilt.code).toBe(0);
      expect(rebuilt.stdout).toContain(`${root}:ws:acme:artifacts: 1 keys scanned`);
      expect(rebuilt.stdout).toContain("1 moved into the hash");
      expect(await client.exists(`${root}:ws:acme:artifacts:stray`)).toBe(0);
      expect(await client.hExists(`${root}:ws:acme:artifacts#data`, "stray")).toBe(1);
    } finally {
      await client.quit();
    }
  });

  it("draws a progress bar that reaches 100% when stderr is a terminal", async () => {
    const { root, storage } = await redisRoot();
    await seed(storage.withWorkspace("acme"));
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const command = `${process.execPath} ${bin} --url ${REDIS_URL} --root ${root} export acme --out ${join(dir.path, "x.ndjson")}`;
    const out = execFileSync("script", ["-qc", command, "/dev/null"], { encoding: "utf8", timeout: 30_000 });
    expect(out).toContain("100% | 56/56");
    expect(out).toContain("exported 56 entries of acme");
  });
});

describe("kvws on a file store", () => {
  it("exports to stdout and imports from stdin", async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const url = `file:${join(dir.path, "store.json")}`;
    const storage = await openStorage({ url, root: "app", workspaceId: "acme" });
    await seed(storage);
    const before = await snapshot(storage);
    await storage.close();
    const env = { KVWS_URL: url, KVWS_ROOT: "app" };
    const exported = await kvws(["export", "acme"], { env });
    expect(exported.code).toBe(0);
    expect(exported.stdout.trim().split("\n")).toHaveLength(56);
    expect((await kvws(["drop", "acme", "--yes"], { env })).code).toBe(0);
    expect((await kvws(["ls"], { env })).stdout).toBe("");
    expect(await kvws(["import", "acme"], { env, input: exported.stdout })).toMatchObject({ code: 0 });
    const reopened = await openStorage({ url, root: "app", workspaceId: "acme" });
    try {
      expect(await snapshot(reopened)).toEqual(before);
    } finally {
      await reopened.close();
    }
    const rebuild = await kvws(["rebuild-index"], { env });
    expect(rebuild).toMatchObject({ code: 1, stderr: expect.stringMatching(/^ERR_UNSUPPORTED_STORE: /) });
  });
});

describe("the packed package", () => {
  it("installs into a fresh directory and `npx kvws --help` works there", { timeout: 240_000 }, () => {
    const dir = tempDir();
    try {
      execFileSync("npm", ["pack", "--pack-destination", dir.path, "--ignore-scripts", "--silent"], {
        cwd: repo,
        timeout: 60_000,
      });
      const tarball = readdirSync(dir.path).find((f) => f.endsWith(".tgz"))!;
      writeFileSync(join(dir.path, "package.json"), '{"name":"kvws-pack-test","private":true}');
      // Offline first; the machine's registry fills what the npm cache lacks.
      execFileSync("npm", ["install", `./${tarball}`, "keyv", "--prefer-offline", "--no-audit", "--no-fund"], {
        cwd: dir.path,
        timeout: 180_000,
        stdio: "ignore",
      });
      const help = execFileSync("npx", ["--no-install", "kvws", "--help"], {
        cwd: dir.path,
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(help).toContain("usage: kvws");
    } finally {
      rmSync(dir.path, { recursive: true, force: true });
    }
  });
});
