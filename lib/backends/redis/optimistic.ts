/**
 * WATCH … MULTI … EXEC, the only way to make a Redis write conditional without running Lua as a
 * tenant. WATCH belongs to a connection, so it needs one that nobody else sends on: each process
 * opens one such connection per server (lazily, on the first conditional write or sweep) and
 * runs the attempts on it one after another.
 */
import { ConnectionError, StoreCommandError, UnsupportedStoreError } from "../../errors.js";
import { type RedisCommander, sendMulti } from "./tx.js";

/**
 * One attempt: WATCH `watch`, run `reads`, let `write` pick the commands to run atomically from
 * their replies (undefined: nothing to write), then MULTI … EXEC. Resolves with EXEC's replies,
 * `[]` when nothing was written, or null when a watched key changed meanwhile (try again).
 */
export type Optimistic = (
  watch: readonly string[],
  reads: readonly string[][],
  write: (replies: unknown[]) => readonly string[][] | undefined,
) => Promise<unknown[] | null>;

/** A connection of its own: plain commands, and a way to drop it (after an error its state is unknown). */
export interface Dedicated {
  send(args: string[]): Promise<unknown>;
  close(): void;
}

/** One attempt on a connection nobody else uses meanwhile. */
async function attempt(
  conn: Dedicated,
  watch: readonly string[],
  reads: readonly string[][],
  write: (replies: unknown[]) => readonly string[][] | undefined,
): Promise<unknown[] | null> {
  await conn.send(["WATCH", ...watch]);
  let commands: readonly string[][] | undefined;
  try {
    const replies = await Promise.all(reads.map((command) => conn.send([...command])));
    commands = write(replies);
  } catch (error) {
    await conn.send(["UNWATCH"]);
    throw error;
  }
  if (commands === undefined || commands.length === 0) {
    await conn.send(["UNWATCH"]);
    return [];
  }
  return sendMulti((args) => conn.send(args), commands);
}

/**
 * An Optimistic over connections `open` makes: one at a time, reused while it works, replaced
 * after any error (a half-done WATCH or MULTI must not leak into the next attempt).
 */
export function optimisticOver(open: () => Promise<Dedicated>, timeoutMs = 10_000): Optimistic & { close(): void } {
  let conn: Promise<Dedicated> | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  const run: Optimistic = (watch, reads, write) => {
    const turn = queue.then(async () => {
      if (closed) throw new ConnectionError("the storage is closed; its conditional-write connection is gone");
      conn ??= open();
      const current = conn;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new ConnectionError(`Redis did not finish a conditional write within ${timeoutMs} ms`)),
          timeoutMs,
        );
        timer.unref();
      });
      try {
        return await Promise.race([(async () => attempt(await current, watch, reads, write))(), timeout]);
      } catch (error) {
        if (conn === current) conn = undefined;
        current.then((c) => c.close()).catch(() => {});
        throw error;
      } finally {
        clearTimeout(timer);
      }
    });
    queue = turn.catch(() => {});
    return turn;
  };
  return Object.assign(run, {
    close() {
      closed = true;
      conn?.then((c) => c.close()).catch(() => {});
      conn = undefined;
    },
  });
}

/** A Dedicated over a node-redis client (any copy): `duplicate()` of the app's or our own client. */
export async function duplicateOf(client: { duplicate(): unknown }): Promise<Dedicated> {
  const copy = client.duplicate() as {
    connect(): Promise<unknown>;
    sendCommand(args: string[]): Promise<unknown>;
    destroy(): void;
    on(event: string, listener: () => void): unknown;
  };
  copy.on("error", () => {}); // failures reach the caller through its commands
  await copy.connect();
  return { send: (args) => copy.sendCommand(args), close: () => copy.destroy() };
}

/** Whether a commander can run optimistic transactions. */
export function canWatch(client: RedisCommander): client is RedisCommander & { optimistic: Optimistic } {
  return typeof client.optimistic === "function";
}

/** Attempts of a conditional write whose watched keys others keep changing. */
export const TRANSACT_ATTEMPTS = 50;

/**
 * transact's outer loop on both layouts: `attempt` runs one optimistic try (null: a watched key
 * changed, so read again), with a short random backoff between tries. What `decide` throws (a
 * ConflictError, the caller's own error) reaches the caller as it is, never re-typed by `run`.
 */
export async function transactLoop<D>(
  decide: (current: readonly unknown[]) => D[],
  attempt: (decide: (current: readonly unknown[]) => D[]) => Promise<D[] | null>,
  where: string,
): Promise<D[]> {
  let refused: { error: unknown } | undefined;
  const decideOnce = (current: readonly unknown[]) => {
    try {
      return decide(current);
    } catch (error) {
      refused = { error };
      throw error;
    }
  };
  try {
    for (let tries = 0; tries < TRANSACT_ATTEMPTS; tries++) {
      const done = await attempt(decideOnce);
      if (done !== null) return done;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 ** tries)));
    }
  } catch (error) {
    throw refused ? refused.error : error;
  }
  throw new StoreCommandError(
    `gave up a conditional write under ${where} after ${TRANSACT_ATTEMPTS} attempts: others kept writing the same names`,
  );
}

export const noWatch = () =>
  new UnsupportedStoreError(
    "conditional writes on Redis need a connection of their own for WATCH, which this Redis client does not give; open the storage by URL",
  );
