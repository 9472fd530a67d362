import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { MAX_REMEMBERED_WARNINGS, warnOnce } from "../lib/warnings.js";

describe("warnOnce", () => {
  it("emits a warning once per code and message, with its code, and remembers a bounded number", async () => {
    const tag = randomBytes(4).toString("hex");
    const got: Array<{ code?: string; message: string; name: string }> = [];
    const on = (w: Error & { code?: string }) => {
      if (w.message.includes(tag)) got.push({ code: w.code, message: w.message, name: w.name });
    };
    process.on("warning", on);
    try {
      const flush = () => new Promise((resolve) => setImmediate(resolve));
      warnOnce("KVWS_TEST", `first ${tag}`);
      warnOnce("KVWS_TEST", `first ${tag}`);
      warnOnce("KVWS_OTHER", `first ${tag}`);
      warnOnce("KVWS_TEST", `second ${tag}`);
      await flush();
      expect(got).toEqual([
        { code: "KVWS_TEST", message: `first ${tag}`, name: "KeyvWorkspacesWarning" },
        { code: "KVWS_OTHER", message: `first ${tag}`, name: "KeyvWorkspacesWarning" },
        { code: "KVWS_TEST", message: `second ${tag}`, name: "KeyvWorkspacesWarning" },
      ]);
      // The memory is bounded: after that many other warnings, the oldest is forgotten.
      expect(MAX_REMEMBERED_WARNINGS).toBe(1024);
      // Filling the memory would print a thousand lines on stderr: not emitted, only remembered.
      const emit = process.emitWarning;
      process.emitWarning = () => {};
      try {
        for (let i = 0; i < MAX_REMEMBERED_WARNINGS; i++) warnOnce("KVWS_FILL", `fill ${tag} ${i}`);
      } finally {
        process.emitWarning = emit;
      }
      got.length = 0;
      warnOnce("KVWS_TEST", `first ${tag}`);
      await flush();
      expect(got.map((w) => w.message)).toEqual([`first ${tag}`]);
    } finally {
      process.off("warning", on);
    }
  });
});
