/**
 * Redis behind Sentinel: the Sentinels name the master, a connectRedis connection serves it, and a
 * failover swaps that connection for one to the promoted master, without the app doing anything.
 *
 * A switch is noticed two ways: the Sentinels' `+switch-master` message (one subscription per
 * storage), and any command failing as a lost connection or READONLY (an old master that came back
 * as a replica), which makes the connection ask the Sentinels again. A command that surely was not
 * applied (not sent, or refused as READONLY) is sent again on the new master within the command's
 * time; one that may have been applied (the connection dropped before its reply) is not: its caller
 * gets the ConnectionError that says so.
 */
import { ClientOfflineError, DisconnectsClientError, ErrorReply, SocketClosedUnexpectedlyError } from "@redis/client";
import {
  ConnectionError,
  KeyvWorkspacesError,
  NotReplicatedError,
  PermissionDeniedError,
  ReadOnlyError,
} from "../../errors.js";
import type { Backend } from "../driver.js";
import { backendOver } from "./backend.js";
import type { Subscribe } from "./notify.js";
import {
  connectRedis,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type RedisConnection,
  type RedisOpenOptions,
  sleep,
} from "./open.js";
import type { Optimistic } from "./optimistic.js";
import { masterAddress } from "./sentinel-query.js";
import { nodeUrl, parseSentinelUrl, type SentinelAddress, type SentinelUrl, sentinelNodeUrl } from "./sentinel-url.js";
import type { RedisCommander } from "./tx.js";
import { redact } from "./url.js";

// Asking the Sentinels again after an error: at most this often.
const RECHECK_MS = 100;
// How often a switch announced by the Sentinels, or a watcher's move, is tried before giving up.
const FOLLOW_TRIES = 50;
// Transaction control must stay back to back on the connection: never resent on its own.
const NO_RESEND = new Set(["MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH"]);

/** Whether `error` says the node we talk to is gone or no longer the master. */
function failingOver(error: unknown): boolean {
  if (error instanceof ConnectionError || error instanceof ReadOnlyError || error instanceof NotReplicatedError)
    return true;
  if (error instanceof ErrorReply) return /^READONLY\b/.test(error.message);
  return error instanceof ClientOfflineError || error instanceof SocketClosedUnexpectedlyError;
}

/** Whether the command behind `error` may have been applied (then it must not be sent again). */
function mayBeApplied(error: unknown): boolean {
  if (error instanceof NotReplicatedError) return true;
  const cause = error instanceof KeyvWorkspacesError ? error.cause : error;
  if (cause instanceof SocketClosedUnexpectedlyError || cause instanceof DisconnectsClientError) return true;
  return error instanceof Error && /did not answer|did not finish|may or may not/.test(error.message);
}

interface Current {
  address: SentinelAddress;
  connection: RedisConnection;
}

async function openMaster(parsed: SentinelUrl, address: SentinelAddress, options: RedisOpenOptions): Promise<Current> {
  const connection = await connectRedis(nodeUrl(parsed, address), options);
  try {
    const role = (await connection.commander.sendCommand(["ROLE"])) as unknown[];
    if (String(role[0]) !== "master") {
      throw new ConnectionError(
        `the Sentinels name ${address.host}:${address.port} master of ${parsed.masterName}, but it is a ${role[0]} (failover under way?)`,
      );
    }
  } catch (error) {
    // A workspace user may not run ROLE: trust the Sentinels then; a write to a replica would get
    // READONLY and make the connection ask them again.
    if (error instanceof PermissionDeniedError) return { address, connection };
    await connection.close();
    throw error;
  }
  return { address, connection };
}

