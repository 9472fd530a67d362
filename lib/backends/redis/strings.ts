/**
 * The string layout of the Redis driver (the workspace registry, and every prefix before 0.4):
 * plain commands in MULTI/EXEC, no Lua. Per prefix, beside the values at `<prefix>:<name>`:
 *
 *   `<prefix>#index`  sorted set, member = name, score 0 (so pages are ZRANGE … BYLEX ranges).
 *                     Listing reads it (O(entries in scope), never SCAN); see list.ts.
 *   `<prefix>#ttl`    sorted set of the names written with a TTL, score = expiry in ms on the
 *                     server's clock: a hint, since a plain rewrite leaves its entry. Listing
 *                     hides a name whose expiry has passed once EXISTS confirms it is gone.
 *   `<prefix>#log`    only where `tracksChanges(prefix)`: a stream capped at ~LOG_LIMIT entries,
 *                     one entry per write with an auto (time-based) id; fields `v <nonce>`, then
 *                     `n <name>` per name. The newest entry's `<id>.<nonce>` is the version.
 *
 * Invariant: every value has an index member (index ⊇ values). A write queues ZADD before SET and
 * a delete DEL before ZREM inside one MULTI, so no interleaving of writers, deletes and clears can
 * leave a value unlisted; a member whose value expired is hidden by its #ttl score (or, if
 * evicted, listed until rebuildIndex) — never the reverse. See docs/redis-index.md.
 */
import { StorageFullError } from "../../errors.js";
import { joinKey, metaKey, tracksChanges } from "../../keys.js";
import type { Decision, Entry, PrefixStore, RegistryName } from "../driver.js";
import { removalApart, writeApart } from "./apart.js";
import { type Registry, redisString, type ServerClock, startRegistry, utf8, validTtl } from "./common.js";
import { countLive, listAll, listPage, liveBatches } from "./list.js";
import { changeLog, logEntry as logEntryOf, type Nonces } from "./log.js";
import { type Notify, notifyDecisions } from "./notify.js";
import { canWatch, noWatch, transactLoop } from "./optimistic.js";
import { expiredNames, restoreMembers } from "./prune.js";
import { type QuotaHook, quotaPath } from "./quota.js";
import { decisionTargets, deleteTargets, keysPlan, storedBytes, transactPlan, writeTargets } from "./quota-plans.js";
import { exec, type RedisCommander, typed } from "./tx.js";

const CLEAR_BATCH = 1000;
/** Refused overwrite probes in a row after which a prefix's writes skip the probe (see overwrite). */
const NEW_STREAK = 4;

