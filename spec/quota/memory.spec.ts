import { describe, expect, it } from "vitest";
import { MapCore } from "../../lib/backends/map.js";
import { localQuotaSuite } from "./local-suite.js";

let n = 0;
// A named memory store is shared by every storage of the process that opens its name.
localQuotaSuite("memory", () => `memory:quota-${process.pid}-${n++}`);

describe("MapCore quotas: bookkeeping only while a quota exists", () => {
  it("keeps no counts before the first quota and drops them with the last", () => {
    const core = new MapCore(new Map());
    core.set("q:ws:a:notes", "x", "12345");
    expect(core.quotas).toBeUndefined();
    core.setQuota("q:ws:a", { maxEntries: 2 });
    core.setQuota("q:ws:b", { maxBytes: 10 });
    expect(core.readQuota("q:ws:a")).toEqual({ limit: { maxEntries: 2 }, entries: 1, bytes: 5 });
    core.setQuota("q:ws:a", null);
    expect(core.quotas).toBeDefined();
    core.setQuota("q:ws:b", null);
    expect(core.quotas).toBeUndefined();
    expect(core.readQuota("q:ws:a")).toBeUndefined();
  });

  it("counts data prefixes only, never bookkeeping (#) or a longer workspace id", () => {
    const core = new MapCore(new Map());
    core.setQuota("q:ws:a", { maxEntries: 10 });
    core.set("q:ws:a:notes", "x", "1");
    core.set("q:ws:a:vectors#vectors", "x", "1");
    core.set("q:ws:a:b:notes", "x", "1");
    core.set("q:ws:ab:notes", "x", "1");
    expect(core.readQuota("q:ws:a")).toMatchObject({ entries: 1 });
    // Raw writes by full key are counted too (attributed by the key layout), and a clear of the whole map.
    core.rawSet("q:ws:a:notes:y", "22");
    expect(core.readQuota("q:ws:a")).toEqual({ limit: { maxEntries: 10 }, entries: 2, bytes: 3 });
    core.rawClear();
    expect(core.readQuota("q:ws:a")).toEqual({ limit: { maxEntries: 10 }, entries: 0, bytes: 0 });
  });
});
