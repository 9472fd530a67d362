/**
 * How one entry is kept as a field of its prefix's hash: the value as given, or, for an entry
 * with an expiry (Redis 7.0 has no per-field TTL), `\u0001<expiry ms>\u0001<value>`. A plain
 * value that itself starts with `\u0001` is kept as `\u0001\u0001<value>` (an empty expiry), so
 * every stored text reads back as exactly one value. Expiries are on the server's clock.
 */
const MARK = "\u0001";

export function encodeField(value: string, expiresAt: number | undefined): string {
  if (expiresAt !== undefined) return `${MARK}${expiresAt}${MARK}${value}`;
  return value.startsWith(MARK) ? `${MARK}${MARK}${value}` : value;
}

export interface Field {
  value: string;
  /** Server-clock ms; undefined: no expiry. */
  expiresAt: number | undefined;
}

export function decodeField(stored: string): Field {
  if (!stored.startsWith(MARK)) return { value: stored, expiresAt: undefined };
  const end = stored.indexOf(MARK, 1);
  if (end === 1) return { value: stored.slice(2), expiresAt: undefined };
  return { value: stored.slice(end + 1), expiresAt: Number(stored.slice(1, end)) };
}

/** Whether a field read back from Redis (a string, a Buffer or nil) carries an expiry at all. */
export const timed = (stored: unknown): boolean => typeof stored === "string" && stored.startsWith(MARK);

/** Redis expires a key once its expiry has passed; fields follow the same rule. */
export const liveAt = (field: Field, now: number): boolean => field.expiresAt === undefined || field.expiresAt >= now;
