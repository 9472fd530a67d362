import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { deleteUnder, REDIS_URL, randomRoot, rawRedis } from "./support/env.js";
import { dropPgTables, pgTable, pgUrl } from "./support/sql.js";

// The examples of docs/collaboration.md, run as written (the package import pointed at lib/).
const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const doc = readFileSync(join(repo, "docs", "collaboration.md"), "utf8");
const blocks = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
const dir = mkdtempSync(join(tmpdir(), "kvws-collab-"));
const lib = pathToFileURL(join(repo, "lib", "index.ts")).href;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(code: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const file = join(dir, `example-${Math.random().toString(36).slice(2)}.mts`);
  writeFileSync(file, code.replaceAll('from "keyv-workspaces"', `from ${JSON.stringify(lib)}`));
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", file], {
    cwd: repo,
    timeout: 30_000,
    env: { ...process.env, ...env },
  });
  return stdout.trim();
}

describe("docs/collaboration.md", () => {
  it("has the two examples", () => {
    expect(blocks).toHaveLength(2);
  });

  it("two agents updating one plan keep every step", async () => {
    expect(await run(blocks[0]!)).toBe("plan: research, review, write");
  });

  it("file store too", async () => {
    const url = `file:${join(dir, "collab.json")}`;
    expect(await run(blocks[0]!, { KVWS_URL: url })).toBe("plan: research, review, write");
  });

  it("sqlite: and postgres:// too", async () => {
    expect(await run(blocks[0]!, { KVWS_URL: `sqlite:${join(dir, "collab.sqlite")}` })).toBe(
      "plan: research, review, write",
    );
    const root = randomRoot("collab");
    try {
      expect(await run(blocks[0]!, { KVWS_URL: pgUrl(root) })).toBe("plan: research, review, write");
    } finally {
      await dropPgTables(pgTable(root));
    }
  });

  it("an agent reacts to another's save through watch()", async () => {
    expect(await run(blocks[1]!)).toBe('saw report: {"ok":true}');
  });

  it("the watch example on sqlite: and postgres://", async () => {
    const saw = 'saw report: {"ok":true}';
    expect(await run(blocks[1]!, { KVWS_URL: `sqlite:${join(dir, "feed.sqlite")}` })).toBe(saw);
    const root = randomRoot("feed");
    try {
      expect(await run(blocks[1]!, { KVWS_URL: pgUrl(root) })).toBe(saw);
    } finally {
      await dropPgTables(pgTable(root));
    }
  });

  it("the watch example on the file store", async () => {
    const url = `file:${join(dir, "feed.json")}`;
    expect(await run(blocks[1]!, { KVWS_URL: url })).toBe('saw report: {"ok":true}');
  });

  it("both examples on Redis", async () => {
    const raw = await rawRedis();
    const roots = [randomRoot("collab"), randomRoot("feed")];
    try {
      const env = { KVWS_URL: REDIS_URL };
      expect(await run(blocks[0]!, { ...env, KVWS_ROOT: roots[0] })).toBe("plan: research, review, write");
      expect(await run(blocks[1]!, { ...env, KVWS_ROOT: roots[1] })).toBe('saw report: {"ok":true}');
    } finally {
      for (const root of roots) await deleteUnder(raw, root);
      await raw.quit();
    }
  });
});
