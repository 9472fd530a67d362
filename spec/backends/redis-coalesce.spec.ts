/**
 * Transactions of one tick share one MULTI … EXEC (lib/backends/redis/coalesce.ts), and the first
 * uses of one tick share one EXISTS, one MGET and one PUBSUB NUMSUB (tick-batch.ts): what each
 * caller gets is still what it would have got alone. On a private server, so the counts are ours.
 */
import { afterEach, describe, expect, it } from "vitest";
import { MERGE_LIMIT } from "../../lib/backends/redis/coalesce.js";
import { connectRedis } from "../../lib/backends/redis/open.js";
import { TICK_BATCH_LIMIT } from "../../lib/backends/redis/tick-batch.js";
import { openStorage, StoreCommandError } from "../../lib/index.js";
import { type Cleanups, commandsSent, startPrivateRedis } from "../support/servers.js";

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function connected() {
  const { server, admin } = await startPrivateRedis(cleanups);
  const connection = await connectRedis(server.url);
  cleanups.push(() => connection.close());
  const tx = connection.commander.transaction as (commands: readonly string[][]) => Promise<unknown[]>;
  return { server, admin, tx };
}

/** PUBSUB NUMSUB calls so far (commandsSent's pattern leaves subcommands out). */
async function numsubCalls(admin: { info(section: string): Promise<unknown> }) {
  const info = String(await admin.info("commandstats"));
  return Number(/cmdstat_pubsub\|numsub:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

describe("Redis transactions of one tick", () => {
  it("go out as one MULTI, each caller getting its own replies", async () => {
    const { admin, tx } = await connected();
    let replies: unknown[][] = [];
    const sent = await commandsSent(admin, async () => {
      replies = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          tx([
            ["SET", `k${i}`, `v${i}`],
            ["GET", `k${i}`],
          ]),
        ),
      );
    });
    expect(sent).toEqual({ multi: 1, set: 50, get: 50, exec: 1 });
    for (const [i, reply] of replies.entries()) expect(reply).toEqual(["OK", `v${i}`]);
  });

  it("fail one transaction alone when one of its commands fails while running", async () => {
    const { admin, tx } = await connected();
    await admin.set("text", "not a number");
    const outcomes = await Promise.allSettled([
      tx([["SET", "a", "1"]]),
      tx([
        ["SET", "b", "1"],
        ["INCR", "text"],
      ]),
      tx([["SET", "c", "1"]]),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(StoreCommandError);
    // As alone: Redis ran the failing transaction's other commands too (no rollback in Redis).
    expect(await admin.mGet(["a", "b", "c"])).toEqual(["1", "1", "1"]);
  });

  it("send each transaction again on its own when the server refuses the batch while queueing", async () => {
    const { admin, tx } = await connected();
    let outcomes: PromiseSettledResult<unknown[]>[] = [];
    const sent = await commandsSent(admin, async () => {
      outcomes = await Promise.allSettled([
        tx([["SET", "a", "1"]]),
        tx([["SET", "only-a-key"]]), // wrong arity: refused at queue time, EXECABORT for the whole batch
        tx([["SET", "c", "1"]]),
      ]);
    });
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(StoreCommandError);
    expect(await admin.mGet(["a", "c"])).toEqual(["1", "1"]);
    // The merged attempt, then one MULTI per transaction.
    expect(sent.multi).toBe(4);
  });

  it(`carry at most ${MERGE_LIMIT} commands each; a bigger one goes alone`, async () => {
    const { admin, tx } = await connected();
    const big = (tag: string) => Array.from({ length: 1000 }, (_, i) => ["SET", `${tag}${i}`, "v"]);
    const sent = await commandsSent(admin, () =>
      Promise.all([
        tx(big("a")),
        tx(big("b")),
        tx(big("c")),
        tx(Array.from({ length: MERGE_LIMIT + 1 }, () => ["PING"])),
      ]),
    );
    // a+b (2000), then c alone (c+PINGs would pass the limit), then the PINGs alone.
    expect(sent.multi).toBe(3);
    expect(sent.set).toBe(3000);
  });
});

describe("first writes of new workspaces in one tick", () => {
  it("share one EXISTS, one MGET and one PUBSUB NUMSUB, and one MULTI", async () => {
    const { server, admin } = await connected();
    const storage = await openStorage({ url: server.url, root: "co" });
    cleanups.push(() => storage.close());
    const count = 20;
    const notes = Array.from({ length: count }, (_, i) => storage.withWorkspace(`w${i}`).collection("notes"));
    const before = await numsubCalls(admin);
    const sent = await commandsSent(admin, () => Promise.all(notes.map((n, i) => n.set("k", { i }))));
    expect(await numsubCalls(admin)).toBe(before + 1);
    // Per write: its data (ZADD + SET) and its two registry entries (one ZADD each, no value key).
    expect(sent).toEqual({ exists: 1, mget: 1, multi: 1, zadd: 3 * count, set: count, exec: 1 });
    expect((await storage.listWorkspaces()).sort()).toEqual(notes.map((_, i) => `w${i}`).sort());
    for (const [i, n] of notes.entries()) expect(await n.get("k")).toEqual({ i });
  });

  it(`ask at most ${TICK_BATCH_LIMIT} keys per command`, async () => {
    const { server, admin } = await connected();
    const storage = await openStorage({ url: server.url, root: "co" });
    cleanups.push(() => storage.close());
    const count = TICK_BATCH_LIMIT + 10;
    const notes = Array.from({ length: count }, (_, i) => storage.withWorkspace(`w${i}`).collection("notes"));
    const sent = await commandsSent(admin, () => Promise.all(notes.map((n) => n.set("k", 1))));
    expect(sent.mget).toBe(Math.ceil(count / TICK_BATCH_LIMIT));
    // Two prefixes checked per write: its collection's, and its workspace's collection registry.
    expect(sent.exists).toBe(Math.ceil((2 * count) / TICK_BATCH_LIMIT));
  });

  it("still refuse the one prefix kept in the hash layout, and write the others", async () => {
    const { server } = await connected();
    const hashed = await openStorage({ url: server.url, root: "co", redisLayout: "hash" });
    cleanups.push(() => hashed.close());
    await hashed.withWorkspace("h").collection("notes").set("k", 1);
    const storage = await openStorage({ url: server.url, root: "co" });
    cleanups.push(() => storage.close());
    const ids = ["a", "h", "b"];
    const outcomes = await Promise.allSettled(
      ids.map((id) => storage.withWorkspace(id).collection("notes").set("x", 2)),
    );
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(/hash layout/);
    expect(await storage.withWorkspace("a").collection("notes").get("x")).toBe(2);
  });
});
