/**
 * setQuota and quota() on Redis (quota.ts has the keys and the write path). Setting a quota on a
 * workspace that has none must count its use without losing a write that races the count, while
 * writers only look for a quota once per QUOTA_REFRESH_MS:
 *   1. SET the limit key to a "counting" marker (expiring, should setQuota die midway);
 *   2. wait QUOTA_REFRESH_MS + COUNT_MARGIN_MS, so every process's cached "no quota" has run out
 *      and every write it let through has landed; from now on writers see the marker and wait;
 *   3. count the data prefixes as stats() does (entries, bytes, and the expiry of timed entries);
 *   4. publish usage and limit in one MULTI; waiting writers go on under the quota.
 * A workspace that already has a quota skips the wait (its writers all take the quota path) and is
 * recounted, which also repairs a usage counter a tenant tampered with. null deletes all of it.
 */
import { PermissionDeniedError, UnsupportedStoreError } from "../../errors.js";
import { joinKey, metaKey } from "../../keys.js";
import { QUOTA_REFRESH_MS, type Quota, type QuotaUsage } from "../../quota.js";
import type { QuotaBook } from "../driver.js";
import { adoptStrings } from "./adopt.js";
import { decodeField, liveAt } from "./fields.js";
import { hscan } from "./hash-list.js";
import { liveBatches, serverMs } from "./list.js";
import { canWatch } from "./optimistic.js";
import { deniedQuota, type QuotaGate } from "./quota.js";
import { expiringMember, parseExpiring, parseStored, type QuotaKeys, quotaKeys, sizeField } from "./quota-ledger.js";
import { exec, type RedisCommander, typed } from "./tx.js";

/** How long after its cache ran out a write may still reach the server; step 2 waits this on top. */
export const COUNT_MARGIN_MS = 500;
/** A "counting" marker outlives a setQuota that died midway by this much, then the workspace has no quota. */
const MARKER_TTL_MS = 600_000;
const BATCH = 1000;

interface Count {
  entries: number;
  bytes: number;
  /** [member, bytes, expiresAt] of each live entry with an expiry. */
  timed: Array<[string, number, number]>;
}

/** A key-layout prefix: live names from its index (as stats()), bytes by STRLEN, expiries from #ttl. */
async function countKeys(client: RedisCommander, prefix: string, into: Count): Promise<void> {
  const keys = {
    index: metaKey(prefix, "index"),
    ttl: metaKey(prefix, "ttl"),
    key: (name: string) => joinKey(prefix, name),
  };
  const seen = new Set<string>();

  for await (const batch of liveBatches(client, keys, BATCH)) {
    const names = batch.filter((name) => !seen.has(name) && seen.add(name));
    if (names.length === 0) continue;
    const full = names.map((name) => joinKey(prefix, name));
    // Expiries from PTTL (read beside the server's clock), not #ttl: a plain overwrite (SET XX)
    // leaves a stale #ttl hint behind.
    const [lengths, pttls, time] = (await Promise.all([
      Promise.all(full.map((key) => client.sendCommand(["STRLEN", key]))),
      Promise.all(full.map((key) => client.sendCommand(["PTTL", key]))),
      client.sendCommand(["TIME"]),
    ])) as [unknown[], unknown[], unknown];
    const now = serverMs(time);
    full.forEach((member, i) => {
      const pttl = Number(pttls[i]);
      if (pttl === -2) return;
      const bytes = Number(lengths[i]);
      into.entries++;
      into.bytes += bytes;
      if (pttl >= 0) into.timed.push([member, bytes, now + pttl]);
    });
  }
}

