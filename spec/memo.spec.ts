import { describe, expect, it } from "vitest";
import { MemoryStore } from "../lib/backends/memory.js";
import { createStorage } from "../lib/index.js";
import { MEMO_LIMIT, Memo, MemoSet } from "../lib/memo.js";

describe("Memo", () => {
  it("forgets everything when a new key would take it past its limit, and nothing before", () => {
    const memo = new Memo<string, number>(3);
    memo.set("a", 1).set("b", 2).set("c", 3);
    memo.set("b", 20); // a key it holds: no room needed
    expect([...memo]).toEqual([
      ["a", 1],
      ["b", 20],
      ["c", 3],
    ]);
    memo.set("d", 4);
    expect([...memo]).toEqual([["d", 4]]);
    const set = new MemoSet<string>(2);
    set.add("a").add("b").add("a");
    expect([...set]).toEqual(["a", "b"]);
    set.add("c");
    expect([...set]).toEqual(["c"]);
    expect(new Memo().limit).toBe(MEMO_LIMIT);
  });
});

describe("registrations over many workspaces", () => {
  it("registers a held workspace again after a drop, though the registrar forgot its entry meanwhile", async () => {
    const operator = createStorage(new MemoryStore(), { root: "memo", workspaceId: null });
    const held = operator.withWorkspace("keep").collection("notes");
    await held.set("a", 1);
    // Two registrations per workspace (the root's, the workspace's collections): past the limit.
    for (let i = 0; i <= MEMO_LIMIT / 2; i++) await operator.withWorkspace(`w${i}`).collection("notes").set("k", 1);
    await operator.withWorkspace("keep").dropWorkspace();
    expect(await operator.listWorkspaces()).not.toContain("keep");
    await held.set("b", 2);
    expect(await operator.listWorkspaces()).toContain("keep");
    expect(await operator.withWorkspace("keep").stats()).toMatchObject({ notes: { entries: 1 } });
  });
});
