/**
 * Transactions asked for in one tick on one connection go out as one MULTI … EXEC.
 *
 * Why it is safe: Redis runs a transaction's commands with nothing in between, so a merged
 * transaction runs each caller's commands back to back and in order, exactly as if each had been
 * run alone, one after the other (callers that were in flight together may be ordered either way,
 * as before). Nothing here is optimistic: a WATCH never sees this connection (optimistic.ts sends
 * on a dedicated one).
 *
 * Why it pays: MULTI and EXEC are two commands of their own, each costing the client an encode and
 * a reply, and the server about 0.4× a SET (docs/redis-index.md). A plain write of a new name is
 * MULTI ZADD SET EXEC: merged, 128 writes in flight share one MULTI and one EXEC.
 *
 * What each caller gets is what it would have got alone:
 * - its own slice of EXEC's replies, or the first error among them (a command failing while it
 *   runs, such as WRONGTYPE, fails only its own transaction; Redis runs the others regardless);
 * - a refusal while queueing (OOM, NOPERM, READONLY, a malformed command) aborts the whole EXEC and
 *   nothing has run, so each transaction of that batch is sent again on its own: only the ones
 *   the server refuses fail;
 * - anything else (a lost connection, a timeout) may or may not have run: every caller of the
 *   batch gets that error, as it would have alone.
 */

/**
 * Arguments (command names included) in one merged transaction, at most; a single bigger
 * transaction still goes alone. Counted in arguments, not commands, so that batches sized to keep
 * the server responsive (a clear's UNLINK of 1000 keys) are not merged into one long block.
 */
export const MERGE_LIMIT = 8192;

interface Pending {
  readonly commands: readonly string[][];
  resolve(replies: unknown[]): void;
  reject(error: unknown): void;
}

export interface CoalesceOptions {
  /** MULTI, the commands, EXEC; resolves with EXEC's replies, errors among them as values. */
  run(commands: readonly string[][]): Promise<unknown[]>;
  /** What a caller gets for a reply error inside EXEC's array (its typed form). */
  failed(reply: Error): unknown;
  /** Whether a rejection of `run` means the server refused the batch before running any of it. */
  nothingRan(error: unknown): boolean;
}

export function coalescing(options: CoalesceOptions): (commands: readonly string[][]) => Promise<unknown[]> {
  let batch: Pending[] = [];
  let size = 0;

  const settle = (pending: Pending, replies: readonly unknown[]) => {
    const failed = replies.find((reply): reply is Error => reply instanceof Error);
    if (failed) pending.reject(options.failed(failed));
    else pending.resolve(replies as unknown[]);
  };
  const alone = (pending: Pending) =>
    options.run(pending.commands).then(
      (replies) => settle(pending, replies),
      (error: unknown) => pending.reject(error),
    );
  const flush = () => {
    const taken = batch;
    batch = [];
    size = 0;
    if (taken.length === 0) return; // flushed early (MERGE_LIMIT) after its tick was scheduled
    if (taken.length === 1) {
      alone(taken[0] as Pending);
      return;
    }
    options.run(taken.flatMap((pending) => pending.commands)).then(
      (replies) => {
        let at = 0;
        for (const pending of taken) {
          settle(pending, replies.slice(at, at + pending.commands.length));
          at += pending.commands.length;
        }
      },
      (error: unknown) => {
        if (options.nothingRan(error)) for (const pending of taken) alone(pending);
        else for (const pending of taken) pending.reject(error);
      },
    );
  };

  return (commands) =>
    new Promise<unknown[]>((resolve, reject) => {
      let weight = 0;
      for (const command of commands) weight += command.length;
      if (size > 0 && size + weight > MERGE_LIMIT) flush();
      // nextTick runs once the microtasks of this turn are done: every caller resumed by the same
      // burst of replies has queued its transaction by then, and the socket write (node-redis
      // schedules it with setImmediate) is still to come.
      if (batch.length === 0) process.nextTick(flush);
      batch.push({ commands, resolve, reject });
      size += weight;
    });
}
