/**
 * Driver.watch on the SQL engines: a watcher registers in `<t>_watchers` (so writers log its
 * scopes' changes, changes.ts), is woken by its engine (PostgreSQL NOTIFY, SQLite's data_version;
 * watch-pg.ts, watch-sqlite.ts) or by a writer of this process, and reads the new rows of
 * `<t>_changes`, one read at a time, so changes arrive in the order they were logged. For
 * artifacts and workflows the value is read back, so watch.ts can report the version (an entry
 * written again meanwhile reports the later version, as on Redis).
 *
 * Resets: once WATCH_RECHECK_MS after the watcher registered (writers of other processes that had
 * asked just before did not log), and whenever the connection was lost; it then connects again
 * with backoff and goes on from where it read.
 */
import { PermissionDeniedError } from "../../errors.js";
import { warnOnce } from "../../warnings.js";
import type { Driver, PrefixStore, StoreChange } from "../driver.js";
import { type ChangeWriter, HEARTBEAT_MS, type LocalWatcher, WATCH_RECHECK_MS } from "./changes.js";

export interface ChangeRow {
  prefix: string;
  name: string | null;
  op: string;
}

/** One watcher's connection to its engine. */
export interface Feed {
  /** Connects (again), registers, and on the first call fixes where reading starts. */
  start(): Promise<void>;
  /** The rows logged since the last read, in order; throws when the connection is lost. */
  read(): Promise<ChangeRow[]>;
  /** Keeps the registration alive. */
  beat(): Promise<void>;
  /** Drops the connection; `final` also removes the registration. */
  stop(final: boolean): Promise<void>;
}

export type OpenFeed = (bases: readonly string[], events: { wake(): void; lost(error: unknown): void }) => Feed;

/** Backoff of reconnecting after a lost connection, from the first to the longest wait. */
export const RETRY_MS = [100, 5000] as const;

const VERSIONED = /:(artifacts|workflows)$/;
const RESET: StoreChange = { prefix: null, name: null, op: "reset" };
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * A registration the role may not make (a workspace role watching the shared `deps`): told once;
 * the watcher still reads what others' registrations have writers log. Anything else is thrown.
 */
export function registerFailed(base: string, error: unknown): void {
  if (!(error instanceof PermissionDeniedError)) throw error;
  warnOnce(
    "KVWS_WATCH_REGISTER",
    `watch() may not register as a watcher of ${base}; changes other processes make there are reported only while someone else watches it: ${message(error)}`,
  );
}

export interface SqlWatch {
  watch(scope: (prefix: string) => PrefixStore): NonNullable<Driver["watch"]>;
  /** Ends every watcher's connection (the storage closes). */
  close(): Promise<void>;
}

export function sqlWatch(changes: ChangeWriter, openFeed: OpenFeed): SqlWatch {
  const stops = new Set<Promise<void>>();
  const ends = new Set<() => void>();
  const watch =
    (scope: (prefix: string) => PrefixStore) =>
    (listener: (change: StoreChange) => void, bases: readonly string[] = []) => {
      let ended = false;
      let up = false;
      let reading = false;
      let again = false;
      let failures = 0;
      let settle: NodeJS.Timeout | undefined;
      let retry: NodeJS.Timeout | undefined;
      let release!: () => void;
      const deliver = (change: StoreChange) => {
        if (!ended) listener(change);
      };
      const local: LocalWatcher = {
        ready: new Promise<void>((resolve) => {
          release = resolve;
        }),
        wake: () => drain(),
      };
      const ready = () => {
        local.ready = undefined;
        release();
      };

      const report = async (rows: readonly ChangeRow[]) => {
        const wanted = new Map<string, Set<string>>();
        for (const row of rows) {
          if (row.op !== "set" || row.name === null || !VERSIONED.test(row.prefix)) continue;
          let names = wanted.get(row.prefix);
          if (!names) wanted.set(row.prefix, (names = new Set()));
          names.add(row.name);
        }
        const values = new Map<string, unknown>();
        for (const [prefix, names] of wanted) {
          const list = [...names];
          const got = await scope(prefix)
            .getMany(list)
            .catch(() => [] as unknown[]);
          list.forEach((name, i) => {
            values.set(`${prefix}\0${name}`, got[i]);
          });
        }
        for (const row of rows) {
          const op = row.op as StoreChange["op"];
          const change: StoreChange = { prefix: row.prefix, name: op === "clear" ? null : row.name, op };
          const value = values.get(`${row.prefix}\0${row.name}`);
          deliver(value === undefined ? change : { ...change, value });
        }
      };

      const drain = (): void => {
        if (ended || !up) return;
        if (reading) {
          again = true;
          return;
        }
        reading = true;
        void (async () => {
          try {
            do {
              again = false;
              await report(await feed.read());
            } while (again && up && !ended);
          } catch (error) {
            down(error);
          } finally {
            reading = false;
          }
        })();
      };

      const down = (error: unknown) => {
        if (ended || !up) return;
        up = false;
        deliver(RESET);
        warnOnce(
          "KVWS_WATCH_LOST",
          `watch() lost its connection and connects again (a reset was reported): ${message(error)}`,
        );
        void feed.stop(false).catch(() => {});
        schedule();
      };

      const schedule = () => {
        const wait = Math.min(RETRY_MS[1], RETRY_MS[0] * 2 ** failures++);
        retry = setTimeout(start, wait);
        retry.unref();
      };

      const start = async () => {
        try {
          await feed.start();
        } catch (error) {
          ready(); // writers of this process go on; this watcher resets and tries again
          if (ended) return;
          warnOnce(
            "KVWS_WATCH_SUBSCRIBE",
            `watch() could not start reading changes; it tries again: ${message(error)}`,
          );
          deliver(RESET);
          void feed.stop(false).catch(() => {});
          schedule();
          return;
        }
        if (ended) return;
        up = true;
        failures = 0;
        ready();
        clearTimeout(settle);
        settle = setTimeout(() => deliver(RESET), WATCH_RECHECK_MS + 100);
        settle.unref();
        drain();
      };

      const forget = changes.register(bases, local);
      const feed = openFeed(bases, { wake: () => drain(), lost: (error) => down(error) });
      const beat = setInterval(() => {
        if (up) feed.beat().catch((error: unknown) => down(error));
      }, HEARTBEAT_MS);
      beat.unref();
      void start();

      const end = () => {
        if (ended) return;
        ended = true;
        up = false;
        ends.delete(end);
        clearTimeout(settle);
        clearTimeout(retry);
        clearInterval(beat);
        forget();
        ready();
        const stopping = feed.stop(true).catch(() => {});
        stops.add(stopping);
        void stopping.then(() => stops.delete(stopping));
      };
      ends.add(end);
      return end;
    };
  return {
    watch,
    async close() {
      for (const end of [...ends]) end();
      await Promise.all([...stops]);
    },
  };
}
