/**
 * The prune a TTL write of the string layout runs before its MULTI (strings.ts): what it reads,
 * and the repair after it. `#ttl` and old-layout scores are hints (list.ts): PTTL tells which
 * names are really gone.
 */
import { type ListKeys, stillThere } from "./list.js";
import type { RedisCommander } from "./tx.js";

/** Expired members a TTL write prunes (and, on a tracked prefix, logs) at most: bounds one write's work. */
export const PRUNE_LIMIT = 1000;

/**
 * Names whose recorded TTL passed, from #ttl and from members still scored by expiry (the layout
 * before 0.3), at most PRUNE_LIMIT of each. A value gone (PTTL -2) is pruned from both sets by the
 * caller (`gone`); one rewritten since without a TTL (-1: a plain overwrite is one SET XX) only
 * loses its stale hint (`commands`, for the same MULTI); one given a TTL again is left alone.
 */
export async function expiredNames(
  client: RedisCommander,
  keys: ListKeys,
  now: number,
): Promise<{ gone: string[]; commands: string[][] }> {
  const [ttlNames, oldNames] = (
    (await Promise.all([
      client.sendCommand(["ZRANGEBYSCORE", keys.ttl, "-inf", `(${now}`, "LIMIT", "0", String(PRUNE_LIMIT)]),
      client.sendCommand(["ZRANGEBYSCORE", keys.index, "(0", `(${now}`, "LIMIT", "0", String(PRUNE_LIMIT)]),
    ])) as unknown[][]
  ).map((names) => names.map(String)) as [string[], string[]];
  const names = [...new Set([...ttlNames, ...oldNames])];
  const pttls = (await Promise.all(names.map((name) => client.sendCommand(["PTTL", keys.key(name)])))) as unknown[];
  const plain = new Set(names.filter((_, i) => Number(pttls[i]) === -1));
  const commands: string[][] = [];
  const stale = ttlNames.filter((name) => plain.has(name));
  if (stale.length > 0) commands.push(["ZREM", keys.ttl, ...stale]);
  const rescored = oldNames.filter((name) => plain.has(name));
  if (rescored.length > 0) commands.push(["ZADD", keys.index, "XX", ...rescored.flatMap((name) => ["0", name])]);
  return { gone: names.filter((_, i) => Number(pttls[i]) === -2), commands };
}

/**
 * A name pruned as gone may have been written again between the read that found it and the
 * MULTI that removed its member. Such a value is given its member back, so index ⊇ values holds;
 * its TTL (if the new write had one) is no longer known to the listing, which then shows the name
 * until it is deleted or rebuildIndex runs (its readers see it gone once its value expires).
 */
export async function restoreMembers(client: RedisCommander, keys: ListKeys, names: readonly string[]): Promise<void> {
  const back = await stillThere(client, keys, names);
  if (back.length > 0) await client.sendCommand(["ZADD", keys.index, ...back.flatMap((name) => ["0", name])]);
}
