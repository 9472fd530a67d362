/** What both value layouts of the Redis driver share: name and value checks, the server clock. */
import { InvalidNameError, InvalidValueError } from "../../errors.js";
import { isWellFormed } from "../../keys.js";
import type { RegistryName } from "../driver.js";
import { serverMs } from "./list.js";
import type { RedisCommander } from "./tx.js";

/** How long a measured server-clock offset is trusted before TTL writes measure it again. */
const CLOCK_REFRESH_MS = 60_000;

/**
 * Redis sends keys as UTF-8, which turns every unpaired surrogate into U+FFFD: "\uD800" and
 * "\uDC00" would be one key. The collections refuse such names already; this covers collection().
 */
export function utf8(key: string): string {
  if (!isWellFormed(key)) {
    throw new InvalidNameError(
      `key ${JSON.stringify(key)} contains an unpaired UTF-16 surrogate, which Redis cannot keep apart from others`,
    );
  }
  return key;
}

export function redisString(value: unknown): string {
  if (typeof value === "string") return value;
  if (Buffer.isBuffer(value)) return value.toString("binary");
  throw new InvalidValueError(`the Redis backend stores strings (Keyv serialises values); got ${typeof value}`);
}

/**
 * The commands that write registry `names` inside a write of `prefix`'s own transaction, once
 * their prefixes passed their first-use checks (driver.ts). Whatever cannot go in that MULTI (a
 * registry on another cluster slot) is written before the promise resolves.
 */
/** `quotaBase`: the workspace whose quota state the write will read (read in the same round trip). */
export type Registry = (prefix: string, names: readonly RegistryName[], quotaBase?: string) => Promise<string[][]>;

/** Starts `registry` for a write's registry names; its failure reaches the write that awaits it. */
export function startRegistry(
  registry: Registry,
  prefix: string,
  names: readonly RegistryName[],
  quotaBase?: string,
): Promise<string[][]> {
  const started = registry(prefix, names, quotaBase);
  // The write awaits it after its own connect; should that fail first, this rejection is no orphan.
  started.catch(() => {});
  return started;
}

export const validTtl = (ttl: number | undefined) => (typeof ttl === "number" && ttl > 0 ? Math.ceil(ttl) : undefined);

/**
 * The server's clock as seen from here: TTL scores must be on the clock Redis expires keys by,
 * and reading TIME on every TTL write would cost a round trip. The offset is measured once
 * (error ≤ half a round trip) and again after CLOCK_REFRESH_MS.
 */
export class ServerClock {
  #offset = 0;
  #measured = Number.NEGATIVE_INFINITY;
  async now(client: RedisCommander): Promise<number> {
    if (Date.now() - this.#measured > CLOCK_REFRESH_MS) {
      const sent = Date.now();
      const server = serverMs(await client.sendCommand(["TIME"]));
      const received = Date.now();
      this.#offset = server - (sent + received) / 2;
      this.#measured = received;
    }
    return Math.round(Date.now() + this.#offset);
  }
}
