import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QuotaExceededError } from "../../lib/errors.js";
import { openStorage } from "../../lib/index.js";
import { tempDir } from "../support/env.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(repo, "dist", "cli", "kvws.js");
const dir = tempDir();

function kvws(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { ...process.env, KVWS_URL: "", KVWS_ROOT: "" }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error ? Number((error as { code?: unknown }).code ?? 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

beforeAll(() => {
  if (!existsSync(bin)) throw new Error("dist/cli/kvws.js is missing: run `npm run build` before this test");
});
afterAll(() => dir.remove());

describe("kvws quota (the built binary)", () => {
  it.each([
    [["quota"], "quota needs a workspace id"],
    [["quota", "t1", "--max-entries", "0"], '--max-entries must be a positive integer, got "0"'],
    [["quota", "t1", "--max-entries=-1"], '--max-entries must be a positive integer, got "-1"'],
    [["quota", "t1", "--max-bytes", "1.5"], '--max-bytes must be a positive integer, got "1.5"'],
    [["quota", "t1", "--max-entries", "abc"], '--max-entries must be a positive integer, got "abc"'],
    [["quota", "t1", "--max-bytes", "99999999999999999999"], "--max-bytes must be a positive integer"],
    [["quota", "t1", "--max-bytes", "10", "--clear"], "--clear removes the quota"],
    [["quota", "t1", "--max-entries", "-1"], "--max-entries"],
  ])("%j exits 2 with a clear message, before opening the store", async (args, message) => {
    const never = join(dir.path, "never");
    const result = await kvws(["--url", `file:${never}/store.json`, "--root", "q", ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain("usage: kvws");
    expect(existsSync(never)).toBe(false);
  });

  it("shows, sets (the flags given are the whole quota) and clears a quota on a file store", async () => {
    const url = `file:${join(dir.path, "store.json")}`;
    const cli = (...args: string[]) => kvws(["--url", url, "--root", "q", "quota", "t1", ...args]);
    const seed = await openStorage({ url, root: "q", workspaceId: "t1" });
    await seed.collection("notes").set("a", "x");
    await seed.artifacts.save("r", { n: 1 });
    await seed.close();

    const shown = await cli();
    expect(shown).toMatchObject({ code: 0, stderr: "" });
    expect(shown.stdout).toMatch(/^workspace t1: no quota\nentries\s+2\nbytes\s+\d+\n$/);

    const set = await cli("--max-entries", "3", "--json");
    expect(set.code).toBe(0);
    const usage = JSON.parse(set.stdout);
    expect(usage).toEqual({ limit: { maxEntries: 3 }, entries: 2, bytes: expect.any(Number) });

    const ws = await openStorage({ url, root: "q", workspaceId: "t1" });
    await ws.collection("notes").set("b", "y");
    await expect(ws.collection("notes").set("c", "z")).rejects.toBeInstanceOf(QuotaExceededError);

    // Only --max-bytes: the entry limit is lifted, and an open storage obeys at its next write.
    const bytesOnly = await cli("--max-bytes", "100000");
    expect(bytesOnly.stdout).toMatch(/^workspace t1: quota\nentries\s+3\nbytes\s+\d+ of 100000\n$/);
    await ws.collection("notes").set("c", "z");

    const cleared = await cli("--clear", "--json");
    expect(JSON.parse(cleared.stdout)).toEqual(await ws.quota());
    expect(await ws.quota()).toMatchObject({ limit: null, entries: 4 });
    await ws.close();
  });
});
