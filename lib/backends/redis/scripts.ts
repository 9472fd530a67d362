import { createHash } from "node:crypto";
import type { RedisCommander } from "./tx.js";

/**
 * The only Lua left, and only on the operator's path (rebuildIndex, run with an admin URL;
 * workspace ACL users may not EVAL). A rebuild must check "is this key a string, with which
 * expiry" and change the index in the same step, or a write landing in between could lose
 * its index member — there is no plain-command way to make that check atomic.
 *
 * KEYS: index, log, ttl, then data keys. ARGV: log cap ('' = the prefix keeps no log), then names.
 */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(body: string): Script {
  const source = `${PRELUDE}\n${body}`;
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function log(names)
  if ARGV[1] == '' or #names == 0 then return end
  local entry = {}
  for _, name in ipairs(names) do entry[#entry + 1] = 'n'; entry[#entry + 1] = name end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', unpack(entry))
end
`;

/**
 * Each named key that holds a string gets an index member scored 0 and, if it has a TTL, a #ttl
 * member scored by its expiry (now + PTTL); a wrong score, a member left over from the layout
 * before 0.3 (scored by expiry, or +inf) or a stray #ttl member is fixed. Returns {names added or
 * fixed, string keys seen}.
 */
export const REBUILD_ADD = script(`
local fixed, strings = {}, 0
for i = 4, #KEYS do
  local name = ARGV[i - 2]
  if redis.call('TYPE', KEYS[i]).ok == 'string' then
    strings = strings + 1
    local pttl = redis.call('PTTL', KEYS[i])
    local member = redis.call('ZSCORE', KEYS[1], name)
    local expiry = redis.call('ZSCORE', KEYS[3], name)
    expiry = expiry and tonumber(expiry)
    local wrong = not member or tonumber(member) ~= 0
    if pttl >= 0 then
      if not expiry or math.abs(now + pttl - expiry) > 1 then
        redis.call('ZADD', KEYS[3], string.format('%d', now + pttl), name)
        wrong = true
      end
    elseif expiry then
      redis.call('ZREM', KEYS[3], name)
      wrong = true
    end
    if wrong then
      redis.call('ZADD', KEYS[1], 0, name)
      fixed[#fixed + 1] = name
    end
  end
end
log(fixed)
return {#fixed, strings}
`);

/** Members (of the index or #ttl) whose key is gone, or no longer a string, are removed from both. */
export const REBUILD_PRUNE = script(`
local stale = {}
for i = 4, #KEYS do
  local name = ARGV[i - 2]
  if redis.call('TYPE', KEYS[i]).ok ~= 'string' and (redis.call('ZSCORE', KEYS[1], name) or redis.call('ZSCORE', KEYS[3], name)) then
    stale[#stale + 1] = name
  end
end
if #stale == 0 then return 0 end
redis.call('ZREM', KEYS[1], unpack(stale))
redis.call('ZREM', KEYS[3], unpack(stale))
log(stale)
return #stale
`);

export async function runScript(client: RedisCommander, s: Script, keys: string[], args: string[]): Promise<unknown> {
  try {
    return await client.sendCommand(["EVALSHA", s.sha, String(keys.length), ...keys, ...args]);
  } catch (error) {
    const reply = (error as { cause?: unknown })?.cause ?? error;
    if (!String((reply as Error)?.message).startsWith("NOSCRIPT")) throw error;
    return client.sendCommand(["EVAL", s.source, String(keys.length), ...keys, ...args]);
  }
}
