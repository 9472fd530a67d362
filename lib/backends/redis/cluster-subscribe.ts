/**
 * storage.watch() on a Redis Cluster: SSUBSCRIBE on the master of the channel's slot, where
 * writers SPUBLISH (notify.ts Publisher, sharded). Sharded channels of different slots cannot
 * share one SSUBSCRIBE, so each channel of a watcher gets a connection of its own: a copy of the
 * cluster's client for that master (as clusterOptimistic's WATCH connections are).
 *
 * When the slot moves (resharding, failover) Redis ends the subscription: the watcher gets a reset,
 * the channel is subscribed again on the slot's new master once node-redis knows it, and a second
 * reset follows once writers can have noticed (as after watch() starts: watch.ts).
 */
import type { RedisClusterType } from "@redis/client";
import { keySlot } from "./cluster-watch.js";
import { type Subscribe, WATCH_RECHECK_MS } from "./notify.js";
import { type Subscriptions, subscribedCopy, tracked } from "./subscribe.js";

type Cluster = Pick<RedisClusterType, "getSlotMaster" | "nodeClient" | "sendCommand">;

/** Tries to find a moved channel's new master, at this interval, before it gives up. */
const MOVE_ATTEMPTS = 20;
const MOVE_DELAY_MS = 250;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A key in the channel's slot that a workspace's ACL user may read: `<base>:` for a hash-tagged
 * base (its pattern is `<base>:*`); otherwise the channel's own name (only operators watch those).
 */
function slotKey(channel: string): string {
  const base = channel.slice(0, channel.lastIndexOf("#"));
  return /\{[^}]+\}/.test(base) ? `${base}:` : channel;
}

function oneChannel(cluster: Cluster, fail: (error: unknown) => Error): Subscribe {
  return async ([channel], onMessage, onReset) => {
    const name = channel as string;
    let ended = false;
    let stop: () => void = () => {};
    let settle: NodeJS.Timeout | undefined;
    const open = async () => {
      const master = cluster.getSlotMaster(keySlot(name));
      const node = await cluster.nodeClient(master);
      return subscribedCopy(node as never, [name], onMessage, onReset, { fail, sharded: true, onMoved: moved });
    };
    const moved = () => {
      if (ended) return;
      onReset();
      stop();
      void (async () => {
        for (let attempt = 0; attempt < MOVE_ATTEMPTS && !ended; attempt++) {
          try {
            // A routed read follows MOVED, and node-redis refreshes its slot map on the way.
            await cluster.sendCommand(slotKey(name), false, ["EXISTS", slotKey(name)]);
            const next = await open();
            if (ended) next();
            else stop = next;
            // Writers learn of the new subscription within WATCH_RECHECK_MS (they may have asked the
            // new master meanwhile and been told nobody listens): reload once more after that.
            settle = setTimeout(onReset, WATCH_RECHECK_MS + 100);
            settle.unref();
            return;
          } catch {
            await sleep(MOVE_DELAY_MS);
          }
        }
      })();
    };
    stop = await open();
    return () => {
      ended = true;
      clearTimeout(settle);
      stop();
    };
  };
}

/** Watchers on a cluster: one sharded subscription per channel, on its slot's master. */
export function clusterSubscriptions(cluster: Cluster, fail: (error: unknown) => Error): Subscriptions {
  const one = oneChannel(cluster, fail);
  return tracked(async (channels, onMessage, onReset) => {
    const stops: Array<() => void> = [];
    try {
      for (const channel of channels) stops.push(await one([channel], onMessage, onReset));
    } catch (error) {
      for (const stop of stops) stop();
      throw error;
    }
    return () => {
      for (const stop of stops) stop();
    };
  });
}
