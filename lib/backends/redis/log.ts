/**
 * The change log of a tracked prefix (keys.ts tracksChanges), shared by both value layouts:
 * `<prefix>#log`, a stream capped at ~LOG_LIMIT entries, one entry per write with an auto
 * (time-based) id; fields `v <nonce>`, then `n <name>` per name. The newest entry's
 * `<id>.<nonce>` is the prefix's version.
 */
import { randomUUID } from "node:crypto";
import type { PrefixStore } from "../driver.js";
import type { RedisCommander } from "./tx.js";

type LogEntry = [id: string, fields: string[]];
const VERSION = /^(\d{1,20}-\d{1,20})(?:\.([0-9a-z]+))?$/;

/**
 * A stream created anew (after a clear deleted the log) numbers from the clock again, so within
 * one millisecond it can hand out an id the old log had. Each entry therefore carries a nonce,
 * unique per process (random) and per write (counter): a version is the id AND the nonce.
 */
export class Nonces {
  readonly #base = Math.floor(Math.random() * 36 ** 8).toString(36);
  #count = 0;
  next(): string {
    this.#count++;
    return `${this.#base}${this.#count.toString(36)}`;
  }
}

function versionOf([id, fields]: LogEntry): string {
  return fields[0] === "v" ? `${id}.${fields[1]}` : String(id); // 0.1.0's entries carry no nonce
}

/** The XADD that logs a write of `names` (capped at ~`cap` entries). */
export function logEntry(log: string, cap: string, nonces: Nonces, names: readonly string[]): string[] {
  const command = ["XADD", log, "MAXLEN", "~", cap, "*", "v", nonces.next()];
  for (const name of names) command.push("n", name);
  return command;
}

type Run = <T>(work: (client: RedisCommander) => Promise<T>) => Promise<T>;

/** version() and changedSince() of a tracked prefix whose entries exist while the key `valuesKey` does. */
export function changeLog(
  run: Run,
  log: string,
  valuesKey: string,
): Required<Pick<PrefixStore, "version" | "changedSince">> {
  return {
    version: () =>
      run(async (client) => {
        // Plain reads, not MULTI: at maxmemory Redis refuses anything queued in a MULTI. In this
        // order a write landing between them can only turn an answer into "unknown", never into "0".
        const [newest, listed] = (await Promise.all([
          client.sendCommand(["XREVRANGE", log, "+", "-", "COUNT", "1"]),
          client.sendCommand(["EXISTS", valuesKey]),
        ])) as [LogEntry[], unknown];
        if (newest.length > 0) return versionOf(newest[0] as LogEntry);
        // No log and no entries: the empty state, always "0". No log but entries (a clear cut short,
        // a delete at maxmemory): nothing can vouch for them, so a version that matches no other.
        return Number(listed) === 0 ? "0" : `unknown-${randomUUID()}`;
      }),
    changedSince: (version: string) =>
      run(async (client) => {
        if (version === "0") {
          const [logs, listed] = (await Promise.all([
            client.sendCommand(["EXISTS", log]),
            client.sendCommand(["EXISTS", valuesKey]),
          ])) as [unknown, unknown];
          // From the empty state, only "still empty" is certain: a log that appeared since may have
          // been cut short by a clear racing a write, so it is no proof of what changed.
          return Number(logs) === 0 && Number(listed) === 0 ? [] : undefined;
        }
        const id = VERSION.exec(version)?.[1];
        if (id === undefined) return undefined;
        const entries = (await client.sendCommand(["XRANGE", log, id, "+"])) as LogEntry[];
        // The log loses entries only from its head (trim) or all at once (clear, a restore from an
        // older snapshot — where new ids come from the clock, above any id a reader saw, and new
        // nonces never match). So if the reader's own entry is still first, every change after it is there.
        if (entries[0] === undefined || versionOf(entries[0]) !== version) return undefined;
        const names = new Set<string>();
        for (const [, fields] of entries.slice(1)) {
          for (let i = 0; i < fields.length; i += 2) {
            if (fields[i] === "v") continue;
            if (fields[i] !== "n") return undefined; // 0.1.0's clear marker: everything may have changed
            names.add(String(fields[i + 1]));
          }
        }
        return [...names];
      }),
  };
}
