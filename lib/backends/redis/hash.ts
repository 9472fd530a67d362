/**
 * The hash layout of the Redis driver (0.4). Per prefix:
 *
 *   `<prefix>#data`  hash, field = name, value = the stored text (fields.ts adds an expiry).
 *                    It is both the values and the index: a name is listed exactly when it has a
 *                    value, so no interleaving of writers, deletes, clears or crashes can tell them apart.
 *   `<prefix>#ttl`   sorted set of the names written with an expiry, score = expiry (server clock),
 *                    only so that expired fields are found and removed. It may hold names that no
 *                    longer expire (a later plain write, a delete): the sweep checks the field itself.
 *   `<prefix>#log`   tracked prefixes only (log.ts).
 *
 * A plain write is one HSET, a read one HGET: the raw store's own price. Writes with an expiry,
 * writes to tracked prefixes and deletes are one MULTI. Expired fields are hidden by every read
 * and removed by a sweep that timed writes run at most every SWEEP_EVERY_MS per prefix and
 * process, under WATCH (optimistic.ts), so a field written meanwhile is never removed.
 * Prefixes still in the string layout (strings.ts) are moved on first use (adopt.ts).
 */
import { StorageFullError } from "../../errors.js";
import { joinKey, metaKey, tracksChanges } from "../../keys.js";
import type { Decision, Entry, PrefixStore, RegistryName } from "../driver.js";
import { type Adoption, adoptOnce } from "./adopt.js";
import { clearApart, hashRemovalApart, writeApart } from "./apart.js";
import { type Registry, redisString, startRegistry, utf8, validTtl } from "./common.js";
import { decodeField, encodeField, liveAt, timed } from "./fields.js";
import { hashNames, hashPage, hashStats, hscan, type Live } from "./hash-list.js";
import { changeLog, logEntry, type Nonces } from "./log.js";
import { type Notify, notifyDecisions } from "./notify.js";
import { canWatch, noWatch, transactLoop } from "./optimistic.js";
import { type QuotaHook, quotaPath } from "./quota.js";
import { decisionTargets, deleteTargets, fieldBytes, fieldsPlan, transactPlan, writeTargets } from "./quota-plans.js";
import { exec, type RedisCommander, typed } from "./tx.js";

/** Expired names one sweep removes at most, and how often timed writes to one prefix sweep. */
export const SWEEP_LIMIT = 500;
export const SWEEP_EVERY_MS = 1000;

/** What every prefix of one driver shares. */
export interface HashContext extends Adoption {
  connect(): Promise<RedisCommander>;
  cap: string;
  nonces: Nonces;
  /** When each prefix was last swept by this process. */
  swept: Map<string, number>;
  notify: Notify;
  /** Registry commands for setRegistering (driver.ts); without it the storage registers first. */
  registry?: Registry;
}

