/**
 * Per-workspace quotas: the shape, its validation, and the one rule every engine applies. Pure:
 * the bookkeeping lives in each backend (lib/backends/…, `Driver.quotas`), because only the
 * backend can make "check, then write" atomic across processes.
 */
import { InvalidArgumentError, QuotaExceededError } from "./errors.js";
import { SEPARATOR, WORKSPACE_SEGMENT } from "./keys.js";

/** Positive integers; an absent field is not limited. Bytes count stored values, as stats() does. */
export interface Quota {
  maxEntries?: number;
  maxBytes?: number;
}

/** A workspace's limit (null: none) and what it holds now, counted as stats() counts. */
export interface QuotaUsage {
  limit: Quota | null;
  entries: number;
  bytes: number;
}

/** What one write (or one all-or-nothing batch) changes: entries added minus removed, bytes likewise. */
export interface QuotaDelta {
  entries: number;
  bytes: number;
}

/**
 * The longest a quota set (or removed) by setQuota takes to reach storages that are already open,
 * on engines that cache the limit per process (Redis). setQuota itself waits this long before it
 * counts, so no writer that missed the new limit can still commit uncounted.
 */
export const QUOTA_REFRESH_MS = 1000;

function field(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(`quota ${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** A validated copy of `input` (null removes a quota); InvalidArgumentError before any I/O. */
export function validateQuota(input: unknown): Quota | null {
  if (input === null) return null;
  if (typeof input !== "object" || Array.isArray(input)) {
    throw new InvalidArgumentError("a quota is { maxEntries?, maxBytes? } or null (to remove it)");
  }
  const record = input as Record<string, unknown>;
  const unknownKeys = Object.keys(record).filter((key) => key !== "maxEntries" && key !== "maxBytes");
  if (unknownKeys.length > 0) {
    throw new InvalidArgumentError(`unknown quota field ${JSON.stringify(unknownKeys[0])} (maxEntries, maxBytes)`);
  }
  const maxEntries = field(record.maxEntries, "maxEntries");
  const maxBytes = field(record.maxBytes, "maxBytes");
  if (maxEntries === undefined && maxBytes === undefined) {
    throw new InvalidArgumentError("a quota needs maxEntries or maxBytes (pass null to remove it)");
  }
  return { ...(maxEntries === undefined ? {} : { maxEntries }), ...(maxBytes === undefined ? {} : { maxBytes }) };
}

/**
 * Whether a write changing usage by `delta` breaks `limit`. Only growth is refused: a delete, or an
 * overwrite that adds no entry and no bytes, always passes, even in a workspace already over a
 * limit set below its use.
 */
export function exceeds(limit: Quota, usage: QuotaDelta, delta: QuotaDelta): boolean {
  if (delta.entries > 0 && limit.maxEntries !== undefined && usage.entries + delta.entries > limit.maxEntries) {
    return true;
  }
  return delta.bytes > 0 && limit.maxBytes !== undefined && usage.bytes + delta.bytes > limit.maxBytes;
}

/** The workspace id of a workspace base (`<root>:ws:<id>` or `<root>:ws:{<id>}`); roots never hold a `ws` segment. */
export function workspaceOfBase(base: string): string {
  const marker = `${SEPARATOR}${WORKSPACE_SEGMENT}${SEPARATOR}`;
  const id = base.slice(base.indexOf(marker) + marker.length);
  return id.startsWith("{") && id.endsWith("}") ? id.slice(1, -1) : id;
}

/** The error a refused write throws; engines call this so every message reads alike. */
export function quotaExceeded(base: string, limit: Quota, usage: QuotaDelta, delta: QuotaDelta): QuotaExceededError {
  const workspaceId = workspaceOfBase(base);
  const what =
    delta.entries > 0 && limit.maxEntries !== undefined && usage.entries + delta.entries > limit.maxEntries
      ? `${usage.entries} of ${limit.maxEntries} entries used, the write adds ${delta.entries}`
      : `${usage.bytes} of ${limit.maxBytes} bytes used, the write adds ${delta.bytes}`;
  return new QuotaExceededError(
    workspaceId,
    limit,
    `workspace ${JSON.stringify(workspaceId)} is over its quota (${what}); nothing was written`,
  );
}

/** The bytes a stored value counts for, as stats() counts them. */
export function valueBytes(value: unknown): number {
  if (typeof value === "string") return Buffer.byteLength(value);
  if (value instanceof Uint8Array) return value.byteLength;
  return value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value) ?? "");
}
