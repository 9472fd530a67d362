/**
 * Per-workspace quotas on Redis, with plain commands only (no Lua: workspace ACL users may not
 * EVAL, and the driver runs none on its write path). Per workspace base `B` = `<root>:ws:<id>`
 * (`<root>:ws:{<id>}` in the hash-tag layout, so on a cluster all of it shares the workspace's slot):
 *
 *   `<root>#quota:<id>`  the limit, JSON (or a "counting" marker while setQuota counts). Outside
 *                        `B:*`, so a workspace ACL user may read it (`%R~`) but never write it.
 *   `B:#quota`           hash: `entries`, `bytes`, and `k<key>` → bytes for each entry with an expiry.
 *   `B:#quota-ttl`       sorted set of those entries, member `<bytes>:<key>`, score = expiry.
 *
 * A write under a quota is optimistic (optimistic.ts): WATCH the three keys and what it writes,
 * read the limit, the usage and the old sizes, check lib/quota.ts exceeds(), then MULTI: the
 * layout's own commands and HINCRBY of the usage. Entries that expired count until a quota write
 * (or quota()) settles them through `B:#quota-ttl`, which is what stats() already hides.
 * Whether a workspace has a quota is cached per process for at most QUOTA_REFRESH_MS, so a
 * workspace without one pays one GET per second per process, not one per write. docs/operations.md.
 */
import { PermissionDeniedError, StoreCommandError, UnsupportedStoreError } from "../../errors.js";
import { Memo } from "../../memo.js";
import { exceeds, QUOTA_REFRESH_MS, quotaExceeded } from "../../quota.js";
import { warnOnce } from "../../warnings.js";
import type { ServerClock } from "./common.js";
import { canWatch } from "./optimistic.js";
import { type Change, Ledger, parseExpiring, parseStored, quotaKeys, type Stored, sizeField } from "./quota-ledger.js";
import { getBatch, type TickBatch } from "./tick-batch.js";
import { type RedisCommander, typed } from "./tx.js";

/** Attempts of one quota write whose watched keys others keep changing, and how long it waits out a count. */
export const QUOTA_ATTEMPTS = 50;
export const COUNTING_WAIT_MS = 60_000;
/** Expired entries one write settles at most (the rest: the next writes). */
const SETTLE_LIMIT = 100;

/** A layout's write as a quota attempt sees it: what to watch and read, then what that means. */
export interface Plan<R> {
  members: readonly string[];
  watch: readonly string[];
  reads: readonly string[][];
  /** From the layout's read replies (and the server time): the changes, the commands, the result. */
  build(replies: unknown[], now: number): { changes: Change[]; commands: string[][]; result: R };
}

type Outcome<R> = { result: R } | { refused: Error };
interface Pending {
  plan: Plan<unknown>;
  resolve(result: unknown): void;
  reject(error: unknown): void;
}
/** Writes one attempt carries at most, and their members: bounds one MULTI. */
const BATCH_WRITES = 256;
const BATCH_MEMBERS = 2000;

const COUNTING = Symbol("counting");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Quota state of the workspaces one driver writes, cached per process (see the module comment). */
export class QuotaGate {
  readonly #cache = new Memo<string, { at: number; stored: Stored }>();
  readonly #refreshing = new Map<string, Promise<Stored>>();
  readonly #queues = new Map<string, Pending[]>();
  /** First reads of one tick as one MGET (tick-batch.ts); not on a cluster, whose keys span slots. */
  readonly #limits: TickBatch<unknown> | undefined;
  constructor(
    readonly clock: ServerClock,
    batched = false,
  ) {
    this.#limits = batched ? getBatch() : undefined;
  }

  /** Remembers what a read sent at `at` (local ms) saw; a later reading never loses to an older one. */
  remember(base: string, stored: Stored, at: number): void {
    const known = this.#cache.get(base);
    if (!known || known.at <= at) this.#cache.set(base, { at, stored });
  }

