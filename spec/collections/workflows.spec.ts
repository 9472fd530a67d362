import { describe, expect, it } from "vitest";
import { type AnyStore, DRIVER, type Driver } from "../../lib/backends/driver.js";
import { createStorage, hashingEmbedder } from "../../lib/index.js";
import { driverFor } from "../../lib/scope.js";

describe("workflows", () => {
  it("upserts by name, keeps createdAt, lists sorted", async () => {
    const s = createStorage(new Map(), { root: "app", workspaceId: "w" });
    const first = await s.workflows.add({ name: "b_flow", source: "v1", description: "one" });
    await s.workflows.add({ name: "a_flow", source: "x", description: "two", metadata: { tags: ["t"] } });
    const again = await s.workflows.add({ name: "b_flow", source: "v2", description: "one again" });
    expect(again.createdAt).toBe(first.createdAt);
    expect((await s.workflows.get("b_flow"))?.source).toBe("v2");
    expect((await s.workflows.list()).map((w) => w.name)).toEqual(["a_flow", "b_flow"]);
    expect((await s.workflows.get("a_flow"))?.metadata).toEqual({ tags: ["t"] });
  });

  it("finds the closest description first and forgets deleted workflows", async () => {
    const s = createStorage(new Map(), { root: "app", workspaceId: "w" });
    await s.workflows.add({ name: "send_email", source: "", description: "send an email message to a customer" });
    await s.workflows.add({ name: "resize_image", source: "", description: "resize and crop an image file" });
    await s.workflows.add({ name: "parse_csv", source: "", description: "parse a csv spreadsheet into rows" });
    const hits = await s.workflows.search("crop the image", { limit: 2 });
    expect(hits.map((h) => h.name)[0]).toBe("resize_image");
    expect(hits).toHaveLength(2);
    expect(hits[0]!.score).toBeGreaterThanOrEqual(hits[1]!.score);
    expect(await s.workflows.delete("resize_image")).toBe(true);
    expect((await s.workflows.search("crop the image")).map((h) => h.name)).not.toContain("resize_image");
    await expect(s.workflows.search("x", { limit: 0 })).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
  });

  it("uses a custom embedder when given one", async () => {
    const calls: string[] = [];
    const base = hashingEmbedder(32);
    const s = createStorage(new Map(), {
      root: "app",
      embedder: {
        dimensions: 32,
        embed: (text) => {
          calls.push(text);
          return base.embed(text);
        },
      },
    });
    await s.workflows.add({ name: "w", source: "", description: "hello" });
    await s.workflows.search("hello");
    expect(calls).toEqual(["w hello", "hello"]);
  });

  it("embeds deterministically", () => {
    const e = hashingEmbedder();
    expect([...(e.embed("Same text") as Float32Array)]).toEqual([...(e.embed("same TEXT") as Float32Array)]);
  });
});

describe("workflow search cost", () => {
  it("does not list the workflow index on every query once its matrix is cached", async () => {
    const map = new Map<string, unknown>();
    const inner = driverFor(map);
    const listed: string[] = [];
    const counting: Driver = {
      scope(prefix) {
        const store = inner.scope(prefix);
        return {
          ...store,
          names() {
            listed.push(prefix);
            return store.names();
          },
        };
      },
    };
    const s = createStorage({ [DRIVER]: counting } as unknown as AnyStore, { root: "app", workspaceId: "w" });
    for (const name of ["alpha", "beta", "gamma"]) await s.workflows.add({ name, source: "", description: name });
    await s.workflows.search("alpha");
    listed.length = 0;
    for (let i = 0; i < 5; i++) expect((await s.workflows.search("beta"))[0]?.name).toBe("beta");
    expect(listed).toEqual([]);
  });
});