export function hashScope(prefix: string, ctx: HashContext, quota?: QuotaHook): PrefixStore {
  const keys = {
    data: metaKey(prefix, "data"),
    ttl: metaKey(prefix, "ttl"),
    log: metaKey(prefix, "log"),
    legacyVersion: metaKey(prefix, "version"),
  };
  const { data } = keys;
  const { registry } = ctx;
  const tracked = tracksChanges(prefix);
  const log = (names: readonly string[]) => logEntry(keys.log, ctx.cap, ctx.nonces, names);

  const run = async <T>(work: (client: RedisCommander) => Promise<T>): Promise<T> => {
    try {
      const client = await ctx.connect();
      const adopting = adoptOnce(ctx, prefix, client);
      if (adopting) await adopting;
      return await work(client);
    } catch (error) {
      throw typed(error);
    }
  };

  const open = () => run(async (client) => client);

  /** The stored values as the caller sees them: undefined where missing or expired. */
  const live: Live = async (client, raws) => {
    let now: number | undefined;
    const out: unknown[] = [];
    for (const raw of raws) {
      if (raw == null) out.push(undefined);
      else if (!timed(raw)) out.push(raw);
      else {
        const field = decodeField(String(raw));
        if (field.expiresAt !== undefined) now ??= await ctx.clock.now(client);
        out.push(now === undefined || liveAt(field, now) ? field.value : undefined);
      }
    }
    return out;
  };

  /** HSET (and ZADD of the timed names) for `entries`; `now` is needed only when some have a TTL. */
  const writes = (entries: readonly Entry[], now: number | undefined): string[][] => {
    const hset = ["HSET", data];
    const zadd = ["ZADD", keys.ttl];
    for (const entry of entries) {
      const name = utf8(entry.name);
      const ttl = validTtl(entry.ttl);
      const expiresAt = ttl === undefined ? undefined : (now as number) + ttl;
      if (expiresAt !== undefined) zadd.push(String(expiresAt), name);
      hset.push(name, encodeField(redisString(entry.value), expiresAt));
    }
    // The #ttl member before the field: a write cut short leaves at most a member without a field.
    return zadd.length > 2 ? [zadd, hset] : [hset];
  };

  const sweep = async (client: RedisCommander, now: number) => {
    if (!canWatch(client) || now - (ctx.swept.get(prefix) ?? Number.NEGATIVE_INFINITY) < SWEEP_EVERY_MS) return;
    ctx.swept.set(prefix, now);
    const names = (
      (await client.sendCommand([
        "ZRANGEBYSCORE",
        keys.ttl,
        "-inf",
        `(${now}`,
        "LIMIT",
        "0",
        String(SWEEP_LIMIT),
      ])) as unknown[]
    ).map(String);
    if (names.length === 0) return;
    for (let attempt = 0; attempt < 3; attempt++) {
      const done = await client.optimistic([data], [["HMGET", data, ...names]], ([values]) => {
        const expired: string[] = [];
        const stale: string[] = [];
        (values as unknown[]).forEach((raw, i) => {
          const field = raw == null ? undefined : decodeField(String(raw));
          if (field === undefined || field.expiresAt === undefined) stale.push(names[i] as string);
          else if (!liveAt(field, now)) expired.push(names[i] as string);
        });
        const commands: string[][] = [];
        if (expired.length > 0) commands.push(["HDEL", data, ...expired]);
        if (expired.length + stale.length > 0) commands.push(["ZREM", keys.ttl, ...expired, ...stale]);
        if (tracked && expired.length > 0) commands.push(log(expired));
        return commands;
      });
      if (done !== null) {
        if (done.length > 0) await ctx.notify(client, prefix, "delete", names);
        return;
      } // otherwise someone wrote meanwhile: look again
    }
  };

  /** `extra`: registry commands queued first, in one MULTI with the entries (setRegistering). */
  const write = (entries: readonly Entry[], extra?: Promise<string[][]>) =>
    run(async (client) => {
      if (entries.length === 0) return;
      const first = extra ? await extra : [];
      const now = entries.some((entry) => validTtl(entry.ttl) !== undefined) ? await ctx.clock.now(client) : undefined;
      const steps = writes(entries, now);
      const commands = [...first, ...steps];
      const logged = tracked ? () => log(entries.map((entry) => entry.name)) : undefined;
      if (logged) commands.push(logged());
      const q = await quotaPath(client, quota);
      if (q) {
        const targets = writeTargets(entries, now, utf8, validTtl);
        await q.gate.guard(client, q.base, () => fieldsPlan(prefix, data, targets, commands, () => undefined));
      } else if (commands.length === 1) await client.sendCommand(commands[0] as string[]);
      else {
        const timing = steps.length > 1 ? steps[0] : undefined;
        const values = () => steps.slice(-1);
        await exec(client, commands, writeApart({ before: first, timed: timing, values, log: logged }));
      }
      await ctx.notify(
        client,
        prefix,
        "set",
        entries.map((entry) => entry.name),
      );
      if (now !== undefined) await sweep(client, now);
    });

  /**
   * MULTI [HMGET, HDEL(, XADD)]: the values tell which names were live. At maxmemory Redis 7
   * refuses every command queued in a MULTI; then the log goes first (readers reload), then the rest.
   */
  const remove = (names: readonly string[]) =>
    run(async (client) => {
      if (names.length === 0) return 0;
      const fields = names.map(utf8);
      const atomic = [
        ["HMGET", data, ...fields],
        ["HDEL", data, ...fields],
      ];
      if (tracked) atomic.push(log(names));
      let values: unknown[];
      try {
        const q = await quotaPath(client, quota);
        if (q) {
          const targets = deleteTargets(fields, (name) => name);
          const old = await q.gate.guard(client, q.base, () =>
            fieldsPlan(prefix, data, targets, atomic.slice(1), (bytes) => bytes),
          );
          const removed = old.filter((bytes) => bytes !== undefined).length;
          if (removed > 0) await ctx.notify(client, prefix, "delete", names);
          return removed;
        }
        const apart = tracked ? hashRemovalApart(atomic.slice(0, 2), () => log(names)) : undefined;
        values = (await exec(client, atomic, apart))[0] as unknown[];
      } catch (error) {
        // At maxmemory Redis refuses whatever is queued in a MULTI: plain commands, back to back.
        // At maxmemory a delete still goes through, uncounted (docs/operations.md: setQuota recounts).
        if (!(typed(error) instanceof StorageFullError)) throw error;
        if (tracked) await client.sendCommand(["DEL", keys.log]);
        [values] = (await Promise.all(atomic.slice(0, 2).map((command) => client.sendCommand(command)))) as [unknown[]];
      }
      const removed = (await live(client, values)).filter((value) => value !== undefined).length;
      if (removed > 0) await ctx.notify(client, prefix, "delete", names);
      return removed;
    });

  const transact = (names: readonly string[], decide: (current: readonly unknown[]) => Decision[]) => {
    const fields = names.map(utf8);
    return transactLoop(
      decide,
      (decideOnce) =>
        run(async (client) => {
          if (!canWatch(client)) throw noWatch();
          const now = await ctx.clock.now(client);
          let decisions: Decision[] = [];
          const decided = (values: readonly unknown[], at: number) => {
            const current = values.map((raw) => {
              const field = raw == null ? undefined : decodeField(String(raw));
              return field && liveAt(field, at) ? field.value : undefined;
            });
            decisions = decideOnce(current);
            const sets: Entry[] = [];
            const deletes: string[] = [];
            fields.forEach((name, i) => {
              const decision = decisions[i];
              if (decision === "delete") deletes.push(name);
              else if (decision !== undefined) sets.push({ name, value: decision.value, ttl: decision.ttl });
            });
            const commands = sets.length > 0 ? writes(sets, at) : [];
            if (deletes.length > 0) commands.push(["HDEL", data, ...deletes]);
            if (tracked && commands.length > 0) commands.push(log([...sets.map((s) => s.name), ...deletes]));
            return commands;
          };
          const q = await quotaPath(client, quota);
          if (q) {
            const plan = transactPlan({
              members: fields.map((name) => joinKey(prefix, name)),
              watch: [data],
              read: ["HMGET", data, ...fields],
              old: fieldBytes,
              decide: (raws, at) => {
                const commands = decided(raws, at);
                return { targets: decisionTargets(fields, decisions, at, validTtl), commands, result: decisions };
              },
            });
            const result = await q.gate.once(client, q.base, plan);
            if (result === null) return null;
            await notifyDecisions(ctx.notify, client, prefix, names, result);
            return result;
          }
          const done = await client.optimistic([data], [["HMGET", data, ...fields]], ([values]) =>
            decided(values as unknown[], now),
          );
          if (done === null) return null;
          await notifyDecisions(ctx.notify, client, prefix, names, decisions);
          return decisions;
        }),
      prefix,
    );
  };

  const store: PrefixStore = {
    prefix,
    get: (name) =>
      run(async (client) => (await live(client, [await client.sendCommand(["HGET", data, utf8(name)])]))[0]),
    getMany: (names) =>
      run(async (client) =>
        names.length === 0
          ? []
          : live(client, (await client.sendCommand(["HMGET", data, ...names.map(utf8)])) as unknown[]),
      ),
    // A field without a #ttl member never had an expiry (ZADD comes first), so only those are read.
    has: (name) =>
      run(async (client) => {
        const field = utf8(name);
        const [exists, expiry] = await Promise.all([
          client.sendCommand(["HEXISTS", data, field]),
          client.sendCommand(["ZSCORE", keys.ttl, field]),
        ]);
        if (!(Number(exists) > 0)) return false;
        if (expiry == null) return true;
        return (await live(client, [await client.sendCommand(["HGET", data, field])]))[0] !== undefined;
      }),
    set: (name, value, ttl) => write([{ name, value, ttl }]),
    // HSET cannot be refused for a new field: HGET beside it in one MULTI tells what it replaced,
    // null when the name held no live value (then this wrote a new one; see PrefixStore.replace).
    replace: (name, value) =>
      run(async (client) => {
        if (tracked || (await quotaPath(client, quota)) !== undefined) return undefined;
        const [old] = await exec(client, [["HGET", data, utf8(name)], ...writes([{ name, value }], undefined)]);
        await ctx.notify(client, prefix, "set", [name]);
        return (await live(client, [old]))[0] ?? null;
      }),
    setMany: (entries) => write(entries),
    ...(registry && {
      setRegistering: (entries: readonly Entry[], names: readonly RegistryName[]) =>
        write(entries, startRegistry(registry, prefix, names, quota?.base)),
    }),
    delete: async (name) => (await remove([name])) > 0,
    deleteMany: (names) => remove(names),
    async *names() {
      const seen = new Set<string>();
      for await (const batch of hashNames(open, data, live)) {
        for (const name of batch) {
          if (seen.has(name)) continue;
          seen.add(name);
          yield name;
        }
      }
    },
    scan: () => hashNames(open, data, live),
    page: (options) => run((client) => hashPage(client, keys, options, live, () => ctx.clock.now(client))),
    stats: () => run((client) => hashStats(client, data, live)),
    // One command: the values, their expiries and the log go at once (a reader reloads).
    clear: () =>
      run(async (client) => {
        // Under a quota, batches of counted deletes; a write landing meanwhile survives, as after clear().
        if (await quotaPath(client, quota)) {
          for (let pass = 0; pass < 10 && Number(await client.sendCommand(["HLEN", data])) > 0; pass++) {
            for await (const flat of hscan(client, data)) {
              const batch = flat.filter((_, i) => i % 2 === 0).map(String);
              if (batch.length > 0) await remove(batch);
            }
          }
          await client.sendCommand(["UNLINK", keys.ttl, keys.log, keys.legacyVersion]);
        } else {
          const all = ["UNLINK", data, keys.ttl, keys.log, keys.legacyVersion];
          // A MULTI only for a half-migrated slot's sake (steps); at maxmemory Redis refuses a MULTI, not UNLINK.
          await exec(client, [all], clearApart(keys, data)).catch(async (error) => {
            if (!(typed(error) instanceof StorageFullError)) throw error;
            await client.sendCommand(all);
          });
        }
        await ctx.notify(client, prefix, "clear", null);
      }),
    transact,
  };
  if (tracked) Object.assign(store, changeLog(run, keys.log, data));
  return store;
}
