import { createClient, ErrorReply, MultiErrorReply } from "@redis/client";
import { ConnectionError, InvalidConfigError, KeyvWorkspacesError, NotReplicatedError } from "../../errors.js";
import type { OpenOptions } from "../driver.js";
import { InFlight, within } from "./bounds.js";
import { coalescing } from "./coalesce.js";
import { replicatedSend, replicationTimeout } from "./durable.js";
import { DEFAULT_CONNECT_TIMEOUT_MS, redisError, sleep } from "./errors.js";
import type { Subscribe } from "./notify.js";
import { type Dedicated, duplicateOf, optimisticOver } from "./optimistic.js";
import { nodeRedisSubscriptions } from "./subscribe.js";
import { isTransient, type RedisCommander, repliesOnce } from "./tx.js";
import { redact, scrub, urlPassword } from "./url.js";

export { InFlight, within } from "./bounds.js";
export { DEFAULT_CONNECT_TIMEOUT_MS, redisError, sleep } from "./errors.js";

export type RedisOpenOptions = OpenOptions;

// After a lost connection: back off up to this delay, for this many attempts, then rest until
// the next command asks for a connection again. An idle process thus stops retrying instead of
// spinning forever, and a busy one recovers as soon as Redis is back.
const RECONNECT_MAX_DELAY_MS = 2000;
const RECONNECT_ATTEMPTS = 20;

type Client = ReturnType<typeof createClient>;

export interface RedisConnection {
  readonly client: Client;
  /** sendCommand with typed errors, bounded in time, reconnecting on demand. */
  readonly commander: RedisCommander;
  /** A subscribe-mode connection of its own, for watchers (notify.ts). */
  readonly subscribe: Subscribe;
  /** Waits (briefly) for replies still due, then drops the connection. Idempotent. */
  close(): Promise<void>;
}

// Transaction control must stay back to back on the connection: never resent on its own.
const NO_RETRY = new Set(["MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH"]);

/**
 * A node-redis client that never hangs its caller:
 * - connecting is bounded (a server that accepts and never answers counts as unreachable);
 * - the first connection is not retried: a wrong URL fails now, with a ConnectionError;
 * - once connected, a lost connection is retried with capped backoff, and meanwhile commands
 *   fail at once (no offline queue) instead of piling up;
 * - every command waits at most commandTimeoutMs for its reply.
 */
