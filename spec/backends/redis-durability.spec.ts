/**
 * durability "replicated" on a server with no replica: every write is refused with
 * NotReplicatedError (the write reached the master, so the error says it may be stored);
 * reads pay no WAIT. And the WAIT's place on the wire: right after the write, after EXEC.
 */
import { afterEach, describe, expect, it } from "vitest";
import { replicatedSend, replicationTimeout } from "../../lib/backends/redis/durable.js";
import { connectRedis } from "../../lib/backends/redis/open.js";
import { openStorage } from "../../lib/storage.js";
import { commandsSent, startPrivateRedis } from "../support/servers.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('durability "replicated"', () => {
  it("sends one WAIT 1 behind the writes of a tick, after EXEC, never for reads alone or inside MULTI", async () => {
    const wire: string[] = [];
    const send = replicatedSend(
      async (args) => {
        wire.push(args.join(" "));
        return args[0] === "WAIT" ? 1 : args[0] === "EXEC" ? ["OK"] : "OK";
      },
      250,
      "test",
    );
    const writes = [send(["SET", "a", "1"]), send(["GET", "a"])];
    for (const command of [["MULTI"], ["SET", "b", "2"], ["ZADD", "i", "0", "b"], ["EXEC"]]) writes.push(send(command));
    writes.push(send(["EVALSHA", "abc", "0"]));
    await Promise.all(writes);
    await send(["GET", "a"]);
    await send(["DEL", "a"]);
    expect(wire).toEqual([
      "SET a 1",
      "GET a",
      "MULTI",
      "SET b 2",
      "ZADD i 0 b",
      "EXEC",
      "EVALSHA abc 0",
      "WAIT 1 250",
      "GET a",
      "DEL a",
      "WAIT 1 250",
    ]);
  });

  it("rejects with ERR_NOT_REPLICATED when WAIT counts no replica, or fails", async () => {
    const zero = replicatedSend(async (args) => (args[0] === "WAIT" ? 0 : "OK"), 10, "here");
    await expect(zero(["SET", "a", "1"])).rejects.toMatchObject({
      code: "ERR_NOT_REPLICATED",
      message: expect.stringMatching(/may or may not be stored/),
    });
    const lost = new Error("connection lost");
    const failing = replicatedSend(async (args) => (args[0] === "WAIT" ? Promise.reject(lost) : "OK"), 10, "here");
    await expect(failing(["DEL", "a"])).rejects.toMatchObject({ code: "ERR_NOT_REPLICATED", cause: lost });
    // The write's own refusal is what the caller gets, not the WAIT's.
    const refused = new Error("OOM");
    const full = replicatedSend(async (args) => (args[0] === "WAIT" ? 1 : Promise.reject(refused)), 10, "here");
    await expect(full(["SET", "a", "1"])).rejects.toBe(refused);
  });

  it("merges the transactions of a tick into one MULTI with one WAIT, and sends none again when WAIT fails", async () => {
    const { server, admin } = await startPrivateRedis(cleanups);
    const connection = await connectRedis(server.url, { durability: "replicated", replicationTimeoutMs: 20 });
    cleanups.push(() => connection.close());
    const tx = connection.commander.transaction as (commands: readonly string[][]) => Promise<unknown[]>;
    const sent = await commandsSent(admin, async () => {
      const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => tx([["SET", `k${i}`, "v"]])));
      // No replica here: every write reached the master, and every caller is told it may not be replicated.
      for (const outcome of outcomes) {
        expect(outcome).toMatchObject({ status: "rejected", reason: { code: "ERR_NOT_REPLICATED" } });
      }
    });
    expect(sent).toEqual({ multi: 1, set: 20, exec: 1, wait: 1 });
  });

  it("waits at most half the command timeout", () => {
    expect(replicationTimeout(10_000)).toBe(1000);
    expect(replicationTimeout(1000)).toBe(500);
    expect(replicationTimeout(10_000, 3000)).toBe(3000);
  });

  it("a conditional write (WATCH … EXEC on its own connection) waits after its EXEC too", async () => {
    const { server } = await startPrivateRedis(cleanups);
    const connection = await connectRedis(server.url, { durability: "replicated", replicationTimeoutMs: 50 });
    cleanups.push(() => connection.close());
    const optimistic = connection.commander.optimistic;
    if (!optimistic) throw new Error("no optimistic connection");
    await expect(optimistic(["dur:k"], [["GET", "dur:k"]], () => [["SET", "dur:k", "v"]])).rejects.toMatchObject({
      code: "ERR_NOT_REPLICATED",
    });
    // Reads and a write with nothing to do send no WAIT: nothing to refuse.
    expect(await optimistic(["dur:k"], [["GET", "dur:k"]], () => undefined)).toEqual([]);
  });

  it.each(["keys", "hash"] as const)(
    "on a master without replicas, %s layout: writes reject typed, reads work, default durability writes",
    async (redisLayout) => {
      const { server } = await startPrivateRedis(cleanups);
      const config = { url: server.url, root: "dur", workspaceId: "w", redisLayout };
      const plain = await openStorage(config, { connectTimeoutMs: 2000 });
      cleanups.push(() => plain.close());
      await plain.collection("c").set("seed", 1);
      const replicated = await openStorage(
        { ...config, durability: "replicated" },
        { connectTimeoutMs: 2000, replicationTimeoutMs: 50 },
      );
      cleanups.push(() => replicated.close());
      expect(replicated.toBootstrapConfig()).toMatchObject({ durability: "replicated" });
      const c = replicated.collection("c");
      expect(await c.get("seed")).toBe(1);
      await expect(c.set("x", 1)).rejects.toMatchObject({ code: "ERR_NOT_REPLICATED" });
      await expect(c.delete("seed")).rejects.toMatchObject({ code: "ERR_NOT_REPLICATED" });
      // "may or may not be stored": the master applied the delete, no replica confirmed it.
      expect(await plain.collection("c").get("seed")).toBeUndefined();
      await plain.collection("c").set("y", 2);
      expect(plain.toBootstrapConfig().durability).toBeUndefined();
    },
  );
});
