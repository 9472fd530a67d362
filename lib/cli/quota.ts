/**
 * `kvws quota <id> [--max-entries N] [--max-bytes B | --clear] [--json]`: shows a workspace's
 * quota and use, or sets it (the flags given are the whole new quota: a limit not given is
 * lifted) or removes it. Every flag is checked before the store is opened.
 */
import type { Quota, QuotaUsage } from "../quota.js";
import { type Command, UsageError, type Values } from "./command.js";

const POSITIVE = /^[1-9][0-9]*$/;

function count(values: Values, flag: "max-entries" | "max-bytes"): number | undefined {
  const raw = values[flag];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (typeof raw !== "string" || !POSITIVE.test(raw) || !Number.isSafeInteger(value)) {
    throw new UsageError(`quota: --${flag} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** What the flags ask for: undefined to show, null to remove, else the new quota. */
export function requested(values: Values): Quota | null | undefined {
  const maxEntries = count(values, "max-entries");
  const maxBytes = count(values, "max-bytes");
  if (values.clear === true) {
    if (maxEntries !== undefined || maxBytes !== undefined) {
      throw new UsageError("quota: --clear removes the quota; give it without --max-entries or --max-bytes");
    }
    return null;
  }
  if (maxEntries === undefined && maxBytes === undefined) return undefined;
  return { ...(maxEntries === undefined ? {} : { maxEntries }), ...(maxBytes === undefined ? {} : { maxBytes }) };
}

function line(what: string, used: number, limit: number | undefined): string {
  return `${what.padEnd(8)}${String(used).padStart(12)}${limit === undefined ? "" : ` of ${limit}`}`;
}

export function describeUsage(id: string, usage: QuotaUsage): string {
  const { limit } = usage;
  return [
    `workspace ${id}: ${limit === null ? "no quota" : "quota"}`,
    line("entries", usage.entries, limit?.maxEntries),
    line("bytes", usage.bytes, limit?.maxBytes),
  ].join("\n");
}

export const quota: Command = {
  options: ["max-entries", "max-bytes", "clear", "json"],
  args: 1,
  check([id], values) {
    if (id === undefined) throw new UsageError("quota needs a workspace id");
    requested(values);
  },
  async run(storage, [id], values, io) {
    const workspace = id as string;
    const change = requested(values);
    if (change !== undefined) await storage.setQuota(workspace, change);
    const usage = await storage.withWorkspace(workspace).quota();
    io.stdout.write(`${values.json ? JSON.stringify(usage) : describeUsage(workspace, usage)}\n`);
  },
};