  /** Whether writes of `base` take the quota path: cached, read again once the cache is QUOTA_REFRESH_MS old. */
  active(client: RedisCommander, base: string): boolean | Promise<boolean> {
    const known = this.#cache.get(base);
    if (known && Date.now() - known.at < QUOTA_REFRESH_MS) return known.stored.kind !== "none";
    let refreshing = this.#refreshing.get(base);
    if (!refreshing) {
      const at = Date.now();
      const limit = quotaKeys(base).limit;
      refreshing = (this.#limits ? this.#limits.ask(client, limit) : client.sendCommand(["GET", limit]))
        .then(
          (raw) => parseStored(raw),
          (error: unknown) => {
            // A user provisioned before quotas existed may not read the limit: its writes go on
            // unchecked (as before), and the operator is told to provision it again.
            if (!(typed(error) instanceof PermissionDeniedError)) throw error;
            warnOnce(
              "KVWS_QUOTA_UNREADABLE",
              `this Redis user may not read ${quotaKeys(base).limit}, so its writes cannot obey a quota there; provision it again (provisionWorkspaceUser) to grant that read`,
            );
            return { kind: "none" } as Stored;
          },
        )
        .then((stored) => {
          this.remember(base, stored, at);
          return stored;
        })
        .finally(() => this.#refreshing.delete(base));
      this.#refreshing.set(base, refreshing);
    }
    return refreshing.then((stored) => stored.kind !== "none");
  }

  /**
   * One optimistic attempt of `plans` (in order) under the quota of `base`: each one's result or
   * refusal, null when a watched key changed (try again), or COUNTING while setQuota counts.
   */
  async #attempt(
    client: RedisCommander,
    base: string,
    plans: readonly Plan<unknown>[],
  ): Promise<Outcome<unknown>[] | null | typeof COUNTING> {
    if (!canWatch(client)) {
      throw new UnsupportedStoreError(
        "a workspace with a quota needs conditional writes (WATCH) on its own connection, which this Redis client does not give; open the storage by URL",
      );
    }
    const keys = quotaKeys(base);
    const now = await this.clock.now(client);
    const at = Date.now();
    const members = [...new Set(plans.flatMap((plan) => plan.members))];
    const reads: string[][] = [
      ["GET", keys.limit],
      ["HMGET", keys.usage, "entries", "bytes", ...members.map(sizeField)],
      ["ZRANGEBYSCORE", keys.expiring, "-inf", `(${now}`, "LIMIT", "0", String(SETTLE_LIMIT)],
    ];
    const offsets = plans.map((plan) => {
      const offset = reads.length;
      reads.push(...plan.reads);
      return offset;
    });
    let outcome: Outcome<unknown>[] | typeof COUNTING | undefined;
    const done = await client.optimistic(
      [...new Set([keys.limit, keys.usage, keys.expiring, ...plans.flatMap((plan) => plan.watch)])],
      reads,
      (replies) => {
        const stored = parseStored(replies[0]);
        this.remember(base, stored, at);
        // Not thrown: an error inside an attempt drops its connection (optimistic.ts).
        if (stored.kind === "counting") {
          outcome = COUNTING;
          return undefined;
        }
        const built = plans.map((plan, i) => {
          const offset = offsets[i] as number;
          return plan.build(replies.slice(offset, offset + plan.reads.length), now);
        });
        if (stored.kind === "none") {
          // Removed meanwhile: plain writes.
          outcome = built.map((b) => ({ result: b.result }));
          return built.flatMap((b) => b.commands);
        }
        const [entries, bytes, ...sizeList] = replies[1] as unknown[];
        const sizes = new Map<string, string>();
        members.forEach((member, i) => {
          if (sizeList[i] != null) sizes.set(member, String(sizeList[i]));
        });
        const mine = new Set(members);
        const settled = (replies[2] as unknown[]).map(String).filter((e) => !mine.has(parseExpiring(e).member));
        const ledger = new Ledger({ entries: Number(entries ?? 0), bytes: Number(bytes ?? 0) }, sizes, settled);
        const commands: string[][] = [];
        outcome = built.map((b) => {
          const { delta, commit } = ledger.plan(b.changes);
          if (exceeds(stored.limit, ledger.usage, delta)) {
            return { refused: quotaExceeded(base, stored.limit, ledger.usage, delta) };
          }
          commit();
          commands.push(...b.commands);
          return { result: b.result };
        });
        commands.push(...ledger.commands(keys));
        return commands;
      },
    );
    if (outcome === undefined || done === null) return null;
    return outcome;
  }

  /** One attempt for transact's loop: null means read again (a watched key changed, or a count is under way). */
  async once<R>(client: RedisCommander, base: string, plan: Plan<R>): Promise<R | null> {
    const outcome = await this.#attempt(client, base, [plan]);
    if (outcome === COUNTING) {
      await sleep(50);
      return null;
    }
    if (outcome === null) return null;
    const [only] = outcome as [Outcome<R>];
    if ("refused" in only) throw only.refused;
    return only.result;
  }

  /**
   * `plan` under the quota, retried while others change the watched keys or setQuota counts.
   * Writes of one workspace that arrive while an attempt is out go together in the next one
   * (one WATCH, one MULTI), each checked against what the ones before it used.
   */
  guard<R>(client: RedisCommander, base: string, plan: () => Plan<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const pending: Pending = { plan: plan(), resolve: resolve as (r: unknown) => void, reject };
      const queue = this.#queues.get(base);
      if (queue) queue.push(pending);
      else {
        const started = [pending];
        this.#queues.set(base, started);
        void this.#drain(client, base, started);
      }
    });
  }

  async #drain(client: RedisCommander, base: string, queue: Pending[]): Promise<void> {
    while (queue.length > 0) {
      let members = 0;
      let take = 0;
      while (take < queue.length && take < BATCH_WRITES && (take === 0 || members < BATCH_MEMBERS)) {
        members += (queue[take] as Pending).plan.members.length;
        take++;
      }
      const batch = queue.splice(0, take);
      try {
        const outcomes = await this.#settle(
          client,
          base,
          batch.map((p) => p.plan),
        );
        batch.forEach((p, i) => {
          const outcome = outcomes[i] as Outcome<unknown>;
          if ("refused" in outcome) p.reject(outcome.refused);
          else p.resolve(outcome.result);
        });
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.#queues.delete(base);
  }

  async #settle(client: RedisCommander, base: string, plans: Plan<unknown>[]): Promise<Outcome<unknown>[]> {
    const deadline = Date.now() + COUNTING_WAIT_MS;
    for (let tries = 0; tries < QUOTA_ATTEMPTS; ) {
      const outcome = await this.#attempt(client, base, plans);
      if (outcome === COUNTING) {
        if (Date.now() > deadline) break;
        await sleep(50);
        continue;
      }
      if (outcome !== null) return outcome;
      tries++;
      await sleep(Math.random() * Math.min(50, 2 ** tries));
    }
    throw new StoreCommandError(
      `gave up a write under the quota of ${base} after ${QUOTA_ATTEMPTS} attempts: others kept writing the workspace (or its quota was being counted)`,
    );
  }
}

/** The hook a quota-scoped prefix store gets: its workspace base and the driver's gate. */
export interface QuotaHook {
  base: string;
  gate: QuotaGate;
}

/**
 * `quota` when writes of its workspace must take the quota path now (QuotaGate.active), else
 * undefined; synchronously while the gate knows, so the common write allocates no promise for it.
 */
export function quotaPath(
  client: RedisCommander,
  quota: QuotaHook | undefined,
): QuotaHook | undefined | Promise<QuotaHook | undefined> {
  if (quota === undefined) return undefined;
  const active = quota.gate.active(client, quota.base);
  if (typeof active === "boolean") return active ? quota : undefined;
  return active.then((yes) => (yes ? quota : undefined));
}

/** What a tenant's NOPERM on the limit key means for setQuota. */
export function deniedQuota(base: string, cause: unknown): PermissionDeniedError {
  return new PermissionDeniedError(
    `setQuota needs the operator's connection: this user may not write ${quotaKeys(base).limit} (a workspace's ACL user cannot change its own quota)`,
    { cause },
  );
}
