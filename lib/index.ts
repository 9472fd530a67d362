export {
  ACL_COMMANDS,
  ACL_DENIED,
  type ProvisionOptions,
  provisionWorkspaceUser,
  type RedisAclOptions,
  redisAcl,
  revokeWorkspaceUser,
  workspaceUsername,
} from "./acl.js";
export type {
  AnyStore,
  Backend,
  Driver,
  Entry,
  PrefixStats,
  PrefixStore,
  QuotaBook,
  ScopeOptions,
} from "./backends/driver.js";
export { openFileBackend } from "./backends/file/open.js";
export { FileStore, type FileStoreOptions } from "./backends/file/store.js";
export { openBackend } from "./backends/index.js";
export {
  type ClusterCommanderOptions,
  clusterCommander,
  type MigrateLayoutOptions,
  type MigrateLayoutReport,
  migrateLayout,
  type RebuildOptions,
  type RebuildReport,
  type RebuildScope,
  type RedisTarget,
  rebuildIndex,
  rebuildIndexes,
} from "./backends/redis/maintenance.js";
export type { RedisOpenOptions } from "./backends/redis/open.js";
export { hashingEmbedder } from "./collections/embedder.js";
export type {
  ArtifactInfo,
  ArtifactStore,
  DepsStore,
  Embedder,
  MetadataFilter,
  SaveItem,
  SaveOptions,
  VectorMatch,
  VectorOptions,
  VectorRow,
  VectorStore,
  Workflow,
  WorkflowStore,
} from "./collections/types.js";
export { configFromEnv, parseConfig, type StorageConfig, storageConfigSchema } from "./config.js";
export {
  ArtifactNotFoundError,
  AuthenticationError,
  ConflictError,
  ConnectionError,
  DimensionMismatchError,
  InvalidArgumentError,
  InvalidCollectionError,
  InvalidConfigError,
  InvalidNameError,
  InvalidRootError,
  InvalidValueError,
  InvalidVectorError,
  InvalidWorkspaceIdError,
  IOError,
  KeyvWorkspacesError,
  NotReplicatedError,
  PermissionDeniedError,
  QuotaExceededError,
  ReadOnlyError,
  StorageClosedError,
  StorageFullError,
  StoreCommandError,
  StoreCorruptError,
  StoreLockedError,
  UnsupportedStoreError,
  ValueTooLargeError,
} from "./errors.js";
export {
  COLLECTIONS,
  DEFAULT_UNSCOPED,
  type Keyspace,
  type KeyspaceOptions,
  keyspace,
  validateCollection,
  validateRoot,
  validateWorkspaceId,
} from "./keys.js";
export type { DropOptions } from "./lifecycle/drop.js";
export type { MigrateOptions } from "./lifecycle/migrate.js";
export type { WorkspaceStats } from "./lifecycle/stats.js";
export type { ExportRecord, ImportOptions } from "./lifecycle/transfer.js";
export { QUOTA_REFRESH_MS, type Quota, type QuotaUsage } from "./quota.js";
export {
  MAX_ROLE_BYTES,
  provisionWorkspaceRole,
  type RoleOptions,
  revokeWorkspaceRole,
  workspaceRoleName,
} from "./rls.js";
export { ScopedStore, scopedKeyv, scopeStore } from "./scope.js";
export { createStorage, openStorage, type StorageOptions, type WorkspaceStorage } from "./storage.js";
export { VIEW_LIMIT } from "./views.js";
export { type ChangeEvent, WATCH_BUFFER, type WatchOptions } from "./watch.js";
