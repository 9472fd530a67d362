import { createHash } from "node:crypto";
import type { RedisCommander } from "./redis-tx.js";

/**
 * The only Lua left, and only on the operator's path (rebuildIndex, run with an admin URL;
 * workspace ACL users may not EVAL). A rebuild must check "is this key a string, with which
 * expiry" and change the index in the same step, or a write landing in between could lose
 * its index member — there is no plain-command way to make that check atomic.
 *
 * KEYS: index, log, then data keys. ARGV: log cap ('' = the prefix keeps no log), then names.
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
 * Each named key that holds a string gets a member scored by its remaining PTTL (or has a wrong
 * score fixed). Returns {members added or fixed, string keys seen}.
 */
export const REBUILD_ADD = script(`
local names, scores, strings = {}, {}, 0
for i = 3, #KEYS do
  local name = ARGV[i - 1]
  if redis.call('TYPE', KEYS[i]).ok == 'string' then
    strings = strings + 1
    local pttl = redis.call('PTTL', KEYS[i])
    local want = math.huge
    if pttl >= 0 then want = now + pttl end
    local have = redis.call('ZSCORE', KEYS[1], name)
    have = have and tonumber(have)
    if not have or (want == math.huge) ~= (have == math.huge) or (want ~= math.huge and math.abs(want - have) > 1) then
      names[#names + 1] = name
      scores[#scores + 1] = want
    end
  end
end
for i, name in ipairs(names) do
  local score = '+inf'
  if scores[i] ~= math.huge then score = string.format('%d', scores[i]) end
  redis.call('ZADD', KEYS[1], score, name)
end
log(names)
return {#names, strings}
`);

/** Members whose key is gone (or no longer a string) are removed. */
export const REBUILD_PRUNE = script(`
local stale = {}
for i = 3, #KEYS do
  if redis.call('TYPE', KEYS[i]).ok ~= 'string' and redis.call('ZSCORE', KEYS[1], ARGV[i - 1]) then
    stale[#stale + 1] = ARGV[i - 1]
  end
end
if #stale == 0 then return 0 end
redis.call('ZREM', KEYS[1], unpack(stale))
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
