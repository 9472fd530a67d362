/**
 * Listing a Redis prefix: every live name (`names`) or one sorted page (`page`). Index members
 * all score 0, so `ZRANGE <index> (<after> + BYLEX LIMIT 0 <n>` reads a page in O(log n + n);
 * expiries of TTL'd names are kept apart in `<prefix>#ttl` (score = expiry in ms), and a page
 * finds the names whose expiry has passed with one `ZMSCORE`.
 *
 * A recorded expiry is a hint, not the truth: a plain overwrite of an existing name is one
 * `SET … XX` that leaves `#ttl` (and an old-layout score) as they were, while the value lost its
 * TTL. So a name whose recorded expiry passed is hidden only once `EXISTS` confirms its value is
 * gone (`stillThere`); names whose expiry has not passed cost nothing extra.
 *
 * Before 0.3 the index scored each member by its expiry (`+inf` without one). Such members
 * (score > 0) are still read correctly: `names` takes their score as their expiry, and a page
 * of an index that still has any falls back to listing every name and sorting (O(n log n)),
 * until a write rewrites them or `rebuildIndex` migrates the prefix. Listing never writes, so
 * read-only ACL users can list.
 */
import { compareNames, type PageOptions } from "../driver.js";
import { type RedisCommander, typed } from "./tx.js";

const SCAN_COUNT = "1000";
const SCAN_BATCH = 1000;

/** A sorted-set score as Redis sends it: "inf" in RESP2, a number in RESP3. */
export function score(value: unknown): number {
  if (typeof value === "number") return value;
  const text = String(value);
  if (text === "inf" || text === "+inf") return Number.POSITIVE_INFINITY;
  if (text === "-inf") return Number.NEGATIVE_INFINITY;
  return Number(text);
}

