/**
 * Subscribe-mode connections for storage.watch() (notify.ts Subscribe): a connection in subscribe
 * mode can send nothing else, so each watcher gets a copy of the client of its own — ours
 * (connectRedis) or one an app's adapter holds (@keyv/redis's node-redis client, @keyv/valkey's
 * iovalkey/ioredis client) — dropped when the watcher stops or the storage closes.
 */
import type { Subscribe } from "./notify.js";

/** What a node-redis client (any copy) offers here. */
export interface NodeRedisLike {
  duplicate(): unknown;
}

interface NodeRedisCopy {
  readonly isOpen: boolean;
  connect(): Promise<unknown>;
  subscribe(channels: string[], listener: (message: string) => void): Promise<unknown>;
  sSubscribe(channels: string[], listener: (message: string) => void): Promise<unknown>;
  destroy(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}

export interface Subscriptions {
  readonly subscribe: Subscribe;
  /** Drops every connection still open. */
  close(): void;
}

export interface CopyOptions {
  /** Maps what the client rejects with (connectRedis: typed errors); default as is. */
  fail?: (error: unknown) => Error;
  /** SSUBSCRIBE instead of SUBSCRIBE (a Redis Cluster node: cluster-subscribe.ts). */
  sharded?: boolean;
  /** Called when the server moved a sharded channel's slot away (the subscription is gone). */
  onMoved?: () => void;
}

/**
 * One subscribe-mode copy of `client`. After a lost connection node-redis subscribes again by
 * itself, but what was published meanwhile is lost: `onReset` then.
 */
export async function subscribedCopy(
  client: NodeRedisLike,
  channels: readonly string[],
  onMessage: (text: string) => void,
  onReset: () => void,
  options: CopyOptions = {},
): Promise<() => void> {
  const sub = client.duplicate() as NodeRedisCopy;
  sub.on("error", () => {}); // a lost connection shows as the reset below, once it is back
  let connected = false;
  sub.on("ready", () => {
    if (connected) onReset();
    connected = true;
  });
  if (options.onMoved) sub.on("sharded-channel-moved", options.onMoved);
  try {
    await sub.connect();
    if (channels.length > 0) {
      const listener = (message: string) => onMessage(message);
      await (options.sharded ? sub.sSubscribe([...channels], listener) : sub.subscribe([...channels], listener));
    }
  } catch (error) {
    sub.destroy();
    throw options.fail ? options.fail(error) : error;
  }
  return () => {
    if (sub.isOpen) sub.destroy();
  };
}

/** Keeps what `open` returns until it is stopped, so close() can drop all of them. */
export function tracked(open: Subscribe): Subscriptions {
  const stops = new Set<() => void>();
  let closed = false;
  const subscribe: Subscribe = async (channels, onMessage, onReset) => {
    const stop = await open(channels, onMessage, onReset);
    if (closed) {
      stop();
      return () => {};
    }
    const once = () => {
      if (stops.delete(once)) stop();
    };
    stops.add(once);
    return once;
  };
  return {
    subscribe,
    close() {
      closed = true;
      for (const stop of [...stops]) stop();
    },
  };
}

/** Watchers over a node-redis client (standalone): one subscribe-mode copy each. */
export function nodeRedisSubscriptions(client: NodeRedisLike, fail?: (error: unknown) => Error): Subscriptions {
  return tracked((channels, onMessage, onReset) =>
    subscribedCopy(client, channels, onMessage, onReset, fail ? { fail } : {}),
  );
}

type IoClient = Record<string, unknown>;

/**
 * Watchers over an ioredis/iovalkey client (@keyv/valkey): a duplicate() each, which connects by
 * itself and subscribes again after a reconnect (its autoResubscribe); a "ready" after the first
 * is that reconnect: `onReset`.
 */
export function ioSubscriptions(client: IoClient): Subscriptions {
  return tracked(async (channels, onMessage, onReset) => {
    const copy = (client.duplicate as () => IoClient).call(client);
    const on = (event: string, listener: (...args: unknown[]) => void) =>
      (copy.on as (event: string, listener: (...args: unknown[]) => void) => void).call(copy, event, listener);
    const stop = () => (copy.disconnect as () => void).call(copy);
    on("error", () => {});
    const wanted = new Set(channels);
    on("message", (channel, message) => {
      if (wanted.has(String(channel))) onMessage(String(message));
    });
    try {
      if (channels.length > 0) await (copy.subscribe as (...c: string[]) => Promise<unknown>).call(copy, ...channels);
    } catch (error) {
      stop();
      throw error;
    }
    let connected = false;
    const ready = () => {
      if (connected) onReset();
      connected = true;
    };
    // Subscribed means connected: this "ready" has been, the next one is a reconnect.
    ready();
    on("ready", ready);
    return stop;
  });
}
