/**
 * The Redis calls lib/index.ts exports (layout migration, index rebuilds, a commander over an
 * app's cluster client), each loading its module on first call: they are rarely used, and at
 * import they would add a dozen modules to every app's start (spec/cold-start.spec.ts).
 */
import type { ClusterClient, ClusterCommanderOptions } from "./cluster-commander.js";
import type * as Migrate from "./migrate.js";
import type * as Rebuild from "./rebuild.js";
import type { RedisCommander } from "./tx.js";

export type { ClusterCommanderOptions } from "./cluster-commander.js";
export type { MigrateLayoutOptions, MigrateLayoutReport } from "./migrate.js";
export type { RebuildOptions, RebuildReport, RebuildScope, RedisTarget } from "./rebuild.js";

export const migrateLayout: typeof Migrate.migrateLayout = async (...args) =>
  (await import("./migrate.js")).migrateLayout(...args);

export const rebuildIndex: typeof Rebuild.rebuildIndex = async (...args) =>
  (await import("./rebuild.js")).rebuildIndex(...args);

export const rebuildIndexes: typeof Rebuild.rebuildIndexes = async (...args) =>
  (await import("./rebuild.js")).rebuildIndexes(...args);

/**
 * cluster-commander.ts clusterCommander, loaded on the first command. Its conditional writes
 * (`optimistic`) are there from the start, as on the real one.
 */
export function clusterCommander(cluster: ClusterClient, options?: ClusterCommanderOptions): RedisCommander {
  let real: Promise<RedisCommander> | undefined;
  const commander = () => {
    real ??= import("./cluster-commander.js").then((m) => m.clusterCommander(cluster, options));
    return real;
  };
  return {
    optimistic: async (watch, reads, write) => (await commander()).optimistic!(watch, reads, write),
    sendCommand: async (args) => (await commander()).sendCommand(args),
    transaction: async (commands, apart) => (await commander()).transaction!(commands, apart),
  };
}
