/**
 * First-use lookups (a layout check, a quota read, a listener count) asked for in one tick, sent
 * as one multi-key command. 128 first writes of new workspaces in flight then ask one EXISTS, one
 * MGET and one PUBSUB NUMSUB per burst, not one of each per write: each of those is a command the
 * client encodes and parses, and they were a third of a first write's commands.
 *
 * A batch goes to one client (the first caller's; a caller with another one starts a new batch).
 * If the multi-key command fails, each key of the batch is asked again on its own, so one key that
 * this user may not read (NOPERM) fails its own lookup only. Not for a Redis Cluster: the keys of
 * one batch may live in different slots.
 */
import type { RedisCommander } from "./tx.js";

/** Keys one command carries at most. */
export const TICK_BATCH_LIMIT = 512;

interface Waiting<R> {
  readonly key: string;
  resolve(reply: R): void;
  reject(error: unknown): void;
}

export class TickBatch<R> {
  #client: RedisCommander | undefined;
  #waiting: Waiting<R>[] = [];

  /** `many` answers several keys in one command, `one` a single key; both one reply per key. */
  constructor(
    private readonly many: (client: RedisCommander, keys: readonly string[]) => Promise<readonly R[]>,
    private readonly one: (client: RedisCommander, key: string) => Promise<R>,
  ) {}

  ask(client: RedisCommander, key: string): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (this.#waiting.length > 0 && (this.#client !== client || this.#waiting.length >= TICK_BATCH_LIMIT)) {
        this.#flush();
      }
      if (this.#waiting.length === 0) {
        this.#client = client;
        process.nextTick(() => this.#flush());
      }
      this.#waiting.push({ key, resolve, reject });
    });
  }

  #flush(): void {
    const waiting = this.#waiting;
    const client = this.#client as RedisCommander;
    this.#waiting = [];
    this.#client = undefined;
    if (waiting.length === 0) return; // flushed early, after its tick was scheduled
    const alone = (entry: Waiting<R>) => this.one(client, entry.key).then(entry.resolve, entry.reject);
    if (waiting.length === 1) {
      alone(waiting[0] as Waiting<R>);
      return;
    }
    this.many(
      client,
      waiting.map((entry) => entry.key),
    ).then(
      (replies) => {
        for (const [i, entry] of waiting.entries()) entry.resolve(replies[i] as R);
      },
      () => {
        for (const entry of waiting) alone(entry);
      },
    );
  }
}

/** EXISTS of each key, for keys that usually do not exist: one EXISTS of all, each alone only if some does. */
export function existsBatch(): TickBatch<number> {
  const one = (client: RedisCommander, key: string) => client.sendCommand(["EXISTS", key]).then(Number);
  return new TickBatch<number>(async (client, keys) => {
    if (Number(await client.sendCommand(["EXISTS", ...keys])) === 0) return keys.map(() => 0);
    return Promise.all(keys.map((key) => one(client, key)));
  }, one);
}

/** GET of each key, by MGET. */
export function getBatch(): TickBatch<unknown> {
  return new TickBatch<unknown>(
    async (client, keys) => (await client.sendCommand(["MGET", ...keys])) as unknown[],
    (client, key) => client.sendCommand(["GET", key]),
  );
}

/** PUBSUB NUMSUB of each channel: its subscriber count. */
export function numsubBatch(): TickBatch<number> {
  const counts = (reply: unknown) => {
    const flat = reply as unknown[];
    return Array.from({ length: flat.length / 2 }, (_, i) => Number(flat[2 * i + 1]) || 0);
  };
  return new TickBatch<number>(
    async (client, channels) => counts(await client.sendCommand(["PUBSUB", "NUMSUB", ...channels])),
    async (client, channel) => counts(await client.sendCommand(["PUBSUB", "NUMSUB", channel]))[0] ?? 0,
  );
}
