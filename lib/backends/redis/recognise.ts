/**
 * Which stores are Redis adapters, by shape alone (see adapters.ts for why not `instanceof`).
 * Apart from adapters.ts so that lib/scope.ts can recognise one without loading the Redis
 * driver: that loads when the adapter is first used (backends/deferred.ts).
 */
type Fn = (...args: never[]) => unknown;

export const isFn = (value: unknown): value is Fn => typeof value === "function";
export const field = (value: unknown, name: string): unknown =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>)[name] : undefined;

export const isNodeRedisClient = (client: unknown) =>
  isFn(field(client, "sendCommand")) && isFn(field(client, "connect")) && isFn(field(client, "multi"));
export const isNodeRedisCluster = (client: unknown) =>
  isNodeRedisClient(client) && field(client, "slots") !== undefined;
export const isSentinel = (store: object, client: unknown) =>
  (isFn(field(store, "isSentinel")) && (store as { isSentinel(): boolean }).isSentinel()) ||
  isFn(field(client, "getSentinelNode"));
export const isIoRedis = (client: unknown) =>
  isFn(field(client, "call")) &&
  isFn(field(client, "multi")) &&
  typeof field(client, "status") === "string" &&
  typeof field(client, "isCluster") === "boolean";

/** Whether adapters.ts redisAdapterOf(store) recognises `store` (it must agree: spec/scope-adapters). */
export function isRedisAdapter(store: object): boolean {
  if (field(field(store, "opts"), "dialect") !== "redis") return false;
  const client = field(store, "client");
  if (isFn(field(store, "getClient")) && isNodeRedisClient(client) && !isSentinel(store, client)) return true;
  return isIoRedis(field(store, "redis"));
}
