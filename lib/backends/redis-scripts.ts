import { createHash } from "node:crypto";

/**
 * Lua keeps each value, its prefix index, version and change log in one atomic step, so no
 * reader ever sees a value the index does not list (or the reverse), nor a version whose
 * changes are not logged, whatever other processes do.
 *
 * Per prefix, beside the values at `<prefix>:<name>`:
 *   `<prefix>#index`   sorted set: member = name, score = expiry in ms (Redis clock) or +inf
 *   `<prefix>#version` integer, INCRed by every write that changes something
 *   `<prefix>#log`     stream, capped (approximately): entry id `<version>-<i>`, field `n` = a changed name,
 *                      or field `c` = "everything may have changed" (clear)
 *
 * Every script takes KEYS[1..3] = index, version, log. Redis does not roll back a script
 * that fails halfway, so each one decides what it will change first, then writes the
 * bookkeeping (where a foreign key of the wrong type would fail), and touches values last.
 */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(body: string): Script {
  const source = `${PRELUDE}\n${body}`;
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

/** Expired members pruned per write: bounds the work of one write, still outpaces growth. */
export const PRUNE_LIMIT = 1000;

const PRELUDE = `
-- The clock is read only by the writes that need it (TTL writes, a counter restart, rebuilds):
-- a plain set stays INCR + XADD + SET + ZADD.
local t, now
local function clock()
  if not t then
    t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now
end
-- INCR answers 1 only for a missing key (a live counter restarts from the clock, far above 1),
-- which spares every write an EXISTS. A version key that vanished starts again from the clock
-- (in us), so a version a cache kept from before is never reused for different contents; its
-- old log goes with it.
local function bump()
  local v = redis.call('INCR', KEYS[2])
  if v == 1 then
    clock()
    redis.call('DEL', KEYS[3])
    redis.call('SET', KEYS[2], t[1] .. string.format('%06d', tonumber(t[2])))
    v = redis.call('INCR', KEYS[2])
  end
  return string.format('%d', v)
end
-- '~' drops whole stream nodes only: it keeps at least cap entries (up to ~100 more) and costs
-- a third of an exact trim's time; trimming inside XADD spares a separate XTRIM call.
local function log(v, names, cap)
  for i, name in ipairs(names) do
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', cap, v .. '-' .. (i - 1), 'n', name)
  end
end
-- Redis expires a key once now > its expiry, so a member is live while score >= now.
local function expired()
  return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. clock(), 'LIMIT', 0, ${PRUNE_LIMIT})
end
local function append(list, more)
  for _, x in ipairs(more) do list[#list + 1] = x end
  return list
end
`;

/** KEYS: index, version, log, then data keys. ARGV: ttl ms ('' = none), log cap, then name, value pairs. */
export const SET = script(`
local ttl, cap = ARGV[1], tonumber(ARGV[2])
local names = {}
for i = 4, #KEYS do names[#names + 1] = ARGV[2 * i - 5] end
-- Only a TTL write can leave expired members behind, so only TTL writes prune them: the index
-- then never holds more expired members than were live at the last TTL write, and plain writes
-- skip the clock and the range query.
local gone = {}
if ttl ~= '' then gone = expired() end
if #gone > 0 then
  log(bump(), append(append({}, names), gone), cap)
  redis.call('ZREM', KEYS[1], unpack(gone))
else
  log(bump(), names, cap)
end
if ttl ~= '' then
  local score = string.format('%d', now + tonumber(ttl))
  for i = 4, #KEYS do
    redis.call('SET', KEYS[i], ARGV[2 * i - 4], 'PX', ttl)
    redis.call('ZADD', KEYS[1], score, names[i - 3])
  end
else
  for i = 4, #KEYS do
    redis.call('SET', KEYS[i], ARGV[2 * i - 4])
    redis.call('ZADD', KEYS[1], '+inf', names[i - 3])
  end
end
return #names
`);

/** KEYS: index, version, log, then data keys. ARGV: log cap, then the names. Returns how many values existed. */
export const DELETE = script(`
local cap = tonumber(ARGV[1])
local changed, n = {}, 0
for i = 4, #KEYS do
  local live = redis.call('EXISTS', KEYS[i])
  n = n + live
  if live == 1 or redis.call('ZSCORE', KEYS[1], ARGV[i - 2]) then changed[#changed + 1] = ARGV[i - 2] end
end
if #changed == 0 then return 0 end
log(bump(), changed, cap)
for i = 4, #KEYS do
  redis.call('DEL', KEYS[i])
  redis.call('ZREM', KEYS[1], ARGV[i - 2])
end
return n
`);

/**
 * One batch of a scoped clear: up to ARGV[2] names are taken from the index, their values
 * deleted and the names removed, atomically. Batches keep Redis responsive on huge scopes;
 * a write that lands between batches survives, as it would after clear(). The log is
 * replaced by one "everything changed" entry: what it said before no longer matters.
 * The data keys are built from ARGV[1] (the prefix), so they stay inside `<prefix>:` and
 * thus inside the workspace's ACL key pattern.
 * KEYS: index, version, log. ARGV: prefix, batch size, '1' on the first batch (always marks).
 */
export const CLEAR_BATCH = script(`
local names = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if #names == 0 and ARGV[3] ~= '1' then return 0 end
local v = bump()
redis.call('DEL', KEYS[3])
redis.call('XADD', KEYS[3], v .. '-0', 'c', '')
if #names == 0 then return 0 end
local keys = {}
for i, name in ipairs(names) do keys[i] = ARGV[1] .. ':' .. name end
redis.call('UNLINK', unpack(keys))
redis.call('ZREM', KEYS[1], unpack(names))
return #names
`);

/**
 * Rebuild, adding side: each named key that holds a string gets an index member scored by
 * its remaining PTTL (a member already there keeps its score unless it disagrees with the
 * key's actual expiry). Changed names are logged. Returns how many members it added or fixed.
 * KEYS: index, version, log, then data keys. ARGV: log cap, then the names.
 */
export const REBUILD_ADD = script(`
local cap = tonumber(ARGV[1])
local names, scores = {}, {}
for i = 4, #KEYS do
  local name = ARGV[i - 2]
  if redis.call('TYPE', KEYS[i]).ok == 'string' then
    local pttl = redis.call('PTTL', KEYS[i])
    local want = math.huge
    if pttl >= 0 then want = clock() + pttl end
    local have = redis.call('ZSCORE', KEYS[1], name)
    have = have and tonumber(have)
    if not have or (want == math.huge) ~= (have == math.huge) or (want ~= math.huge and math.abs(want - have) > 1) then
      names[#names + 1] = name
      scores[#scores + 1] = want
    end
  end
end
if #names == 0 then return 0 end
log(bump(), names, cap)
for i, name in ipairs(names) do
  local score = '+inf'
  if scores[i] ~= math.huge then score = string.format('%d', scores[i]) end
  redis.call('ZADD', KEYS[1], score, name)
end
return #names
`);

/**
 * Rebuild, removing side: index members whose key is gone (or is no longer a string) are
 * removed and logged. Returns how many it removed.
 * KEYS: index, version, log, then data keys. ARGV: log cap, then the names.
 */
export const REBUILD_PRUNE = script(`
local cap = tonumber(ARGV[1])
local stale = {}
for i = 4, #KEYS do
  if redis.call('TYPE', KEYS[i]).ok ~= 'string' and redis.call('ZSCORE', KEYS[1], ARGV[i - 2]) then
    stale[#stale + 1] = ARGV[i - 2]
  end
end
if #stale == 0 then return 0 end
log(bump(), stale, cap)
redis.call('ZREM', KEYS[1], unpack(stale))
return #stale
`);
