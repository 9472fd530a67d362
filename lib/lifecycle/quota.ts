/**
 * setQuota() and quota(): validation and the operator/workspace split here; counting and
 * enforcement belong to the backend's QuotaBook (lib/backends/driver.ts).
 */
import type { Driver } from "../backends/driver.js";
import { InvalidArgumentError, UnsupportedStoreError } from "../errors.js";
import { validateWorkspaceId } from "../keys.js";
import { type Quota, type QuotaUsage, validateQuota } from "../quota.js";
import { hostCollections, type LifecycleHost } from "./registry.js";
import { scopeStats } from "./stats.js";

function book(driver: Driver) {
  if (!driver.quotas) {
    throw new UnsupportedStoreError(
      "this store keeps no quotas: use a url the library opens (memory:, file:, sqlite:, postgres:, redis:)",
    );
  }
  return driver.quotas;
}

/** The data prefixes of a workspace, as stats() counts them. */
async function dataPrefixes(host: LifecycleHost): Promise<string[]> {
  return (await hostCollections(host)).map((collection) => host.keyspace.prefix(collection));
}

export async function setQuota(
  host: LifecycleHost,
  driver: Driver,
  workspaceId: string,
  quota: Quota | null,
): Promise<void> {
  if (host.keyspace.workspaceId !== undefined) {
    throw new InvalidArgumentError(
      "setQuota is an operator call: make it on an unscoped storage (workspaceId null), not on a workspace's",
    );
  }
  const id = validateWorkspaceId(workspaceId);
  const limit = validateQuota(quota);
  const quotas = book(driver);
  const workspace = host.withWorkspace(id);
  const base = workspace.keyspace.workspacePrefix as string;
  await quotas.set(base, limit, await dataPrefixes(workspace));
}

export async function readQuota(host: LifecycleHost, driver: Driver): Promise<QuotaUsage> {
  const base = host.keyspace.workspacePrefix;
  if (base === undefined) {
    throw new InvalidArgumentError("quota() belongs to a workspace: call it on withWorkspace(id)");
  }
  const kept = driver.quotas ? await driver.quotas.read(base) : undefined;
  if (kept) return kept;
  let entries = 0;
  let bytes = 0;
  for (const stats of Object.values(await scopeStats(host))) {
    entries += stats.entries;
    bytes += stats.bytes;
  }
  return { limit: null, entries, bytes };
}
