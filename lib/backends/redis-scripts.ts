import { createHash } from "node:crypto";

/**
 * Lua keeps each value and its prefix index in one atomic step, so no reader ever
 * sees a value the index does not list (or the reverse), whatever other processes do.
 *
 * The index is a sorted set `<prefix>#index`: member = name, score = expiry time in
 * ms (or +inf). Expired members are pruned by the next TTL write to the same prefix,
 * so the index never outgrows the live entries plus those expired since that write.
 */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

const NOW_MS = "local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/** KEYS: index, then data keys. ARGV: ttl ('' = none), then name, value pairs. */
export const SET = script(`
${NOW_MS}
local ttl = ARGV[1]
local score = '+inf'
if ttl ~= '' then
  score = now + tonumber(ttl)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
end
for i = 2, #KEYS do
  local name, value = ARGV[2 * i - 2], ARGV[2 * i - 1]
  if ttl ~= '' then redis.call('SET', KEYS[i], value, 'PX', ttl) else redis.call('SET', KEYS[i], value) end
  redis.call('ZADD', KEYS[1], score, name)
end
return #KEYS - 1
`);

/** KEYS: index, then data keys. ARGV: the names. Returns how many values existed. */
export const DELETE = script(`
local n = 0
for i = 2, #KEYS do
  n = n + redis.call('DEL', KEYS[i])
  redis.call('ZREM', KEYS[1], ARGV[i - 1])
end
return n
`);

/**
 * One batch of a scoped clear: up to ARGV[2] names are taken from the index, their
 * values deleted and the names removed, atomically. Batches keep Redis responsive
 * on huge scopes; a write that lands between batches survives, as it would after clear().
 * KEYS: index. ARGV: prefix, batch size.
 */
export const CLEAR_BATCH = script(`
local names = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if #names == 0 then return 0 end
local keys = {}
for i, name in ipairs(names) do keys[i] = ARGV[1] .. ':' .. name end
redis.call('UNLINK', unpack(keys))
redis.call('ZREM', KEYS[1], unpack(names))
return #names
`);
