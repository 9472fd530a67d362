/**
 * Change messages of one tick are merged per channel (lib/backends/redis/outbox.ts): a watcher
 * reads the same changes in the same order, from fewer PUBLISHes.
 */
import { createClient } from "@redis/client";
import { describe, expect, it } from "vitest";
import { redisDriver } from "../../lib/backends/redis/driver.js";
import { changesOf, Publisher } from "../../lib/backends/redis/notify.js";
import { connectRedis } from "../../lib/backends/redis/open.js";
import { type Message, Outbox } from "../../lib/backends/redis/outbox.js";
import { REDIS_URL } from "../support/env.js";
import { redisRoots } from "../support/redis-roots.js";

const newRoot = redisRoots("routbox");
const m = (p: string, o: Message["o"], n: string[] | null): Message => ({ p, o, n, s: "me" });

describe("Outbox", () => {
  it("merges a channel's messages of one tick while prefix and op stay the same, and keeps their order", async () => {
    const published: Array<[string, string]> = [];
    const outbox = new Outbox<string>(async (_client, channel, text) => published.push([channel, text]));
    const sent = [
      outbox.send("c", "one", m("w:notes", "set", ["a"])),
      outbox.send("c", "one", m("w:notes", "set", ["b", "a"])),
      outbox.send("c", "two", m("v:notes", "set", ["z"])),
      outbox.send("c", "one", m("w:other", "set", ["o"])),
      outbox.send("c", "one", m("w:notes", "delete", ["a"])),
      outbox.send("c", "one", m("w:notes", "set", ["c"])),
      outbox.send("c", "one", m("w:notes", "clear", null)),
      outbox.send("c", "one", m("w:notes", "clear", null)),
      outbox.send("other client", "one", m("w:notes", "clear", null)),
    ];
    await Promise.all(sent);
    const of = (channel: string) => published.filter(([c]) => c === channel).map(([, text]) => JSON.parse(text));
    expect(of("one")).toEqual([
      m("w:notes", "set", ["a", "b", "a"]),
      m("w:other", "set", ["o"]),
      m("w:notes", "delete", ["a"]),
      m("w:notes", "set", ["c"]),
      m("w:notes", "clear", null),
      m("w:notes", "clear", null),
      m("w:notes", "clear", null),
    ]);
    expect(of("two")).toEqual([m("v:notes", "set", ["z"])]);
    // What a watcher makes of it: each write's names, in order, as if sent one by one.
    expect(published.filter(([c]) => c === "one").flatMap(([, text]) => changesOf(text))).toEqual([
      { prefix: "w:notes", name: "a", op: "set" },
      { prefix: "w:notes", name: "b", op: "set" },
      { prefix: "w:notes", name: "a", op: "set" },
      { prefix: "w:other", name: "o", op: "set" },
      { prefix: "w:notes", name: "a", op: "delete" },
      { prefix: "w:notes", name: "c", op: "set" },
      { prefix: "w:notes", name: null, op: "clear" },
      { prefix: "w:notes", name: null, op: "clear" },
      { prefix: "w:notes", name: null, op: "clear" },
    ]);
    // A later tick starts afresh.
    await outbox.send("c", "one", m("w:notes", "set", ["d"]));
    expect(of("one").at(-1)).toEqual(m("w:notes", "set", ["d"]));
  });
});

describe("watched writes on Redis", () => {
  it("publish one message for a burst of writes to one collection, naming every write", async () => {
    const root = newRoot();
    const channel = `${root}:ws:w#changes`;
    const subscriber = createClient({ url: REDIS_URL });
    await subscriber.connect();
    const connection = await connectRedis(REDIS_URL);
    try {
      const heard: string[] = [];
      await subscriber.subscribe(channel, (text) => heard.push(text));
      const store = redisDriver(async () => connection.commander, { publisher: new Publisher() }).scope(
        `${root}:ws:w:notes`,
      );
      const names = Array.from({ length: 30 }, (_, i) => `k${i}`);
      await Promise.all(names.map((name) => store.set(name, "v")));
      // Delivery to the subscriber: until every name was heard, however many messages carried them.
      const count = () => heard.reduce((sum, text) => sum + changesOf(text).length, 0);
      for (let waited = 0; count() < names.length && waited < 5000; waited += 10) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(heard).toHaveLength(1);
      expect(
        changesOf(heard[0] as string)
          .map((c) => c.name)
          .sort(),
      ).toEqual([...names].sort());
      await store.clear();
    } finally {
      await subscriber.quit();
      await connection.close();
    }
  });
});
