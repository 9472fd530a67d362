/**
 * durability "replicated": a write is acknowledged only once a replica holds it (WAIT 1 <ms>).
 *
 * WAIT covers the writes its own connection sent before it, so it must follow the write on the
 * same connection, with no reconnect in between (on a fresh connection WAIT has nothing to wait
 * for and would answer at once). Sending the WAIT before any I/O can run (same tick, or a
 * microtask of it) puts it behind the write on the one socket: a lost connection then fails them
 * both, and the WAIT can never land alone on a new connection. Inside MULTI … EXEC the WAIT goes
 * after EXEC (a WAIT queued in a transaction does not block).
 */
import { NotReplicatedError } from "../../errors.js";

export type Durability = "default" | "replicated";

/** How long a write waits for a replica by default; also bounded by half the command timeout. */
export const DEFAULT_REPLICATION_TIMEOUT_MS = 1000;

export function replicationTimeout(commandTimeoutMs: number, requested?: number): number {
  return Math.max(1, Math.min(requested ?? DEFAULT_REPLICATION_TIMEOUT_MS, Math.floor(commandTimeoutMs / 2)));
}

// Commands that change no data: no WAIT after them. Anything else (scripts included) is a write.
const NO_WAIT = new Set([
  "GET",
  "MGET",
  "EXISTS",
  "STRLEN",
  "TTL",
  "PTTL",
  "TYPE",
  "HGET",
  "HMGET",
  "HGETALL",
  "HKEYS",
  "HVALS",
  "HLEN",
  "HEXISTS",
  "HSTRLEN",
  "HSCAN",
  "SCAN",
  "KEYS",
  "ZRANGE",
  "ZRANGEBYLEX",
  "ZREVRANGEBYLEX",
  "ZRANGEBYSCORE",
  "ZCARD",
  "ZSCORE",
  "ZMSCORE",
  "ZCOUNT",
  "ZLEXCOUNT",
  "ZRANK",
  "ZSCAN",
  "SMEMBERS",
  "SISMEMBER",
  "SCARD",
  "SSCAN",
  "LRANGE",
  "LLEN",
  "XRANGE",
  "XREVRANGE",
  "XLEN",
  "XINFO",
  "XREAD",
  "EVALSHA_RO",
  "EVAL_RO",
  "FCALL_RO",
  "SCRIPT",
  "PING",
  "INFO",
  "ROLE",
  "DBSIZE",
  "TIME",
  "CLIENT",
  "HELLO",
  "AUTH",
  "SELECT",
  "ACL",
  "CONFIG",
  "MEMORY",
  "OBJECT",
  "PUBLISH",
  "WATCH",
  "UNWATCH",
  "WAIT",
  "READONLY",
  "READWRITE",
  "ASKING",
  "CLUSTER",
  "COMMAND",
]);

export const isWrite = (args: readonly string[]) => !NO_WAIT.has(String(args[0]).toUpperCase());

function notReplicated(where: string, detail: string, cause?: unknown): NotReplicatedError {
  return new NotReplicatedError(
    `a write to Redis at ${where} was not confirmed by any replica (${detail}); it may or may not be stored, and may be lost if the master fails now`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * `send` with a WAIT 1 after the writes (and EXECs) of each tick. The writes of one tick share one
 * WAIT, sent from a microtask: no I/O (so no reconnect) can come between them and it, and WAIT
 * covers every write its connection sent before it. Concurrent writers thus wait for the replica
 * together instead of one after the other (a WAIT blocks its whole connection while it waits).
 * MULTI … EXEC must be sent in one tick (tx.ts sendMulti does), so nobody else's command falls
 * between them and `inMulti`.
 */
export function replicatedSend(
  send: (args: string[]) => Promise<unknown>,
  timeoutMs: number,
  where: string,
): (args: string[]) => Promise<unknown> {
  let inMulti = false;
  let pending: Promise<unknown> | undefined;
  const sharedWait = (): Promise<unknown> => {
    pending ??= new Promise<unknown>((resolve, reject) => {
      queueMicrotask(() => {
        pending = undefined;
        send(["WAIT", "1", String(timeoutMs)]).then(resolve, reject);
      });
    });
    return pending;
  };
  return (args) => {
    const name = String(args[0]).toUpperCase();
    if (name === "MULTI") inMulti = true;
    if (name === "DISCARD") inMulti = false;
    const waits = name === "EXEC" || (!inMulti && name !== "MULTI" && name !== "DISCARD" && isWrite(args));
    if (name === "EXEC") inMulti = false;
    const reply = send(args);
    if (!waits) return reply;
    const waited = sharedWait();
    waited.catch(() => {}); // read below, after the write's own outcome
    return reply.then(async (value) => {
      if (name === "EXEC" && value === null) return value; // a WATCH fired: nothing was written
      let count: unknown;
      try {
        count = await waited;
      } catch (error) {
        throw notReplicated(where, "WAIT failed", error);
      }
      if (Number(count) < 1) throw notReplicated(where, `no replica acknowledged within ${timeoutMs} ms`);
      return value;
    });
  };
}