export function stringScope(
  prefix: string,
  connect: () => Promise<RedisCommander>,
  cap: string,
  clock: ServerClock,
  nonces: Nonces,
  notify: Notify = async () => {},
  quota?: QuotaHook,
  registry?: Registry,
): PrefixStore {
  const index = metaKey(prefix, "index");
  const ttlKey = metaKey(prefix, "ttl");
  const log = metaKey(prefix, "log");
  // 0.1.0 kept a counter here; it is only ever deleted now (clear, rebuildIndex).
  const legacyVersion = metaKey(prefix, "version");
  const tracked = tracksChanges(prefix);
  const key = (name: string) => utf8(joinKey(prefix, name));
  const logEntry = (names: readonly string[]) => logEntryOf(log, cap, nonces, names);
  const listKeys = { index, ttl: ttlKey, key };

  // Errors of raw clients (redisDriverFor) get the same types as connectRedis's.
  const run = async <T>(work: (client: RedisCommander) => Promise<T>): Promise<T> => {
    try {
      return await work(await connect());
    } catch (error) {
      throw typed(error);
    }
  };

  /**
   * A plain overwrite of one name that exists: `SET … XX` alone. An existing value has its member
   * (index ⊇ values), and nothing in between can remove it, so the index needs no command; a
   * stale #ttl hint it leaves is read as one (list.ts). Refused (nil) for a new name, which then
   * takes the MULTI below. Not for tracked prefixes (the log), quotas (the ledger) or TTLs.
   * A prefix that keeps getting new names would pay a refused probe per write: after NEW_STREAK
   * refusals in a row its writes skip the probe for 16, 32, … up to 1024 writes (either path is
   * correct for any name; only the cost differs), and one accepted overwrite ends that.
   */
  let refusals = 0;
  let skip = 0;
  /** `SET … XX` (with GET, `replaced` is the value it replaced), or undefined where it may not be sent. */
  const setExisting = async (client: RedisCommander, name: string, value: unknown, get: boolean) => {
    if (tracked) return undefined;
    const q = quotaPath(client, quota);
    if (q !== undefined && (q instanceof Promise ? (await q) !== undefined : true)) return undefined;
    const command = ["SET", key(name), redisString(value), "XX"];
    if (get) command.push("GET");
    const replaced = (await client.sendCommand(command)) ?? undefined;
    if (replaced !== undefined) await notify(client, prefix, "set", [name]);
    return { replaced };
  };
  const overwrite = async (client: RedisCommander, entry: Entry): Promise<boolean> => {
    if (validTtl(entry.ttl) !== undefined) return false;
    if (skip > 0) {
      skip--;
      return false;
    }
    const sent = await setExisting(client, entry.name, entry.value, false);
    if (sent === undefined) return false;
    if (sent.replaced === undefined) {
      refusals++;
      if (refusals >= NEW_STREAK) skip = Math.min(1024, 16 << Math.min(6, refusals - NEW_STREAK));
      return false;
    }
    refusals = 0;
    return true;
  };

  /** `extra`: registry commands queued first in the same MULTI (setRegistering). */
  const write = (entries: readonly Entry[], extra?: Promise<string[][]>) =>
    run(async (client) => {
      if (entries.length === 0) return;
      if (extra === undefined && entries.length === 1 && (await overwrite(client, entries[0] as Entry))) return;
      const before: string[][] = extra ? await extra : [];
      const commands = [...before];
      // Keys and values side by side: one MSET when no entry has a TTL (no array per entry).
      const pairs: string[] = [];
      const ttls: Array<number | undefined> = [];
      const zadd = ["ZADD", index];
      const timed = ["ZADD", ttlKey];
      let now: number | undefined;
      for (const entry of entries) {
        pairs.push(key(entry.name), redisString(entry.value));
        const ttl = validTtl(entry.ttl);
        ttls.push(ttl);
        if (ttl !== undefined) now ??= await clock.now(client);
        zadd.push("0", entry.name);
        if (ttl !== undefined) timed.push(String((now as number) + ttl), entry.name);
      }
      const named = entries.map((entry) => entry.name);
      // Only TTL writes leave expired names behind, so only they prune (both sets). A plain write sends
      // no ZREM of #ttl: a name left there is a hint, confirmed by EXISTS once its time passed (list.ts).
      let gone: string[] = [];
      if (now !== undefined) {
        const pruned = await expiredNames(client, listKeys, now);
        gone = pruned.gone;
        commands.push(...pruned.commands);
        if (gone.length > 0) {
          commands.push(["ZREM", index, ...gone], ["ZREM", ttlKey, ...gone]);
          named.push(...gone);
        }
      }
      commands.push(zadd);
      if (timed.length > 2) commands.push(timed);
      // In entry order, so a name given twice ends with its last entry, as MSET would; PXAT on the
      // clock that scored #ttl (and the quota ledger): all three agree on the instant.
      const sets = () =>
        ttls.map((ttl, i) => {
          const set = ["SET", pairs[2 * i] as string, pairs[2 * i + 1] as string];
          return ttl === undefined ? set : [...set, "PXAT", String((now as number) + ttl)];
        });
      if (entries.length > 1 && now === undefined) commands.push(["MSET", ...pairs]);
      else commands.push(...sets());
      // The pruned names are logged too, so a cache drops them.
      if (tracked) commands.push(logEntry(named));
      const q = await quotaPath(client, quota);
      if (q) {
        const targets = writeTargets(entries, now, key, validTtl);
        await q.gate.guard(client, q.base, () => keysPlan(targets, commands, () => undefined));
      } else {
        // Where a reshard refuses the MULTI: one key per step, the prune left for a later TTL write.
        const log = tracked ? () => logEntry(named) : undefined;
        await exec(client, commands, writeApart({ before, members: zadd, timed, values: sets, log }));
      }
      const written = entries.map((entry) => entry.name);
      if (gone.length > 0) {
        const own = new Set(written);
        const rewritten = gone.filter((name) => !own.has(name));
        if (rewritten.length > 0) await restoreMembers(client, listKeys, rewritten);
      }
      // The message lists each name once (notify.ts), so duplicates need no Set here.
      await notify(client, prefix, "set", written);
    });

  /**
   * Removal is MULTI [DEL values, ZREM members(, XADD log)]; where a reshard refuses it, steps
   * (apart.ts). At maxmemory Redis 7 refuses every command queued in a MULTI (and XADD anywhere):
   * then plain commands, back to back, the log first (readers reload), the members, the values.
   */
  const removal = async (
    client: RedisCommander,
    keys: string[],
    names: readonly string[],
    del: "DEL" | "UNLINK",
    bookkeeping: () => string[][] = () => [],
  ) => {
    const atomic = [[del, ...keys], ["ZREM", index, ...names], ["ZREM", ttlKey, ...names], ...bookkeeping()];
    try {
      const q = await quotaPath(client, quota);
      if (q) {
        const targets = deleteTargets(keys, (k) => k);
        return await q.gate.guard(client, q.base, () =>
          keysPlan(targets, atomic, (old) => old.filter((bytes) => bytes !== undefined).length),
        );
      }
      const apart = removalApart({ del, keys, names, index, ttl: ttlKey, around: bookkeeping });
      return Number((await exec(client, atomic, apart))[0]);
    } catch (error) {
      // At maxmemory a delete still goes through, uncounted (docs/operations.md: setQuota recounts).
      if (!(typed(error) instanceof StorageFullError)) throw error;
      const plain = [
        ["DEL", log, legacyVersion],
        ["ZREM", index, ...names],
        ["ZREM", ttlKey, ...names],
        [del, ...keys],
      ];
      const replies = await Promise.all(plain.map((command) => client.sendCommand(command)));
      return Number(replies[3]);
    }
  };

  /** The same commands write() and remove() send, for transact's decisions (one MULTI). */
  const conditionalWrites = (names: readonly string[], decisions: Decision[], now: number): string[][] => {
    const commands: string[][] = [];
    const changed: string[] = [];
    names.forEach((name, i) => {
      const decision = decisions[i];
      if (decision === undefined) return;
      changed.push(name);
      if (decision === "delete") {
        commands.push(["DEL", key(name)], ["ZREM", index, name], ["ZREM", ttlKey, name]);
        return;
      }
      const ttl = validTtl(decision.ttl);
      const value = redisString(decision.value);
      commands.push(["ZADD", index, "0", name]);
      if (ttl === undefined) commands.push(["ZREM", ttlKey, name], ["SET", key(name), value]);
      else
        commands.push(["ZADD", ttlKey, String(now + ttl), name], ["SET", key(name), value, "PXAT", String(now + ttl)]);
    });
    if (tracked && changed.length > 0) commands.push(logEntry(changed));
    return commands;
  };

  const remove = (names: readonly string[]) =>
    run(async (client) => {
      if (names.length === 0) return 0;
      const removed = await removal(
        client,
        names.map(key),
        names,
        "DEL",
        tracked ? () => [logEntry(names)] : undefined,
      );
      if (removed > 0) await notify(client, prefix, "delete", names);
      return removed;
    });

  const store: PrefixStore = {
    prefix,
    get: (name) => run(async (client) => (await client.sendCommand(["GET", key(name)])) ?? undefined),
    getMany: (names) =>
      run(async (client) => {
        if (names.length === 0) return [];
        const values = (await client.sendCommand(["MGET", ...names.map(key)])) as unknown[];
        return values.map((value) => value ?? undefined);
      }),
    has: (name) => run(async (client) => Number(await client.sendCommand(["EXISTS", key(name)])) > 0),
    set: (name, value, ttl) => write([{ name, value, ttl }]),
    // The caller expects the name to exist, so a refusal is not counted as a new name (overwrite).
    replace: (name, value) => run(async (client) => (await setExisting(client, name, value, true))?.replaced),
    setMany: (entries) => write(entries),
    ...(registry && {
      setRegistering: (entries: readonly Entry[], names: readonly RegistryName[]) =>
        write(entries, startRegistry(registry, prefix, names, quota?.base)),
    }),
    delete: async (name) => (await remove([name])) > 0,
    deleteMany: (names) => remove(names),
    transact: (names, decide) =>
      transactLoop(
        decide,
        (decideOnce) =>
          run(async (client) => {
            if (!canWatch(client)) throw noWatch();
            const keys = names.map(key);
            const now = await clock.now(client);
            let decisions: Decision[] = [];
            const q = await quotaPath(client, quota);
            if (q) {
              const plan = transactPlan({
                members: keys,
                watch: keys,
                read: ["MGET", ...keys],
                old: (raw) => (raw == null ? undefined : storedBytes(raw)),
                decide: (raws, at) => {
                  decisions = decideOnce(raws.map((value) => value ?? undefined));
                  const commands = conditionalWrites(names, decisions, at);
                  return { targets: decisionTargets(names, decisions, at, validTtl), commands, result: decisions };
                },
              });
              const result = await q.gate.once(client, q.base, plan);
              if (result === null) return null;
              await notifyDecisions(notify, client, prefix, names, result);
              return result;
            }
            // Watching the values is enough: every write or delete of a name changes its key.
            const done = await client.optimistic(keys, [["MGET", ...keys]], ([values]) => {
              decisions = decideOnce((values as unknown[]).map((value) => value ?? undefined));
              return conditionalWrites(names, decisions, now);
            });
            if (done === null) return null;
            await notifyDecisions(notify, client, prefix, names, decisions);
            return decisions;
          }),
        prefix,
      ),
    async *names() {
      const client = await connect().catch((error) => Promise.reject(typed(error)));
      yield* listAll(client, listKeys);
    },
    page: (options) => run((client) => listPage(client, listKeys, options, () => clock.now(client))),
    clear: () =>
      run(async (client) => {
        // Batches keep Redis responsive on huge scopes; a write landing between batches survives,
        // as it would after clear(). The log goes with the first batch: readers reload.
        for (;;) {
          const names = ((await client.sendCommand(["ZRANGE", index, "0", String(CLEAR_BATCH - 1)])) as unknown[]).map(
            String,
          );
          if (names.length === 0) break;
          // A clear logs nothing: its batches drop the log, which readers take for "reload".
          await removal(client, names.map(key), names, "UNLINK", () => [
            ["DEL", log],
            ["DEL", legacyVersion],
          ]);
        }
        // Left: bookkeeping of an empty index (a log after deletes, 0.1.0's counter). One key per DEL,
        // so a half-migrated slot serves each; #ttl first, so a TTL write landing meanwhile keeps its entry.
        for (const bookkeeping of [ttlKey, log, legacyVersion]) await client.sendCommand(["DEL", bookkeeping]);
        await notify(client, prefix, "clear", null);
      }),
    async *scan() {
      const client = await connect().catch((error) => Promise.reject(typed(error)));
      yield* liveBatches(client, listKeys, CLEAR_BATCH);
    },
    stats: () =>
      run(async (client) => {
        // Entries from the index alone; bytes by STRLEN, which reads no value out. ZSCAN may repeat a
        // member while the set is resized under it, so bytes are a measure, entries are exact.
        const entries = await countLive(client, listKeys);
        let bytes = 0;
        for await (const names of liveBatches(client, listKeys, CLEAR_BATCH)) {
          const lengths = await Promise.all(names.map((name) => client.sendCommand(["STRLEN", key(name)])));
          for (const length of lengths) bytes += Number(length);
        }
        return { entries, bytes };
      }),
  };
  if (!tracked) return store;

  Object.assign(store, changeLog(run, log, index));
  return store;
}