/** A hash-layout prefix: its live fields, as hashStats counts them. */
async function countHash(client: RedisCommander, prefix: string, now: number, into: Count): Promise<void> {
  const seen = new Set<string>();
  for await (const flat of hscan(client, metaKey(prefix, "data"))) {
    for (let i = 0; i < flat.length; i += 2) {
      const name = String(flat[i]);
      if (seen.has(name)) continue;
      seen.add(name);
      const field = decodeField(String(flat[i + 1]));
      if (!liveAt(field, now)) continue;
      const bytes = Buffer.byteLength(field.value);
      into.entries++;
      into.bytes += bytes;
      if (field.expiresAt !== undefined) into.timed.push([joinKey(prefix, name), bytes, field.expiresAt]);
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function redisQuotaBook(
  gate: QuotaGate,
  connect: () => Promise<RedisCommander>,
  layoutOf: (prefix: string) => "keys" | "hash",
): QuotaBook {
  const set = async (base: string, quota: Quota | null, prefixes: readonly string[]) => {
    const client = await connect();
    if (!canWatch(client)) {
      throw new UnsupportedStoreError(
        "quotas on Redis need conditional writes (WATCH) on a connection of their own; open the storage by URL",
      );
    }
    const keys = quotaKeys(base);
    if (quota === null) {
      await client.sendCommand(["DEL", keys.limit, keys.usage, keys.expiring]);
      gate.remember(base, { kind: "none" }, Date.now());
      return;
    }
    const before = parseStored(await client.sendCommand(["GET", keys.limit]));
    await client.sendCommand(["SET", keys.limit, JSON.stringify({ counting: true }), "PX", String(MARKER_TTL_MS)]);
    gate.remember(base, { kind: "counting" }, Date.now());
    try {
      await countAndPublish(client, keys, quota, prefixes, before.kind !== "limit");
    } catch (error) {
      // Writers must not wait out the marker for nothing: the quota goes back to what it was.
      const back = before.kind === "limit" ? ["SET", keys.limit, JSON.stringify(before.limit)] : ["DEL", keys.limit];
      await client.sendCommand(back).catch(() => {});
      throw error;
    }
    gate.remember(base, { kind: "limit", limit: quota }, Date.now());
  };

  const countAndPublish = async (
    client: RedisCommander,
    keys: QuotaKeys,
    quota: Quota,
    prefixes: readonly string[],
    wait: boolean,
  ) => {
    if (wait) await sleep(QUOTA_REFRESH_MS + COUNT_MARGIN_MS);
    const now = serverMs(await client.sendCommand(["TIME"]));
    const count: Count = { entries: 0, bytes: 0, timed: [] };
    for (const prefix of prefixes) {
      if (layoutOf(prefix) === "hash") {
        // A prefix still in the string layout is moved first, as its first use would (adopt.ts).
        await adoptStrings(client, prefix, gate.clock);
        await countHash(client, prefix, now, count);
      } else await countKeys(client, prefix, count);
    }
    const publish: string[][] = [
      ["DEL", keys.usage, keys.expiring],
      ["HSET", keys.usage, "entries", String(count.entries), "bytes", String(count.bytes)],
    ];
    for (let i = 0; i < count.timed.length; i += BATCH) {
      const part = count.timed.slice(i, i + BATCH);
      publish.push(
        ["HSET", keys.usage, ...part.flatMap(([member, bytes]) => [sizeField(member), String(bytes)])],
        ["ZADD", keys.expiring, ...part.flatMap(([member, bytes, at]) => [String(at), expiringMember(bytes, member)])],
      );
    }
    publish.push(["SET", keys.limit, JSON.stringify(quota)]);
    await exec(client, publish);
  };

  return {
    async set(base, quota, prefixes) {
      try {
        await set(base, quota, prefixes);
      } catch (error) {
        const mapped = typed(error);
        throw mapped instanceof PermissionDeniedError ? deniedQuota(base, mapped) : mapped;
      }
    },
    async read(base): Promise<QuotaUsage | undefined> {
      try {
        const client = await connect();
        const keys = quotaKeys(base);
        const now = await gate.clock.now(client);
        const reads = [
          ["GET", keys.limit],
          ["HMGET", keys.usage, "entries", "bytes"],
          ["ZRANGEBYSCORE", keys.expiring, "-inf", `(${now}`],
        ];
        // Where a reshard splits these keys: one read each (a report, not a check, needs no single instant).
        const [raw, usage, expired] = (await exec(client, reads, ({ send }) =>
          Promise.all(reads.map((read) => send(read))),
        )) as [unknown, unknown[], unknown[]];
        const stored = parseStored(raw);
        // While counting there is no use to report yet: quota() falls back to stats().
        if (stored.kind !== "limit") return undefined;
        let entries = Number(usage[0] ?? 0);
        let bytes = Number(usage[1] ?? 0);
        // Expired entries count until a write settles them; stats() hides them already.
        for (const entry of expired.map(String)) {
          entries--;
          bytes -= parseExpiring(entry).bytes;
        }
        return { limit: stored.limit, entries, bytes };
      } catch (error) {
        throw typed(error);
      }
    },
  };
}
