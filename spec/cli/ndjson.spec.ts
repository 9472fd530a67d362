import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { readRecords } from "../../lib/cli/ndjson.js";
import { createStorage } from "../../lib/index.js";
import { BATCH } from "../../lib/lifecycle/stats.js";

/** The text in chunks of `size` characters, so lines (and UTF-8 sequences) straddle chunk boundaries. */
function chunked(text: string, size: number): Readable {
  const bytes = Buffer.from(text, "utf8");
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return Readable.from(chunks);
}

const line = (name: string, value: unknown) => JSON.stringify({ collection: "notes", name, value });

describe("importing NDJSON read in chunks", () => {
  it("keeps the order of the lines across chunks and batches: the last record of a name wins", async () => {
    const lines: string[] = [];
    for (let i = 0; i < 3 * BATCH; i++) lines.push(line(`n${i}`, `v${i} é`));
    lines[5] = line("twice", "first");
    lines[2 * BATCH + 5] = line("twice", "last");
    lines.splice(100, 0, "", "   ");
    const a = createStorage(new Map(), { root: "app", workspaceId: "a" });
    expect(await a.importWorkspace(readRecords(chunked(`${lines.join("\n")}\n`, 777)))).toBe(3 * BATCH);
    expect(await a.collection("notes").get("twice")).toBe("last");
    expect(await a.collection("notes").get("n7")).toBe("v7 é");
    expect((await a.stats()).notes?.entries).toBe(3 * BATCH - 1);
  });

  it("stores every record before a line that is not JSON, nothing after it, and names that line", async () => {
    const lines: string[] = [];
    for (let i = 0; i < 1500; i++) lines.push(line(`n${i}`, i));
    lines[1233] = '{"collection":"notes","name":"broken","value":';
    const a = createStorage(new Map(), { root: "app", workspaceId: "a" });
    await expect(a.importWorkspace(readRecords(chunked(lines.join("\n"), 4096)))).rejects.toMatchObject({
      code: "ERR_INVALID_VALUE",
      message: expect.stringMatching(/^line 1234: not JSON/),
    });
    const notes = a.collection("notes");
    expect(await notes.get("n1232")).toBe(1232);
    expect(await notes.get("n1234")).toBeUndefined();
    expect((await a.stats()).notes?.entries).toBe(1233);
  });

  it("names the line of a record that fails its checks, the blank lines counted", async () => {
    const lines = ["", line("a", 1), "", line("b", 2), JSON.stringify({ collection: "notes", name: "", value: 3 })];
    for (let i = 0; i < 700; i++) lines.push(line(`after${i}`, i));
    const a = createStorage(new Map(), { root: "app", workspaceId: "a" });
    await expect(a.importWorkspace(readRecords(chunked(lines.join("\n"), 50)))).rejects.toMatchObject({
      code: "ERR_INVALID_VALUE",
      message: expect.stringMatching(/^line 5: /),
    });
    expect(await a.collection("notes").get("b")).toBe(2);
    expect(await a.collection("notes").get("after0")).toBeUndefined();
  });

  it("still hands out the records one by one to any other reader, in order", async () => {
    const text = [line("x", 1), "", line("y", 2), line("z", 3)].join("\n");
    const names: string[] = [];
    for await (const record of readRecords(chunked(text, 7))) names.push(record.name);
    expect(names).toEqual(["x", "y", "z"]);
    const bad = readRecords(chunked(`${line("x", 1)}\nnope\n${line("z", 3)}`, 5));
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const record of bad) seen.push(record.name);
      })(),
    ).rejects.toMatchObject({ code: "ERR_INVALID_VALUE", message: expect.stringMatching(/^line 2: /) });
    expect(seen).toEqual(["x"]);
  });
});
