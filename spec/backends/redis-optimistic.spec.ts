// The pool of WATCH connections behind conditional writes (lib/backends/redis/optimistic.ts).
import { createClient } from "@redis/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Dedicated,
  duplicateOf,
  OPTIMISTIC_CONNECTIONS,
  optimisticOver,
} from "../../lib/backends/redis/optimistic.js";
import { openStorage } from "../../lib/index.js";
import { deleteUnder, type RawRedis, REDIS_URL, randomRoot, rawRedis } from "../support/env.js";

let raw: RawRedis;
let base: ReturnType<typeof createClient>;
const roots: string[] = [];
beforeAll(async () => {
  raw = await rawRedis();
  base = createClient({ url: REDIS_URL });
  await base.connect();
});
afterAll(async () => {
  for (const root of roots) await deleteUnder(raw, root);
  await raw.quit();
  await base.quit();
});

describe("conditional-write connections", () => {
  it("run attempts on up to OPTIMISTIC_CONNECTIONS connections at once, one attempt per connection", async () => {
    const root = randomRoot("ropt");
    roots.push(root);
    let opened = 0;
    let busy = 0;
    let mostBusy = 0;
    const open = async (): Promise<Dedicated> => {
      opened++;
      const conn = await duplicateOf(base);
      return {
        async send(args) {
          // WATCH starts an attempt on this connection and EXEC/UNWATCH ends it.
          if (args[0] === "WATCH") mostBusy = Math.max(mostBusy, ++busy);
          const reply = await conn.send(args);
          if (args[0] === "EXEC" || args[0] === "UNWATCH") busy--;
          return reply;
        },
        close: () => conn.close(),
      };
    };
    const optimistic = optimisticOver(open);
    const attempts = Array.from({ length: 40 }, (_, i) =>
      optimistic([`${root}:k${i}`], [["GET", `${root}:k${i}`]], () => [["SET", `${root}:k${i}`, String(i)]]),
    );
    const results = await Promise.all(attempts);
    expect(results.every((r) => Array.isArray(r) && r.length === 1)).toBe(true);
    expect(await raw.get(`${root}:k39`)).toBe("39");
    expect(opened).toBeGreaterThan(1);
    expect(opened).toBeLessThanOrEqual(OPTIMISTIC_CONNECTIONS);
    expect(mostBusy).toBeGreaterThan(1);

    // Closing refuses what waits and what comes next, typed.
    const waiting = Array.from({ length: OPTIMISTIC_CONNECTIONS + 4 }, (_, i) =>
      optimistic([`${root}:w${i}`], [["GET", `${root}:w${i}`]], () => undefined).then(
        () => "done",
        (error: { code?: string }) => error.code,
      ),
    );
    optimistic.close();
    const outcomes = await Promise.all(waiting);
    expect(outcomes).toContain("ERR_CONNECTION");
    await expect(optimistic([`${root}:x`], [], () => undefined)).rejects.toMatchObject({ code: "ERR_CONNECTION" });
  });

  it("keep exactly one winner among racing conditional saves now that they run in parallel", async () => {
    const root = randomRoot("roptrace");
    roots.push(root);
    const storage = await openStorage({ url: REDIS_URL, root, workspaceId: "w" });
    try {
      const first = await storage.artifacts.save("plan", { v: 0 });
      const racers = await Promise.allSettled(
        Array.from({ length: 24 }, (_, i) =>
          storage.artifacts.save("plan", { v: i + 1 }, { ifVersion: first.version }),
        ),
      );
      expect(racers.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of racers) if (r.status === "rejected") expect(r.reason).toMatchObject({ code: "ERR_CONFLICT" });
    } finally {
      await storage.close();
    }
  });
});
