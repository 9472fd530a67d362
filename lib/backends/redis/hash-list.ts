/**
 * Listing a prefix of the hash layout (hash.ts). The hash is the index, so what is listed is
 * exactly what has a value. Walks use HSCAN (incremental: never one long command on a big
 * prefix); a sorted page reads the names with HKEYS and selects its first ones, so its cost grows
 * with the names of that collection (never with anyone else's) — docs/redis-index.md has the figures.
 */
import { compareNames, type PageOptions } from "../driver.js";
import { type RedisCommander, typed } from "./tx.js";

/** The values as callers see them: undefined where missing or expired. */
export type Live = (client: RedisCommander, raws: readonly unknown[]) => Promise<unknown[]>;

const SCAN_COUNT = "1000";

/** HSCAN, field and value pairs per reply; a field may come twice while the hash is resized. */
async function* hscan(client: RedisCommander, data: string): AsyncGenerator<unknown[]> {
  let cursor = "0";
  do {
    const [next, flat] = (await client.sendCommand(["HSCAN", data, cursor, "COUNT", SCAN_COUNT])) as [
      string,
      unknown[],
    ];
    yield flat;
    cursor = String(next);
  } while (cursor !== "0");
}

/** Live names in batches (a name may repeat across batches, see hscan). */
export async function* hashNames(
  open: () => Promise<RedisCommander>,
  data: string,
  live: Live,
): AsyncGenerator<string[]> {
  try {
    const client = await open();
    for await (const flat of hscan(client, data)) {
      const names: string[] = [];
      const raws: unknown[] = [];
      for (let i = 0; i < flat.length; i += 2) {
        names.push(String(flat[i]));
        raws.push(flat[i + 1]);
      }
      const values = await live(client, raws);
      const batch = names.filter((_, i) => values[i] !== undefined);
      if (batch.length > 0) yield batch;
    }
  } catch (error) {
    throw typed(error);
  }
}

/** Live entries and the UTF-8 bytes of their values (without the expiry fields.ts adds). */
export async function hashStats(
  client: RedisCommander,
  data: string,
  live: Live,
): Promise<{ entries: number; bytes: number }> {
  const seen = new Set<string>();
  let entries = 0;
  let bytes = 0;
  for await (const flat of hscan(client, data)) {
    const names: string[] = [];
    const raws: unknown[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const name = String(flat[i]);
      if (seen.has(name)) continue;
      seen.add(name);
      names.push(name);
      raws.push(flat[i + 1]);
    }
    for (const value of await live(client, raws)) {
      if (value === undefined) continue;
      entries++;
      bytes += Buffer.byteLength(String(value));
    }
  }
  return { entries, bytes };
}

/**
 * One sorted page: HKEYS and the names whose #ttl expiry has passed, in one round trip; only
 * those names' values are read to tell whether they are really gone (#ttl may be stale).
 */
export async function hashPage(
  client: RedisCommander,
  keys: { data: string; ttl: string },
  { after, startsWith, limit }: PageOptions,
  live: Live,
  now: () => Promise<number>,
): Promise<string[]> {
  const at = await now();
  const [all, expired] = (await Promise.all([
    client.sendCommand(["HKEYS", keys.data]),
    client.sendCommand(["ZRANGEBYSCORE", keys.ttl, "-inf", `(${at}`]),
  ])) as [unknown[], unknown[]];
  const candidates: string[] = [];
  for (const raw of all) {
    const name = String(raw);
    if (
      (after === undefined || compareNames(name, after) > 0) &&
      (startsWith === undefined || name.startsWith(startsWith))
    ) {
      candidates.push(name);
    }
  }
  const suspect = new Set(expired.map(String));
  // A page needs only its first names in order: selecting them is O(n log page), where sorting
  // every name of a 100k collection took most of the page's 430 ms. Suspects may drop out, so
  // enough names are kept to fill the page whatever the checks find.
  const names = smallestNames(candidates, limit + suspect.size);
  if (suspect.size === 0) return names.slice(0, limit);
  const out: string[] = [];
  for (let from = 0; from < names.length && out.length < limit; ) {
    const chunk = names.slice(from, from + (limit - out.length));
    from += chunk.length;
    const check = chunk.filter((name) => suspect.has(name));
    const gone = new Set<string>();
    if (check.length > 0) {
      const values = await live(client, (await client.sendCommand(["HMGET", keys.data, ...check])) as unknown[]);
      check.forEach((name, i) => {
        if (values[i] === undefined) gone.add(name);
      });
    }
    out.push(...chunk.filter((name) => !gone.has(name)));
  }
  return out;
}

/** The `k` smallest names in listing order (compareNames), sorted; all of them, sorted, when fewer. */
export function smallestNames(names: readonly string[], k: number): string[] {
  if (k >= names.length / 4) return [...names].sort(compareNames).slice(0, k);
  const out: string[] = [];
  for (const name of names) {
    if (out.length === k && compareNames(name, out[k - 1] as string) >= 0) continue;
    let lo = 0;
    let hi = out.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareNames(out[mid] as string, name) <= 0) lo = mid + 1;
      else hi = mid;
    }
    out.splice(lo, 0, name);
    if (out.length > k) out.pop();
  }
  return out;
}
