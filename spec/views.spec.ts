import { describe, expect, it } from "vitest";
import { createStorage, openStorage } from "../lib/index.js";
import { Lru, VIEW_LIMIT } from "../lib/views.js";

describe("Lru", () => {
  it("keeps the most recently used keys up to its limit", () => {
    const lru = new Lru<string, number>(3);
    lru.set("a", 1);
    lru.set("b", 2);
    lru.set("c", 3);
    expect(lru.get("a")).toBe(1); // a is now the most recent: b goes first
    lru.set("d", 4);
    expect([lru.get("b"), lru.get("c"), lru.get("a"), lru.get("d")]).toEqual([undefined, 3, 1, 4]);
    lru.set("c", 30); // a key it holds: nothing goes
    expect(lru.size).toBe(3);
    expect(lru.get("c")).toBe(30);
  });
});

describe("withWorkspace views", () => {
  it("share the collections and stores of their workspace, and only of theirs", () => {
    const owner = createStorage(new Map(), { root: "views", workspaceId: null });
    const a = owner.withWorkspace("x");
    const b = owner.withWorkspace("x");
    expect(a).not.toBe(b);
    expect(a.collection("notes")).toBe(b.collection("notes"));
    expect(a.artifacts).toBe(b.artifacts);
    expect(a.vectors).toBe(b.withWorkspace("x").vectors);
    expect(a.collection("notes")).not.toBe(owner.withWorkspace("y").collection("notes"));
    expect(a.collection("notes")).not.toBe(a.collection("other"));
    expect(owner.withWorkspace(null).collection("notes")).toBe(owner.withWorkspace(undefined).collection("notes"));
    expect(owner.withWorkspace(null).collection("notes")).not.toBe(a.collection("notes"));
  });

  it("keep the stores of the VIEW_LIMIT most recently used workspaces", () => {
    const owner = createStorage(new Map(), { root: "views", workspaceId: null });
    const notes = (id: string) => owner.withWorkspace(id).collection("notes");
    const first = notes("w0");
    const second = notes("w1");
    for (let i = 2; i < VIEW_LIMIT; i++) notes(`w${i}`);
    expect(notes("w0")).toBe(first); // used again: w1 is now the least recent
    notes(`w${VIEW_LIMIT}`);
    expect(notes("w0")).toBe(first);
    expect(notes("w1")).not.toBe(second);
  });

  it("never remember a workspace id that is refused", () => {
    const owner = createStorage(new Map(), { root: "views", workspaceId: null });
    for (let i = 0; i < 2; i++) {
      expect(() => owner.withWorkspace("bad/id")).toThrow(
        expect.objectContaining({ code: "ERR_INVALID_WORKSPACE_ID" }),
      );
      expect(() => owner.withWorkspace("")).toThrow(expect.objectContaining({ code: "ERR_INVALID_WORKSPACE_ID" }));
    }
  });

  it("close() ends the view's own watchers; the view and its workspace's other views stay usable until the owner closes", async () => {
    const owner = await openStorage({ url: "memory:", root: "views", workspaceId: null });
    const view = owner.withWorkspace("x");
    const other = owner.withWorkspace("x");
    const mine = view.watch();
    const theirs = other.watch();
    await view.close();
    expect(await mine.next()).toEqual({ done: true, value: undefined });
    await view.collection("notes").set("k", 1);
    expect((await theirs.next()).value).toMatchObject({ op: "set", collection: "notes", name: "k" });
    expect(await other.collection("notes").get("k")).toBe(1);
    expect(await view.withWorkspace("x").artifacts.list()).toEqual([]);
    // Still a view: a watcher it opens after its close() ends at its next close().
    const later = view.watch();
    await view.close();
    expect(await later.next()).toEqual({ done: true, value: undefined });
    await owner.close();
    expect(await theirs.next()).toEqual({ done: true, value: undefined });
    const closed = { code: "ERR_STORAGE_CLOSED" };
    await expect(view.collection("notes").get("k")).rejects.toMatchObject(closed);
    await expect(other.artifacts.list()).rejects.toMatchObject(closed);
    expect(() => view.withWorkspace("y")).toThrow(expect.objectContaining(closed));
  });
});
