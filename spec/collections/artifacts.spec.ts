import { describe, expect, it } from "vitest";
import { createStorage } from "../../lib/index.js";

const storage = () => createStorage(new Map(), { root: "app", workspaceId: "w" });

describe("artifacts", () => {
  it("saves JSON with description and metadata, and reports its info", async () => {
    const s = storage();
    const info = await s.artifacts.save(
      "result",
      { rows: [1, 2], ok: true, text: ":colon" },
      { description: "d", metadata: { by: "agent" } },
    );
    expect(info).toMatchObject({ name: "result", description: "d", kind: "json", metadata: { by: "agent" } });
    expect(info.size).toBe(Buffer.byteLength(JSON.stringify({ rows: [1, 2], ok: true, text: ":colon" })));
    expect(new Date(info.createdAt).toISOString()).toBe(info.createdAt);
    expect(await s.artifacts.load("result")).toEqual({ rows: [1, 2], ok: true, text: ":colon" });
    expect(await s.artifacts.info("result")).toEqual(info);
    expect(await s.artifacts.info("nope")).toBeUndefined();
  });

  it("saves bytes and loads them back as a Uint8Array", async () => {
    const s = storage();
    const bytes = Uint8Array.from([0, 1, 2, 255, 10, 13]);
    const info = await s.artifacts.save("blob", bytes);
    expect(info).toMatchObject({ kind: "bytes", size: 6 });
    const loaded = await s.artifacts.load("blob");
    expect(loaded).toBeInstanceOf(Uint8Array);
    expect([...(loaded as Uint8Array)]).toEqual([...bytes]);
    await s.artifacts.save("from-buffer", Buffer.from("héllo"));
    expect(Buffer.from((await s.artifacts.load("from-buffer")) as Uint8Array).toString()).toBe("héllo");
  });

  it("keeps createdAt across overwrites and moves updatedAt", async () => {
    const s = storage();
    const first = await s.artifacts.save("x", 1);
    await new Promise((r) => setTimeout(r, 5));
    const second = await s.artifacts.save("x", 2);
    expect(second.createdAt).toBe(first.createdAt);
    expect(second.updatedAt > first.updatedAt).toBe(true);
    expect(await s.artifacts.load("x")).toBe(2);
  });

  it("lists sorted by name, and has/delete agree", async () => {
    const s = storage();
    for (const name of ["b", "a", "C", "a:1", "ä"]) await s.artifacts.save(name, name);
    expect((await s.artifacts.list()).map((i) => i.name)).toEqual(["C", "a", "a:1", "b", "ä"]);
    expect(await s.artifacts.has("a")).toBe(true);
    expect(await s.artifacts.delete("a")).toBe(true);
    expect(await s.artifacts.delete("a")).toBe(false);
    expect(await s.artifacts.has("a")).toBe(false);
    await expect(s.artifacts.load("a")).rejects.toMatchObject({
      code: "ERR_ARTIFACT_NOT_FOUND",
      message: expect.stringContaining('"a"'),
    });
  });

  it("stores null and other JSON primitives exactly", async () => {
    const s = storage();
    for (const [name, value] of [
      ["null", null],
      ["zero", 0],
      ["empty", ""],
      ["false", false],
      ["arr", []],
    ] as const) {
      await s.artifacts.save(name, value);
      expect(await s.artifacts.load(name)).toEqual(value);
    }
  });
});
