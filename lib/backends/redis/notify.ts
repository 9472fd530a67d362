/**
 * The change feed on Redis (storage.watch): writers PUBLISH what they changed on the channel
 * `<base>#changes` of the prefix's workspace (or root), watchers SUBSCRIBE to it (on a cluster:
 * SPUBLISH and SSUBSCRIBE, see Publisher). A writer publishes only while someone listens: it asks
 * the server (PUBSUB NUMSUB) at most once per WATCH_RECHECK_MS per channel, so a storage that
 * nobody watches pays one command per second per workspace it writes, not one per write. Until
 * every writer has asked once, a new watcher may miss changes: it gets a reset WATCH_RECHECK_MS
 * after it subscribed (watch.ts: reload then). Messages carry names, never values.
 */
import { changeBase } from "../../keys.js";
import { Memo } from "../../memo.js";
import { warnOnce } from "../../warnings.js";
import type { StoreChange } from "../driver.js";
import { type ChangeOp, type Message, Outbox } from "./outbox.js";
import { numsubBatch } from "./tick-batch.js";
import type { RedisCommander } from "./tx.js";

export const WATCH_RECHECK_MS = 1000;
/** Channels whose listener count is remembered per process at most; more are asked again. */
const REMEMBERED = 10_000;

/** The channel of a scope (keys.ts changeBase): `app:ws:a#changes`, `app#changes`. */
export const channelOf = (base: string) => `${base}#changes`;
export const changeChannel = (prefix: string) => channelOf(changeBase(prefix));

export type { ChangeOp } from "./outbox.js";

type Local = { bases: ReadonlySet<string>; hear(text: string): void };

/**
 * How one driver's writers learn whether a channel has listeners, and tell them. Watchers of the
 * same driver are told at once, in the write's own turn: no change of this process is ever missed.
 */
export class Publisher {
  readonly origin = Math.random().toString(36).slice(2);
  /**
   * On a Redis Cluster: SPUBLISH and PUBSUB SHARDNUMSUB, routed by the channel's slot. Classic
   * PUBLISH goes to every node over the cluster bus, and NUMSUB counts one node's subscribers only,
   * so a writer could ask a node its watcher is not on and never publish. A workspace's channel
   * `<root>:ws:{<id>}#changes` has the workspace's hash tag: it lives on the shard of its keys.
   */
  readonly #sharded: boolean;

  constructor(options: { sharded?: boolean } = {}) {
    this.#sharded = options.sharded === true;
  }

  readonly #listeners = new Memo<string, { at: number; count: number }>(REMEMBERED);
  readonly #local = new Set<Local>();

  listen(bases: readonly string[], hear: (text: string) => void): () => void {
    const local = { bases: new Set(bases), hear };
    this.#local.add(local);
    return () => this.#local.delete(local);
  }