export async function connectRedis(url: string, options: RedisOpenOptions = {}): Promise<RedisConnection> {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const commandTimeoutMs = options.commandTimeoutMs ?? 2 * connectTimeoutMs;
  const where = redact(url);
  const secrets = [urlPassword(url)];
  const fail = (error: unknown) => redisError(error, where, secrets);

  let everReady = false;
  let closing = false;
  let client: Client;
  try {
    client = createClient({
      url,
      disableOfflineQueue: true,
      socket: {
        connectTimeout: connectTimeoutMs,
        reconnectStrategy: (retries, cause) => {
          if (!everReady || closing || retries >= RECONNECT_ATTEMPTS) return false;
          // The server answered and refused us (credentials revoked, ACL changed): retrying in a loop
          // will not help; the next command tries once more and reports why.
          if (cause instanceof ErrorReply) return false;
          return Math.min(50 * 2 ** retries, RECONNECT_MAX_DELAY_MS) + Math.floor(Math.random() * 50);
        },
      },
    });
  } catch (error) {
    throw new InvalidConfigError("url", `invalid Redis URL ${where}: ${scrub((error as Error).message, secrets)}`, {
      cause: error,
    });
  }
  // node-redis bounds only the TCP connect; a server that accepts and then never answers the
  // handshake would leave the client "connecting" for ever (commands failing as offline, no retry).
  // Any handshake, first or reconnect, that is not done in time has its connection torn down.
  let handshake: NodeJS.Timeout | undefined;
  client.on("connect", () => {
    clearTimeout(handshake);
    handshake = setTimeout(() => {
      if (client.isOpen && !client.isReady) client.destroy();
    }, connectTimeoutMs);
    handshake.unref();
  });
  client.on("ready", () => {
    clearTimeout(handshake);
    everReady = true;
  });
  // Failures reach callers through their commands; without a listener, node-redis's "error"
  // events would crash the process.
  client.on("error", () => {});

  // One connection attempt at a time, bounded; a timed-out attempt is torn down (destroy) at once.
  const attempt = (): Promise<void> => {
    const connecting = client.connect().then(() => undefined);
    connecting.catch(() => {}); // settled later than the race when the timer wins
    return within(
      connecting,
      connectTimeoutMs,
      () => new ConnectionError(`Redis at ${where} did not complete the connection within ${connectTimeoutMs} ms`),
    ).catch((error) => {
      if (!everReady && client.isOpen) client.destroy();
      throw fail(error);
    });
  };

  let reconnecting: Promise<void> | undefined;
  const ensureOpen = (): Promise<void> | undefined => {
    if (client.isOpen || closing) return undefined;
    // The background retries gave up (see reconnectStrategy): this command asks for a new attempt.
    reconnecting ??= within(
      client.connect().then(() => undefined),
      connectTimeoutMs,
      () => new ConnectionError(`Redis at ${where} did not accept a connection within ${connectTimeoutMs} ms`),
    ).finally(() => {
      reconnecting = undefined;
    });
    return reconnecting;
  };

  try {
    await attempt();
  } catch (error) {
    closing = true;
    throw error;
  }

  // Replies node-redis still waits for, oldest first. One watchdog timer serves them all (a timer per
  // command costs more than the command on a fast pipeline); a command is failed once it has waited
  // commandTimeoutMs, the tick adding at most a quarter of that.
  const waiting = new Set<{ deadline: number; command: string | undefined; reject: (error: Error) => void }>();
  let watchdog: NodeJS.Timeout | undefined;
  const tick = () => {
    const now = Date.now();
    let expired = false;
    for (const entry of waiting) {
      if (entry.deadline > now) break; // same timeout for all: insertion order is deadline order
      expired = true;
      waiting.delete(entry);
      entry.reject(
        new ConnectionError(`Redis at ${where} did not answer ${entry.command} within ${commandTimeoutMs} ms`),
      );
    }
    // A connection that leaves a reply overdue this long is treated as dead (a hung or stopped
    // server, a black-holed route): dropping it fails what is still waiting on it, and the next
    // command connects afresh (bounded) instead of waiting behind it.
    if (expired && client.isOpen) client.destroy();
    if (waiting.size === 0) {
      clearInterval(watchdog);
      watchdog = undefined;
    }
  };
  const inFlight = new InFlight();
  const track = (command: string | undefined, request: () => Promise<unknown>) =>
    new Promise<unknown>((resolve, reject) => {
      const entry = { deadline: Date.now() + commandTimeoutMs, command, reject };
      waiting.add(entry);
      if (watchdog === undefined) {
        watchdog = setInterval(tick, Math.max(10, Math.floor(commandTimeoutMs / 4)));
        watchdog.unref();
      }
      inFlight.begin();
      const settled = () => {
        waiting.delete(entry);
        inFlight.end();
      };
      request().then(
        (reply) => {
          settled();
          resolve(reply);
        },
        (error: unknown) => {
          settled();
          reject(fail(error));
        },
      );
    });
  const plainSend = (args: string[]) => track(args[0], () => client.sendCommand(args));
  const waitMs = replicationTimeout(commandTimeoutMs, options.replicationTimeoutMs);
  const replicated = options.durability === "replicated";
  const send = replicated ? replicatedSend(plainSend, waitMs, where) : plainSend;
  // node-redis's own MULTI: one batch, one promise, written back to back. With replicated
  // durability, plain sends in one tick instead, so the WAIT follows EXEC at once. Either way the
  // transactions of one tick share one (coalesce.ts), and so one WAIT. A command refused while
  // queueing (OOM, NOPERM, READONLY) rejects the batch with its own reply, not EXECABORT's.
  const nodeMulti = (commands: readonly string[][]) =>
    track("MULTI", async () => {
      const multi = client.multi();
      for (const command of commands) multi.addCommand(command);
      try {
        return await multi.exec();
      } catch (error) {
        if (error instanceof MultiErrorReply) return error.replies; // each caller takes its own
        throw error;
      }
    }) as Promise<unknown[]>;
  const sendMulti = coalescing({
    run: replicated ? (commands) => repliesOnce(send, commands) : nodeMulti,
    failed: fail,
    // A reply to the chain itself (not inside EXEC's array) is a refusal while queueing; a failed
    // WAIT after EXEC is not: that batch ran.
    nothingRan: (error) =>
      error instanceof KeyvWorkspacesError &&
      !(error instanceof NotReplicatedError) &&
      error.cause instanceof ErrorReply,
  });

  const once: RedisCommander = {
    sendCommand(args) {
      const opening = ensureOpen();
      return opening
        ? opening.then(
            () => send(args),
            (error) => Promise.reject(fail(error)),
          )
        : send(args);
    },
  };
  // A busy (script running), loading or failing-over server is retried with backoff until the
  // command's own time is up; then the last ConnectionError (its cause the reply) is the answer.
  const retrying = async <T>(attempt: () => Promise<T>): Promise<T> => {
    const deadline = Date.now() + commandTimeoutMs;
    for (let delay = 20; ; delay = Math.min(2 * delay, 500)) {
      try {
        return await attempt();
      } catch (error) {
        if (!isTransient(error) || Date.now() + delay >= deadline) throw error;
        await sleep(delay);
      }
    }
  };
  // WATCH needs a connection nobody else sends on: a copy of this client, opened on first use.
  const dedicated = async (): Promise<Dedicated> => {
    const conn = await duplicateOf(client);
    return replicated ? { ...conn, send: replicatedSend(conn.send, waitMs, where) } : conn;
  };
  const optimistic = optimisticOver(dedicated, commandTimeoutMs);
  const commander: RedisCommander = {
    optimistic,
    sendCommand: (args) =>
      NO_RETRY.has(String(args[0]).toUpperCase()) ? once.sendCommand(args) : retrying(() => once.sendCommand(args)),
    transaction: (commands) =>
      retrying(() => {
        const opening = ensureOpen();
        return opening
          ? opening.then(
              () => sendMulti(commands),
              (error) => Promise.reject(fail(error)),
            )
          : sendMulti(commands);
      }),
  };

  // storage.watch(): each watcher a subscribe-mode copy of this client, dropped with it or on close.
  const subscriptions = nodeRedisSubscriptions(client, fail);

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      closing = true;
      optimistic.close();
      subscriptions.close();
      await inFlight.drained();
      // destroy(), not close(): close() would wait for replies a silent server never sends.
      if (client.isOpen) client.destroy();
    })();
    return closed;
  };

  return { client, commander, subscribe: subscriptions.subscribe, close };
}
