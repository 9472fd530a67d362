/** What MapCore keeps per prefix, and the helpers that read it. */
import { SEPARATOR } from "../keys.js";
import type { ChangeLog } from "./change-log.js";
import type { SortedNames } from "./sorted-names.js";

// Keyv keeps a Map's expiry inside the value, serialised last: `{"value":…,"expires":<ms>}`.
const EXPIRES = /"expires":(\d+)\}$/;

export function expired(value: unknown): boolean {
  const expires =
    typeof value === "string"
      ? Number(EXPIRES.exec(value)?.[1] ?? Number.NaN)
      : (value as { expires?: unknown } | null)?.expires;
  return typeof expires === "number" && expires <= Date.now();
}

/**
 * What a prefix with entries costs: its keys, its version, and a change log once someone follows it.
 * The listing holds full keys, not names: a write has just hashed its key for the Map, and V8 keeps
 * that hash in the string, so listing it costs no second hash (a name set did: ~8% of a memory set).
 */
export interface PrefixState {
  /** `<prefix>:<name>` of every name listed. */
  readonly keys: Set<string>;
  version: number;
  log: ChangeLog | undefined;
  /** Expiry (ms) of the names written here with a TTL, once there is one: listing hides, TTL writes prune. */
  expiring: Map<string, number> | undefined;
  /** The names in listing order, once a page was asked for: kept from then on. */
  sorted: SortedNames | undefined;
}

/** The names of a prefix's keys (each `<prefix>:<name>`). */
export function namesOf(keys: Iterable<string>, prefix: string): string[] {
  const at = prefix.length + SEPARATOR.length;
  const out: string[] = [];
  for (const key of keys) out.push(key.slice(at));
  return out;
}
