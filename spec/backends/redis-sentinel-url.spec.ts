import { describe, expect, it } from "vitest";
import { openBackend } from "../../lib/backends/index.js";
import { formatSentinelUrl, nodeUrl, parseSentinelUrl } from "../../lib/backends/redis/sentinel-url.js";
import { replyKind } from "../../lib/backends/redis/tx.js";
import { redact, urlPassword, withCredentials } from "../../lib/backends/redis/url.js";
import { configFromEnv, parseConfig } from "../../lib/config.js";

describe("redis+sentinel:// URLs", () => {
  it("names Sentinels (port 26379 by default, IPv6 in brackets), the master, and both sets of credentials", () => {
    const parsed = parseSentinelUrl(
      "redis+sentinel://app:p%40ss@10.0.0.1:26380,sentinel-b,[::1]:5000/mymaster?sentinelUsername=sen&sentinelPassword=s%26cret",
    );
    expect(parsed).toEqual({
      sentinels: [
        { host: "10.0.0.1", port: 26380 },
        { host: "sentinel-b", port: 26379 },
        { host: "::1", port: 5000 },
      ],
      masterName: "mymaster",
      username: "app",
      password: "p@ss",
      sentinelUsername: "sen",
      sentinelPassword: "s&cret",
    });
    expect(nodeUrl(parsed, { host: "127.0.0.1", port: 7000 })).toBe("redis://app:p%40ss@127.0.0.1:7000");
    expect(parseSentinelUrl(formatSentinelUrl(parsed))).toEqual(parsed);
    expect(parseSentinelUrl("redis+sentinel://h:1/m")).toEqual({
      sentinels: [{ host: "h", port: 1 }],
      masterName: "m",
    });
  });

  it.each([
    ["no master name", "redis+sentinel://h:26379"],
    ["an empty master name", "redis+sentinel://h:26379/"],
    ["a port out of range", "redis+sentinel://h:70000/m"],
    ["a bad host list", "redis+sentinel://h:1,,h:2/m"],
    ["an unknown parameter", "redis+sentinel://h:1/m?db=2"],
    ["an empty sentinelPassword", "redis+sentinel://h:1/m?sentinelPassword="],
    ["a bad %-escape", "redis+sentinel://u:%zz@h:1/m"],
  ])("refuses %s with InvalidConfigError", (_, url) => {
    expect(() => parseSentinelUrl(url)).toThrow(expect.objectContaining({ code: "ERR_INVALID_CONFIG", field: "url" }));
  });

  it("never shows either password in messages", () => {
    const url = "redis+sentinel://u:data-pw@h:1,h:2/m?sentinelPassword=sent-pw";
    expect(redact(url)).toBe("redis+sentinel://u:***@h:1,h:2/m?sentinelPassword=***");
    expect(urlPassword(url)).toBe("data-pw");
    let message = "";
    try {
      parseSentinelUrl("redis+sentinel://u:data-pw@h:1/m?sentinelPassword=sent-pw&x=1");
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("unknown parameter");
    expect(message).not.toMatch(/data-pw|sent-pw/);
  });

  it("gives a workspace user's URL in the same form, the Sentinel credentials kept", () => {
    const url = withCredentials("redis+sentinel://admin:x@h:1,h:2/m?sentinelPassword=sp", "kvws:app:a", "p w");
    expect(parseSentinelUrl(url)).toMatchObject({ username: "kvws:app:a", password: "p w", sentinelPassword: "sp" });
  });
});

describe("config: Sentinel URLs and durability", () => {
  const sentinel = "redis+sentinel://127.0.0.1:26379/m";

  it("accepts a Sentinel URL, with redisLayout and durability", () => {
    expect(parseConfig({ url: sentinel, root: "app", redisLayout: "hash", durability: "replicated" })).toMatchObject({
      url: sentinel,
      redisLayout: "hash",
      durability: "replicated",
    });
    expect(parseConfig({ url: "redis://h", root: "app", durability: "default" }).durability).toBe("default");
  });

  it("refuses durability replicated on a non-Redis URL or a cluster, and unknown values", () => {
    const bad = expect.objectContaining({ code: "ERR_INVALID_CONFIG", field: "durability" });
    expect(() => parseConfig({ url: "file:x.json", root: "app", durability: "replicated" })).toThrow(bad);
    expect(() => parseConfig({ url: "redis://h", root: "app", cluster: true, durability: "replicated" })).toThrow(bad);
    expect(() => parseConfig({ url: "redis://h", root: "app", durability: "always" })).toThrow(bad);
  });

  it("reads KVWS_DURABILITY", () => {
    expect(configFromEnv({ KVWS_URL: sentinel, KVWS_ROOT: "app", KVWS_DURABILITY: "replicated" }).durability).toBe(
      "replicated",
    );
    expect(() => configFromEnv({ KVWS_URL: "memory:", KVWS_ROOT: "app", KVWS_DURABILITY: "replicated" })).toThrow(
      expect.objectContaining({ field: "durability" }),
    );
  });

  it("openBackend refuses durability replicated on another engine before any I/O", async () => {
    await expect(openBackend("memory:", { durability: "replicated" })).rejects.toMatchObject({
      code: "ERR_INVALID_CONFIG",
      field: "durability",
    });
    await expect(openBackend("sqlite:/nonexistent/dir/x.db", { durability: "replicated" })).rejects.toMatchObject({
      field: "durability",
    });
  });
});

describe("replies of a master during a failover", () => {
  it("treats MASTERDOWN and NOREPLICAS as transient (retried within the command's time), READONLY as read-only", () => {
    expect(replyKind("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.")).toBe(
      "transient",
    );
    expect(replyKind("NOREPLICAS Not enough good replicas to write.")).toBe("transient");
    expect(replyKind("READONLY You can't write against a read only replica.")).toBe("readonly");
  });
});