export function serverMs(time: unknown): number {
  const [seconds, micros] = time as [string, string];
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/**
 * Every member of a sorted set with its score, via ZSCAN: unlike paging by offset it never
 * skips a member that stays put while others come and go (it may repeat one; callers dedupe).
 */
export async function* scanSortedSet(client: RedisCommander, key: string): AsyncGenerator<[string, unknown]> {
  let cursor = "0";
  do {
    const [next, flat] = (await client.sendCommand(["ZSCAN", key, cursor, "COUNT", SCAN_COUNT])) as [string, unknown[]];
    for (let i = 0; i < flat.length; i += 2) yield [String(flat[i]), flat[i + 1]];
    cursor = String(next);
  } while (cursor !== "0");
}

export interface ListKeys {
  index: string;
  ttl: string;
  /** The value's key of a name. */
  key: (name: string) => string;
}

/** Of `names` (whose recorded expiry passed), those whose value still exists, in their order. */
export async function stillThere(client: RedisCommander, keys: ListKeys, names: readonly string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const replies = await Promise.all(names.map((name) => client.sendCommand(["EXISTS", keys.key(name)])));
  return names.filter((_, i) => Number(replies[i]) > 0);
}

/** Whether a member is live at `now`: its own score (old layout), else its #ttl expiry if any. */
function live(memberScore: number, expiry: number | undefined, now: number): boolean {
  if (memberScore !== 0) return memberScore >= now; // Redis expires a key once now > its expiry
  return expiry === undefined || expiry >= now;
}

/** Every live name, each once, in no particular order. */
export async function* listAll(client: RedisCommander, keys: ListKeys): AsyncGenerator<string> {
  const time = client.sendCommand(["TIME"]);
  time.catch(() => {}); // awaited below; this only keeps an early return from leaving it unhandled
  const seen = new Set<string>();
  try {
    // The expiries first: a name given a TTL after this read is listed, as it was live then.
    const expiries = new Map<string, number>();
    for await (const [name, raw] of scanSortedSet(client, keys.ttl)) expiries.set(name, score(raw));
    const now = serverMs(await time);
    let doubtful: string[] = [];
    const confirmed = async () => {
      const there = await stillThere(client, keys, doubtful);
      doubtful = [];
      return there.filter((name) => !seen.has(name) && seen.add(name));
    };
    for await (const [name, raw] of scanSortedSet(client, keys.index)) {
      if (seen.has(name)) continue;
      if (live(score(raw), expiries.get(name), now)) {
        seen.add(name);
        yield name;
      } else if (doubtful.push(name) >= SCAN_BATCH) yield* await confirmed();
    }
    yield* await confirmed();
  } catch (error) {
    throw typed(error);
  }
}

/** One sorted page (see the module comment); `now` is the server's clock. */
export async function listPage(
  client: RedisCommander,
  keys: ListKeys,
  { after, startsWith, limit }: PageOptions,
  now: () => Promise<number>,
): Promise<string[]> {
  const out: string[] = [];
  // Every name starting with `startsWith` sorts at or after it: start there, stop at the first that does not.
  let from =
    after !== undefined && (startsWith === undefined || compareNames(after, startsWith) >= 0)
      ? `(${after}`
      : startsWith !== undefined
        ? `[${startsWith}`
        : "-";
  for (;;) {
    const want = limit - out.length;
    const [range, legacy, timed] = (await Promise.all([
      client.sendCommand(["ZRANGE", keys.index, from, "+", "BYLEX", "LIMIT", "0", String(want)]),
      client.sendCommand(["ZRANGEBYSCORE", keys.index, "(0", "+inf", "LIMIT", "0", "1"]),
      client.sendCommand(["EXISTS", keys.ttl]),
    ])) as [unknown[], unknown[], unknown];
    if (legacy.length > 0) return legacyPage(client, keys, { after, startsWith, limit });
    let names = range.map(String);
    const got = names.length;
    const cut = startsWith === undefined ? -1 : names.findIndex((name) => !name.startsWith(startsWith));
    if (cut >= 0) names = names.slice(0, cut);
    let kept = names;
    if (Number(timed) > 0 && names.length > 0) {
      const [scores, at] = await Promise.all([
        client.sendCommand(["ZMSCORE", keys.ttl, ...names]) as Promise<unknown[]>,
        now(),
      ]);
      const lapsed = new Set(names.filter((_, i) => scores[i] != null && score(scores[i]) < at));
      if (lapsed.size > 0) {
        const there = new Set(await stillThere(client, keys, [...lapsed]));
        kept = names.filter((name) => !lapsed.has(name) || there.has(name));
      }
    }
    out.push(...kept);
    // Done when the range ran out, left the prefix, or every name it gave was live.
    if (got < want || cut >= 0 || kept.length === names.length) return out;
    from = `(${names[names.length - 1]}`;
  }
}

/** A page of an index still (partly) in the old layout: every live name, filtered and sorted. */
async function legacyPage(
  client: RedisCommander,
  keys: ListKeys,
  { after, startsWith, limit }: PageOptions,
): Promise<string[]> {
  const names: string[] = [];
  for await (const name of listAll(client, keys)) {
    if (
      (after === undefined || compareNames(name, after) > 0) &&
      (startsWith === undefined || name.startsWith(startsWith))
    )
      names.push(name);
  }
  return names.sort(compareNames).slice(0, limit);
}

/**
 * Every live name in batches of about `size`, holding no set of the names seen (for walks over
 * huge prefixes: ZSCAN repeats a member only across a resize). Each batch's expiries are read
 * with one ZMSCORE, only when #ttl exists.
 */
export async function* liveBatches(client: RedisCommander, keys: ListKeys, size: number): AsyncGenerator<string[]> {
  try {
    const [time, timed] = (await Promise.all([
      client.sendCommand(["TIME"]),
      client.sendCommand(["EXISTS", keys.ttl]),
    ])) as [unknown, unknown];
    const now = serverMs(time);
    let batch: Array<[string, number]> = [];
    const flush = async (): Promise<string[]> => {
      const taken = batch;
      batch = [];
      const zero = taken.filter(([, s]) => s === 0).map(([name]) => name);
      const expiries = new Map<string, number>();
      if (Number(timed) > 0 && zero.length > 0) {
        const scores = (await client.sendCommand(["ZMSCORE", keys.ttl, ...zero])) as unknown[];
        zero.forEach((name, i) => {
          if (scores[i] != null) expiries.set(name, score(scores[i]));
        });
      }
      const lapsed = new Set(taken.filter(([name, s]) => !live(s, expiries.get(name), now)).map(([name]) => name));
      const there = new Set(await stillThere(client, keys, [...lapsed]));
      return taken.map(([name]) => name).filter((name) => !lapsed.has(name) || there.has(name));
    };
    for await (const [name, raw] of scanSortedSet(client, keys.index)) {
      batch.push([name, score(raw)]);
      if (batch.length >= size) {
        const names = await flush();
        if (names.length > 0) yield names;
      }
    }
    const names = await flush();
    if (names.length > 0) yield names;
  } catch (error) {
    throw typed(error);
  }
}

/**
 * Live names, counted without reading their values: members, less those whose recorded expiry
 * passed (either layout) and whose value is confirmed gone.
 */
export async function countLive(client: RedisCommander, keys: ListKeys): Promise<number> {
  const now = serverMs(await client.sendCommand(["TIME"]));
  const [all, lapsed, oldLapsed] = (await Promise.all([
    client.sendCommand(["ZCOUNT", keys.index, "-inf", "+inf"]),
    client.sendCommand(["ZRANGEBYSCORE", keys.ttl, "-inf", `(${now}`]),
    client.sendCommand(["ZRANGEBYSCORE", keys.index, "(0", `(${now}`]),
  ])) as [unknown, unknown[], unknown[]];
  const doubtful = [...new Set([...lapsed, ...oldLapsed].map(String))];
  let gone = 0;
  for (let i = 0; i < doubtful.length; i += SCAN_BATCH) {
    const part = doubtful.slice(i, i + SCAN_BATCH);
    gone += part.length - (await stillThere(client, keys, part)).length;
  }
  return Math.max(0, Number(all) - gone);
}
