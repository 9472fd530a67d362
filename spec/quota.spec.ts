import { describe, expect, it } from "vitest";
import { InvalidArgumentError, QuotaExceededError } from "../lib/errors.js";
import { exceeds, quotaExceeded, validateQuota, workspaceOfBase } from "../lib/quota.js";

describe("validateQuota", () => {
  it("keeps positive integers and null", () => {
    expect(validateQuota({ maxEntries: 3 })).toEqual({ maxEntries: 3 });
    expect(validateQuota({ maxEntries: 1, maxBytes: 2 })).toEqual({ maxEntries: 1, maxBytes: 2 });
    expect(validateQuota(null)).toBeNull();
  });

  it.each([
    [{}],
    [{ maxEntries: 0 }],
    [{ maxEntries: -1 }],
    [{ maxBytes: 1.5 }],
    [{ maxBytes: Number.MAX_SAFE_INTEGER + 1 }],
    [{ maxEntries: "3" }],
    [{ maxEntries: 3, other: 1 }],
    [[]],
    ["3"],
    [undefined],
  ])("refuses %j with InvalidArgumentError", (input) => {
    expect(() => validateQuota(input)).toThrow(InvalidArgumentError);
  });
});

describe("exceeds", () => {
  const limit = { maxEntries: 2, maxBytes: 10 };
  it("refuses growth past either limit", () => {
    expect(exceeds(limit, { entries: 2, bytes: 0 }, { entries: 1, bytes: 0 })).toBe(true);
    expect(exceeds(limit, { entries: 0, bytes: 8 }, { entries: 0, bytes: 3 })).toBe(true);
    expect(exceeds(limit, { entries: 1, bytes: 8 }, { entries: 1, bytes: 2 })).toBe(false);
  });

  it("lets deletes and non-growing overwrites through even when already over", () => {
    expect(exceeds(limit, { entries: 5, bytes: 50 }, { entries: -1, bytes: -5 })).toBe(false);
    expect(exceeds(limit, { entries: 5, bytes: 50 }, { entries: 0, bytes: 0 })).toBe(false);
    expect(exceeds(limit, { entries: 5, bytes: 50 }, { entries: 0, bytes: 1 })).toBe(true);
  });
});

describe("quotaExceeded", () => {
  it("names the workspace in either layout", () => {
    expect(workspaceOfBase("app:ws:a:b")).toBe("a:b");
    expect(workspaceOfBase("app:x:ws:{t1}")).toBe("t1");
    const error = quotaExceeded("app:ws:t1", { maxEntries: 1 }, { entries: 1, bytes: 0 }, { entries: 1, bytes: 4 });
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error.code).toBe("ERR_QUOTA_EXCEEDED");
    expect(error.workspaceId).toBe("t1");
    expect(error.message).toContain("1 of 1 entries");
  });
});
