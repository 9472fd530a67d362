/**
 * Driver.watch on Redis: one subscribe-mode connection per watcher, on the channels of the
 * scopes it watches (notify.ts). A message names what changed; for artifacts and workflows the
 * value is read back, so watch.ts can report the version (an entry written again meanwhile
 * reports the later version). Messages are handled one after another: in order per name.
 */
import { warnOnce } from "../../warnings.js";
import type { PrefixStore, StoreChange } from "../driver.js";
import { changesOf, channelOf, originOf, type Publisher, type Subscribe, WATCH_RECHECK_MS } from "./notify.js";

// Versions live inside artifact and workflow values (collections/version.ts); only those are read back.
const VERSIONED = /[:{](artifacts|workflows)}?$/;

const RESET: StoreChange = { prefix: null, name: null, op: "reset" };

export function redisWatch(subscribe: Subscribe, scope: (prefix: string) => PrefixStore, publisher: Publisher) {
  return (listener: (change: StoreChange) => void, bases: readonly string[] = []): (() => void) => {
    let ended = false;
    let unsubscribe: (() => void) | undefined;
    let queue: Promise<void> = Promise.resolve();
    const deliver = (change: StoreChange) => {
      if (!ended) listener(change);
    };
    const hear = (text: string) => {
      queue = queue.then(async () => {
        for (const change of changesOf(text)) {
          if (change.op === "set" && change.prefix !== null && change.name !== null && VERSIONED.test(change.prefix)) {
            const value = await scope(change.prefix)
              .get(change.name)
              .catch(() => undefined);
            deliver(value === undefined ? change : { ...change, value });
          } else deliver(change);
        }
      });
    };
    const stopLocal = publisher.listen(bases, hear);
    const onMessage = (text: string) => {
      if (originOf(text) !== publisher.origin) hear(text);
    };
    // Writers in other processes learn of this watcher within WATCH_RECHECK_MS: what they wrote
    // before may be missed, so the watcher reloads once then.
    const settled = setTimeout(() => deliver(RESET), WATCH_RECHECK_MS + 100);
    settled.unref();
    subscribe(bases.map(channelOf), onMessage, () => deliver(RESET)).then(
      (stop) => {
        if (ended) stop();
        else unsubscribe = stop;
      },
      (error: unknown) => {
        // Changes of this process still arrive; other processes' cannot: say so once, and reset.
        warnOnce(
          "KVWS_WATCH_SUBSCRIBE",
          `watch() could not subscribe to ${bases.map(channelOf).join(", ")}; changes made by other processes will not be reported: ${
            error instanceof Error ? error.message : String(error)
          }`,
        );
        deliver(RESET);
      },
    );
    return () => {
      ended = true;
      stopLocal();
      clearTimeout(settled);
      unsubscribe?.();
    };
  };
}
