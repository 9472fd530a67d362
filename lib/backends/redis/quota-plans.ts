/**
 * How each layout's writes look to a quota attempt (quota.ts Plan): which keys to watch and how
 * to read the size of what a write replaces. Key layout: EXISTS + STRLEN of each key (Redis
 * expires keys itself, so a key that exists is live). Hash layout: the fields themselves, whose
 * expiry fields.ts keeps inside the value.
 */
import { joinKey } from "../../keys.js";
import { redisString } from "./common.js";
import { decodeField, liveAt } from "./fields.js";
import type { Plan } from "./quota.js";
import type { Change } from "./quota-ledger.js";

/** What a write leaves at one name: a value of `next` bytes (maybe expiring), or nothing. */
export interface Target {
  next?: number | undefined;
  expiresAt?: number | undefined;
}

/** Bytes a stored value counts for, as stats() counts it on Redis (STRLEN of what is sent). */
export const storedBytes = (value: unknown) => Buffer.byteLength(redisString(value));

/** Bytes of a hash field's live value at `now`; undefined when missing or expired. */
export function fieldBytes(raw: unknown, now: number): number | undefined {
  if (raw == null) return undefined;
  const field = decodeField(String(raw));
  return liveAt(field, now) ? Buffer.byteLength(field.value) : undefined;
}

const changesOf = (members: readonly string[], targets: readonly Target[], old: readonly (number | undefined)[]) =>
  members.map((member, i): Change => ({ member, old: old[i], ...targets[i], next: targets[i]?.next }));

/** Key layout: `targets` by full key; `result` gets the live old sizes (undefined: none). */
export function keysPlan<R>(
  targets: ReadonlyMap<string, Target>,
  commands: string[][],
  result: (old: (number | undefined)[]) => R,
): Plan<R> {
  const members = [...targets.keys()];
  return {
    members,
    watch: members,
    reads: members.flatMap((key) => [
      ["EXISTS", key],
      ["STRLEN", key],
    ]),
    build(replies) {
      const old = members.map((_, i) => (Number(replies[2 * i]) > 0 ? Number(replies[2 * i + 1]) : undefined));
      return { changes: changesOf(members, [...targets.values()], old), commands, result: result(old) };
    },
  };
}

/** Hash layout: `targets` by name within `prefix`, whose values are fields of `data`. */
export function fieldsPlan<R>(
  prefix: string,
  data: string,
  targets: ReadonlyMap<string, Target>,
  commands: string[][],
  result: (old: (number | undefined)[]) => R,
): Plan<R> {
  const names = [...targets.keys()];
  const members = names.map((name) => joinKey(prefix, name));
  return {
    members,
    watch: [data],
    reads: [["HMGET", data, ...names]],
    build([values], now) {
      const old = (values as unknown[]).map((raw) => fieldBytes(raw, now));
      return { changes: changesOf(members, [...targets.values()], old), commands, result: result(old) };
    },
  };
}

/** The targets of a batch of writes (the last write of a name wins, as in Redis). */
export function writeTargets(
  entries: readonly { name: string; value: unknown; ttl?: number | undefined }[],
  now: number | undefined,
  name: (entryName: string) => string,
  ttlOf: (ttl: number | undefined) => number | undefined,
): Map<string, Target> {
  const targets = new Map<string, Target>();
  for (const entry of entries) {
    const ttl = ttlOf(entry.ttl);
    const id = name(entry.name);
    targets.delete(id);
    targets.set(id, {
      next: storedBytes(entry.value),
      ...(ttl === undefined ? {} : { expiresAt: (now as number) + ttl }),
    });
  }
  return targets;
}

export const deleteTargets = (names: readonly string[], name: (n: string) => string) =>
  new Map<string, Target>(names.map((n) => [name(n), {}]));

/** The targets of transact's decisions, in `names` order (undefined decisions change nothing). */
export function decisionTargets(
  names: readonly string[],
  decisions: readonly ({ value: unknown; ttl?: number | undefined } | "delete" | undefined)[],
  now: number,
  ttlOf: (ttl: number | undefined) => number | undefined,
): (Target | undefined)[] {
  return names.map((_, i) => {
    const decision = decisions[i];
    if (decision === undefined) return undefined;
    if (decision === "delete") return {};
    const ttl = ttlOf(decision.ttl);
    return { next: storedBytes(decision.value), ...(ttl === undefined ? {} : { expiresAt: now + ttl }) };
  });
}

/** transact under a quota: `read` the current values, `decide`, and count what the decisions change. */
export function transactPlan<D>(options: {
  members: readonly string[];
  watch: readonly string[];
  read: string[];
  old: (raw: unknown, now: number) => number | undefined;
  decide: (
    raws: readonly unknown[],
    now: number,
  ) => { targets: (Target | undefined)[]; commands: string[][]; result: D };
}): Plan<D> {
  return {
    members: options.members,
    watch: options.watch,
    reads: [options.read],
    build([values], now) {
      const raws = values as unknown[];
      const { targets, commands, result } = options.decide(raws, now);
      const changes: Change[] = [];
      targets.forEach((target, i) => {
        if (target === undefined) return;
        changes.push({
          member: options.members[i] as string,
          old: options.old(raws[i], now),
          ...target,
          next: target.next,
        });
      });
      return { changes, commands, result };
    },
  };
}