export async function connectSentinel(url: string, options: RedisOpenOptions = {}): Promise<RedisConnection> {
  const parsed = parseSentinelUrl(url);
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const commandTimeoutMs = options.commandTimeoutMs ?? 2 * connectTimeoutMs;
  const where = redact(url);

  // At open, a Sentinel may still name a master that is mid-failover: ask again until connectTimeoutMs.
  const openDeadline = Date.now() + connectTimeoutMs;
  let current: Current;
  for (;;) {
    try {
      current = await openMaster(parsed, await masterAddress(parsed, options), options);
      break;
    } catch (error) {
      if (!(error instanceof ConnectionError) || Date.now() + RECHECK_MS >= openDeadline) throw error;
      await sleep(RECHECK_MS);
    }
  }

  let closing = false;
  let switching: Promise<void> | undefined;
  let lastCheck = 0;
  const moves = new Set<() => void>();
  const retired = new Set<RedisConnection>();
  const follow = (): Promise<void> => {
    switching ??= (async () => {
      const wait = lastCheck + RECHECK_MS - Date.now();
      if (wait > 0) await sleep(wait);
      lastCheck = Date.now();
      const address = await masterAddress(parsed, options);
      if (closing || (address.host === current.address.host && address.port === current.address.port)) return;
      const next = await openMaster(parsed, address, options);
      if (closing) return void next.connection.close();
      const old = current;
      current = next;
      for (const move of moves) move();
      // Not closed at once: a command still on the old connection gets its own outcome (a reply,
      // or the lost connection that says "may or may not"), never one our close would invent.
      retired.add(old.connection);
      setTimeout(() => {
        retired.delete(old.connection);
        void old.connection.close();
      }, commandTimeoutMs).unref();
    })()
      .catch(() => {}) // the command that asked gets its own error; the next one asks again
      .finally(() => {
        switching = undefined;
      });
    return switching;
  };

  const closedError = () => new ConnectionError(`the storage on ${where} is closed`);
  const run = async <T>(resend: boolean, body: (conn: RedisConnection) => Promise<T>): Promise<T> => {
    const deadline = Date.now() + commandTimeoutMs;
    for (;;) {
      if (closing) throw closedError();
      try {
        return await body(current.connection);
      } catch (error) {
        if (closing || !failingOver(error)) throw error;
        const following = follow();
        if (!resend || mayBeApplied(error) || Date.now() + RECHECK_MS >= deadline) throw error;
        await following;
      }
    }
  };

  const optimistic: Optimistic = (watch, reads, write) =>
    run(true, (conn) => {
      const own = conn.commander.optimistic;
      if (!own) throw new ConnectionError(`Redis at ${where} gives no connection for conditional writes`);
      return own(watch, reads, write);
    });
  const commander: RedisCommander = {
    optimistic,
    sendCommand: (args) =>
      run(!NO_RESEND.has(String(args[0]).toUpperCase()), (conn) => conn.commander.sendCommand(args)),
    transaction: (commands) =>
      run(true, (conn) => (conn.commander.transaction as NonNullable<RedisCommander["transaction"]>)(commands)),
  };

  // Watchers move with the master; what was published during the switch is lost, so they reset.
  const subscribe: Subscribe = async (channels, onMessage, onReset) => {
    let gone = false;
    let stop = await current.connection.subscribe(channels, onMessage, onReset);
    // A new master that does not take the subscription yet is tried again, for a bounded while.
    const attach = (tries: number) => {
      current.connection.subscribe(channels, onMessage, onReset).then(
        (next) => {
          if (gone || closing) return next();
          stop = next;
          onReset();
        },
        () => {
          if (!gone && !closing && tries < FOLLOW_TRIES) setTimeout(() => attach(tries + 1), RECHECK_MS).unref();
        },
      );
    };
    const move = () => {
      stop();
      stop = () => {};
      attach(0);
    };
    moves.add(move);
    return () => {
      gone = true;
      moves.delete(move);
      stop();
    };
  };

  // "<master> <old ip> <old port> <new ip> <new port>": follow until the storage is on the new one
  // (the promoted node may take a moment to answer as a master), for a bounded while.
  const announced = async (message: string) => {
    const [name, , , host, port] = message.split(" ");
    if (name !== parsed.masterName) return; // a Sentinel may watch other masters too
    for (let tries = 0; tries < FOLLOW_TRIES && !closing; tries++) {
      await follow();
      if (current.address.host === host && String(current.address.port) === port) return;
      await sleep(RECHECK_MS);
    }
  };

  // The Sentinels announce a promotion on +switch-master: follow it at once, even when idle.
  let announcements: { connection: RedisConnection; stop: () => void } | undefined;
  for (const sentinel of parsed.sentinels) {
    try {
      const connection = await connectRedis(sentinelNodeUrl(parsed, sentinel), {
        connectTimeoutMs: Math.min(connectTimeoutMs, 2000),
      });
      const stop = await connection.subscribe(
        ["+switch-master"],
        (message) => void announced(message),
        () => void follow(),
      );
      announcements = { connection, stop };
      break;
    } catch {
      // another Sentinel, or none: commands that fail still make the connection ask again
    }
  }

  // The plain Keyv adapter (Backend.store) holds a client: give it one that is always the current master's.
  const client = new Proxy({} as RedisConnection["client"], {
    get(_, property) {
      const target = current.connection.client;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
    has: (_, property) => property in current.connection.client,
  });

  let closed: Promise<void> | undefined;
  return {
    client,
    commander,
    subscribe,
    close() {
      closed ??= (async () => {
        closing = true;
        moves.clear();
        if (announcements) {
          announcements.stop();
          await announcements.connection.close();
        }
        await switching;
        await Promise.all([...retired, current.connection].map((c) => c.close()));
      })();
      return closed;
    },
  };
}

export async function openRedisSentinelBackend(url: string, options: RedisOpenOptions = {}): Promise<Backend> {
  return backendOver(await connectSentinel(url, options), url, options);
}
