import { describe, expect, it } from "vitest";
import { redact, scrub, urlPassword, withCredentials } from "../../lib/backends/redis/url.js";

describe("credentials in Redis URLs", () => {
  it("redacts the password and keeps the rest", () => {
    expect(redact("redis://user:s3cr%40t@host:6380/2")).toBe("redis://user:***@host:6380/2");
    expect(redact("rediss://:only-pw@host")).toBe("rediss://:***@host");
    expect(redact("redis://host:6379")).toBe("redis://host:6379");
    expect(redact("redis://us er:pw@bad host")).not.toContain("pw");
  });

  it("round-trips user names and passwords that need encoding", () => {
    const url = withCredentials("redis://admin:x@127.0.0.1:6379/3", "kvws:app:client_a", "p@ss:w/rd%");
    expect(url).toBe("redis://kvws%3Aapp%3Aclient_a:p%40ss%3Aw%2Frd%25@127.0.0.1:6379/3");
    expect(urlPassword(url)).toBe("p@ss:w/rd%");
    expect(decodeURIComponent(new URL(url).username)).toBe("kvws:app:client_a");
    expect(urlPassword("redis://host")).toBeUndefined();
  });

  it("scrubs secrets, raw or URL-encoded, from text", () => {
    expect(scrub("modifier '>p@ss' and redis://u:p%40ss@h", ["p@ss", undefined])).toBe(
      "modifier '>***' and redis://u:***@h",
    );
    expect(scrub("nothing here", [undefined, ""])).toBe("nothing here");
  });
});
