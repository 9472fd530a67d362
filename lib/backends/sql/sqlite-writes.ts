/**
 * The statements and transactions of one SQLite connection, in the order they were issued, with
 * the ones that queued up behind each other committed together. One connection has one
 * transaction at a time, so a statement must not run inside another caller's BEGIN … COMMIT;
 * yet waiting for each commit before starting the next makes every write pay a commit and the
 * hops of its own. So: while the connection works, what arrives waits; what waited then runs as
 * one group, in arrival order, inside one BEGIN IMMEDIATE … COMMIT, and each caller is answered
 * once that COMMIT returned (an acknowledged write is committed, as when it ran alone).
 *
 * A failure reaches only the caller it belongs to. A transaction whose `work` throws is undone
 * to a savepoint taken before it, and the group goes on. Anything else (a statement refused, a
 * failing COMMIT) rolls the whole group back, and each member runs again alone, in order, so the
 * others are committed as if the failing one had been issued alone. A member's `work` may
 * therefore run twice; it already may (a busy database reruns whole transactions), and it must
 * query only through the `query` it is given.
 */
import type { Merge, Query } from "./client.js";
import { isBusy, retryBusy } from "./sqlite-busy.js";

/** Members one group commits at most: bounds how long one COMMIT keeps the others waiting. */
export const GROUP_LIMIT = 256;

interface Member {
  /** A statement of its own (committed on its own), or a transaction's work. */
  text?: string;
  params?: readonly unknown[];
  merge?: Merge | undefined;
  work?: (query: Query) => Promise<unknown>;
  /** Runs outside any transaction once what came before is done (closing the connection). */
  last?: () => Promise<unknown>;
  /** Runs alone: it was in a group that failed, or it is `last`. */
  alone: boolean;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export interface WriteQueue {
  query: Query;
  transaction<T>(work: (query: Query) => Promise<T>): Promise<T>;
  /** Runs `last` once everything issued before it is done, outside any transaction. */
  finish(last: () => Promise<void>): Promise<void>;
}

/** A statement that only reads: a SELECT, or the pragma a watcher polls. */
const reads = (member: Member) => member.text !== undefined && /^(SELECT |PRAGMA data_version$)/.test(member.text);

export function writeQueue(run: Query, busyTimeoutMs: number): WriteQueue {
  const waiting: Member[] = [];
  let working = false;

  const transaction = async <T>(work: (query: Query) => Promise<T>): Promise<T> =>
    retryBusy(async () => {
      // IMMEDIATE takes the write lock now: a deferred transaction that reads first and then
      // writes fails with SQLITE_BUSY when another process wrote in between.
      await run("BEGIN IMMEDIATE");
      try {
        const result = await work(run);
        await run("COMMIT");
        return result;
      } catch (error) {
        await run("ROLLBACK").catch(() => {});
        throw error;
      }
    }, busyTimeoutMs);

  const alone = (member: Member): Promise<unknown> => {
    if (member.last) return member.last();
    if (member.work) return transaction(member.work);
    return retryBusy(() => run(member.text as string, member.params), busyTimeoutMs);
  };

  /**
   * Runs the group in one transaction; false when it failed and was rolled back. A transaction
   * member runs under a savepoint, so its own failure (a conflict its `work` throws) undoes only
   * its statements; it is reported once the others committed. A lock that stayed busy for the
   * whole timeout fails every member: alone, each would wait that long again.
   */
  const together = async (group: Member[]): Promise<boolean> => {
    type Outcome = { value: unknown } | { error: unknown };
    let outcomes: Outcome[];
    try {
      outcomes = await transaction(async (query) => {
        const out: Outcome[] = [];
        for (let i = 0; i < group.length; ) {
          const member = group[i] as Member;
          const key = member.merge?.key;
          let end = i + 1;
          if (key !== undefined) {
            while (end < group.length && (group[end] as Member).merge?.key === key) end++;
          }
          if (end > i + 1) {
            const rows = group.slice(i, end).flatMap((m) => (m.merge as Merge).rows);
            for (const [text, params] of (member.merge as Merge).build(rows)) await query(text, params);
            for (let j = i; j < end; j++) out.push({ value: [] });
            i = end;
            continue;
          }
          if (!member.work) {
            // A run of one statement text goes to the engine at once: one prepared statement
            // runs its calls in the order issued, each starting as the one before it ends.
            while (end < group.length && (group[end] as Member).text === member.text) end++;
            const settled = await Promise.allSettled(group.slice(i, end).map((m) => query(m.text as string, m.params)));
            for (const result of settled) {
              if (result.status === "rejected") throw result.reason;
              out.push({ value: result.value });
            }
            i = end;
            continue;
          }
          i++;
          await query("SAVEPOINT kvws_member");
          try {
            out.push({ value: await member.work(query) });
          } catch (error) {
            if (isBusy(error)) throw error; // the whole group waits and runs again
            // Fails the whole group when SQLite already rolled the transaction back (no savepoint left).
            await query("ROLLBACK TO kvws_member");
            out.push({ error });
          }
          await query("RELEASE kvws_member");
        }
        return out;
      });
    } catch (error) {
      if (!isBusy(error)) return false;
      outcomes = group.map(() => ({ error }));
    }
    group.forEach((member, i) => {
      const outcome = outcomes[i] as Outcome;
      if ("error" in outcome) member.reject(outcome.error);
      else member.resolve(outcome.value);
    });
    return true;
  };

  const next = async () => {
    working = true;
    try {
      while (waiting.length > 0) {
        let size = 1;
        if (!(waiting[0] as Member).alone) {
          while (size < waiting.length && size < GROUP_LIMIT && !(waiting[size] as Member).alone) size++;
        }
        const group = waiting.splice(0, size);
        if (group.length === 1 || group.every(reads)) {
          // Reads alone gain nothing from a transaction, and BEGIN IMMEDIATE would take the write lock.
          for (const member of group) await alone(member).then(member.resolve, member.reject);
        } else if (!(await together(group))) {
          // Rolled back: each runs again alone, ahead of what arrived meanwhile.
          for (const member of group) member.alone = true;
          waiting.unshift(...group);
        }
      }
    } finally {
      working = false;
    }
  };

  const submit = (member: Omit<Member, "resolve" | "reject" | "alone">) =>
    new Promise<unknown>((resolve, reject) => {
      waiting.push({ ...member, alone: member.last !== undefined, resolve, reject });
      // A write issued while the connection is idle starts now: one alone pays no extra wait.
      if (!working) void next();
    });

  return {
    query: (text, params, merge) => submit({ text, params, merge }) as ReturnType<Query>,
    transaction: (work) => submit({ work }) as Promise<never>,
    finish: (last) => submit({ last }) as Promise<void>,
  };
}
