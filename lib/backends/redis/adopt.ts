/**
 * Moving a prefix from the string layout (strings.ts: values at `<prefix>:<name>`, listed by
 * `<prefix>#index`; every release before 0.4) into the hash layout (hash.ts). The driver does it
 * on a prefix's first use in a process, before it serves that prefix, so data written by older
 * versions reads as before; rebuildIndexes(…, { layout: "hash" }) does it for a whole root ahead
 * of time (rebuild.ts).
 *
 * Batches of names are moved under WATCH of the index and the values: HSETNX (a value the hash
 * layout already holds is newer and wins), then DEL of the string keys and ZREM of the members,
 * in one MULTI. Someone else moving, writing or deleting meanwhile makes the batch start again,
 * so a name deleted through the hash layout is never brought back. Expiries (PTTL) move with
 * their values. Processes of an older version must not write the prefix meanwhile (docs/redis-index.md).
 */
import { joinKey, metaKey } from "../../keys.js";
import type { ServerClock } from "./common.js";
import { encodeField } from "./fields.js";
import { canWatch } from "./optimistic.js";
import { exec, type RedisCommander } from "./tx.js";

const BATCH = 500;

/** What adoptOnce keeps per driver (hash.ts HashContext has it all). */
export interface Adoption {
  clock: ServerClock;
  /** Prefixes known to be in the hash layout (adopted) in this process. */
  adopted: Set<string>;
  adopting: Map<string, Promise<void>>;
  /** EXISTS of one key, batched with the other first uses of its tick (driver.ts); else its own. */
  exists?: (client: RedisCommander, key: string) => Promise<number>;
}

/** Adopts `prefix`'s string-layout entries once per process; undefined once done. */
export function adoptOnce(ctx: Adoption, prefix: string, client: RedisCommander): Promise<void> | undefined {
  if (ctx.adopted.has(prefix)) return undefined;
  let adopting = ctx.adopting.get(prefix);
  if (!adopting) {
    // Usually nothing to move: the batched EXISTS of the string index says so without a command of its own.
    const holds = ctx.exists ? ctx.exists(client, metaKey(prefix, "index")) : Promise.resolve(1);
    adopting = holds
      .then((count) => (count > 0 ? adoptStrings(client, prefix, ctx.clock) : undefined))
      .then(
        () => {
          ctx.adopted.add(prefix);
          ctx.adopting.delete(prefix);
        },
        (error: unknown) => {
          ctx.adopting.delete(prefix);
          throw error;
        },
      );
    ctx.adopting.set(prefix, adopting);
  }
  return adopting;
}

export interface AdoptReport {
  /** Values moved into the hash. */
  moved: number;
}

/** Moves `prefix`'s string-layout entries, if any, into its hash. Idempotent. */
export async function adoptStrings(client: RedisCommander, prefix: string, clock: ServerClock): Promise<AdoptReport> {
  const index = metaKey(prefix, "index");
  const data = metaKey(prefix, "data");
  const ttl = metaKey(prefix, "ttl");
  const report = { moved: 0 };
  if (!(Number(await client.sendCommand(["EXISTS", index])) > 0)) return report;
  for (;;) {
    const names = ((await client.sendCommand(["ZRANGE", index, "0", String(BATCH - 1)])) as unknown[]).map(String);
    if (names.length === 0) break;
    const keys = names.map((name) => joinKey(prefix, name));
    const now = await clock.now(client);
    const reads = [["MGET", ...keys], ...keys.map((key) => ["PTTL", key])];
    const build = ([values, ...pttls]: unknown[]) => {
      const commands: string[][] = [];
      (values as unknown[]).forEach((value, i) => {
        if (value == null) return; // a member whose value expired or was evicted: only the member goes
        const left = Number(pttls[i]);
        const expiresAt = left > 0 ? now + left : undefined;
        const name = names[i] as string;
        if (expiresAt !== undefined) commands.push(["ZADD", ttl, String(expiresAt), name]);
        commands.push(["HSETNX", data, name, encodeField(String(value), expiresAt)]);
        report.moved++;
      });
      commands.push(["DEL", ...keys], ["ZREM", index, ...names]);
      return commands;
    };
    if (canWatch(client)) {
      const before = report.moved;
      if ((await client.optimistic([index, ...keys], reads, build)) === null) report.moved = before;
    } else {
      // No connection for WATCH (an adapter's cluster client): one read, one MULTI.
      const replies = await Promise.all(reads.map((command) => client.sendCommand(command)));
      await exec(client, build(replies));
    }
  }
  // 0.1.0's counter: never read any more.
  await client.sendCommand(["DEL", metaKey(prefix, "version")]);
  return report;
}