  /**
   * Every write passes here. With nobody listening, and the count known, it returns at once:
   * no message is built, no promise made.
   */
  publish(
    client: RedisCommander,
    prefix: string,
    op: ChangeOp,
    names: readonly string[] | null,
  ): Promise<void> | undefined {
    let message: Message | undefined;
    if (this.#local.size > 0) {
      const base = changeBase(prefix);
      let text: string | undefined;
      for (const local of this.#local) {
        if (local.bases.has(base))
          local.hear((text ??= JSON.stringify((message ??= this.#message(prefix, op, names)))));
      }
    }
    const channel = this.#channel(prefix);
    const known = this.#known(channel);
    if (known) {
      return known.count > 0
        ? this.#outbox.send(client, channel, message ?? this.#message(prefix, op, names))
        : undefined;
    }
    return this.#ask(client, channel).then((asked) =>
      asked.count > 0 ? this.#outbox.send(client, channel, message ?? this.#message(prefix, op, names)) : undefined,
    );
  }

  #message(prefix: string, op: ChangeOp, names: readonly string[] | null): Message {
    return { p: prefix, o: op, n: names === null ? null : [...new Set(names)], s: this.origin };
  }

  readonly #outbox = new Outbox<RedisCommander>((client, channel, text) =>
    client.sendCommand([this.#sharded ? "SPUBLISH" : "PUBLISH", channel, text]),
  );

  /**
   * Asks for the listener count of `prefix`'s channel now, if publish() would: a workspace's first
   * write asks beside its registry's round trip (driver.ts), so it waits for one round trip, not two.
   */
  prime(client: RedisCommander, prefix: string): void {
    const channel = this.#channel(prefix);
    if (!this.#known(channel)) this.#ask(client, channel).catch(() => {});
  }

  /** Channels by prefix: a write looks its channel up rather than building the string twice. */
  readonly #channels = new Memo<string, string>(REMEMBERED);

  #channel(prefix: string): string {
    let channel = this.#channels.get(prefix);
    if (channel === undefined) {
      channel = channelOf(changeBase(prefix));
      this.#channels.set(prefix, channel);
    }
    return channel;
  }

  readonly #asking = new Map<string, Promise<{ at: number; count: number }>>();
  /** Classic channels' counts of one tick in one PUBSUB NUMSUB (tick-batch.ts). */
  readonly #numsub = numsubBatch();

  #known(channel: string): { at: number; count: number } | undefined {
    const known = this.#listeners.get(channel);
    return known && Date.now() - known.at <= WATCH_RECHECK_MS ? known : undefined;
  }

  /** One count per channel at a time, shared by the writers waiting for it. */
  #ask(client: RedisCommander, channel: string): Promise<{ at: number; count: number }> {
    let asking = this.#asking.get(channel);
    if (!asking) {
      const at = Date.now();
      const counting = this.#sharded
        ? (client.sendCommand(["PUBSUB", "SHARDNUMSUB", channel]) as Promise<unknown[]>).then((reply) =>
            Number(reply[1]),
          )
        : this.#numsub.ask(client, channel);
      asking = counting
        .then((count) => {
          const known = { at, count: count || 0 };
          this.#listeners.set(channel, known);
          return known;
        })
        .finally(() => this.#asking.delete(channel));
      this.#asking.set(channel, asking);
    }
    return asking;
  }
}

/** The origin of a message, to skip one's own (heard locally already); undefined when unreadable. */
export function originOf(text: string): string | undefined {
  try {
    return String((JSON.parse(text) as Message).s);
  } catch {
    return undefined;
  }
}

/** The StoreChanges one message stands for (an unreadable message: a reset, so nothing is missed). */
export function changesOf(text: string): StoreChange[] {
  try {
    const { p, o, n } = JSON.parse(text) as Message;
    if (typeof p !== "string" || !["set", "delete", "clear"].includes(o)) throw new Error("not a change");
    if (o === "clear") return [{ prefix: p, name: null, op: "clear" }];
    return (n ?? []).map((name) => ({ prefix: p, name: String(name), op: o }));
  } catch {
    return [{ prefix: null, name: null, op: "reset" }];
  }
}

/** A connection in subscribe mode: messages of `channels`, and `onReset` after it lost some. */
export type Subscribe = (
  channels: readonly string[],
  onMessage: (text: string) => void,
  onReset: () => void,
) => Promise<() => void>;

/** What a scope calls after each write; never fails the write (a refusal is warned about once). */
export type Notify = (
  client: RedisCommander,
  prefix: string,
  op: ChangeOp,
  names: readonly string[] | null,
) => Promise<void>;

export function notifier(publisher: Publisher): Notify {
  return (client, prefix, op, names) => {
    let published: Promise<void> | undefined;
    try {
      published = publisher.publish(client, prefix, op, names);
    } catch (error) {
      published = Promise.reject(error);
    }
    return published === undefined ? DONE : published.catch(warnPublish(prefix));
  };
}

const DONE = Promise.resolve();

function warnPublish(prefix: string) {
  return (error: unknown): void => {
    warnOnce(
      "KVWS_WATCH_PUBLISH",
      `could not tell watchers of ${changeChannel(prefix)} about a change (the write itself succeeded): ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  };
}

/** After a transact: the names it wrote and the names it deleted, each as one message. */
export async function notifyDecisions(
  notify: Notify,
  client: RedisCommander,
  prefix: string,
  names: readonly string[],
  decisions: ReadonlyArray<unknown>,
): Promise<void> {
  const sets = names.filter((_, i) => decisions[i] !== undefined && decisions[i] !== "delete");
  const deletes = names.filter((_, i) => decisions[i] === "delete");
  if (sets.length > 0) await notify(client, prefix, "set", sets);
  if (deletes.length > 0) await notify(client, prefix, "delete", deletes);
}

const publishers = new Map<string, Publisher>();

/**
 * One Publisher per server URL per process, so storages opened separately on one Redis hear each
 * other's writes at once too (a different spelling of the URL only falls back to the channel).
 */
export function publisherFor(url: string, options: { sharded?: boolean } = {}): Publisher {
  const id = `${options.sharded ? "cluster" : "server"} ${url}`;
  let publisher = publishers.get(id);
  if (!publisher) publishers.set(id, (publisher = new Publisher(options)));
  return publisher;
}
