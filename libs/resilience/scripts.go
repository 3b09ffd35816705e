package resilience

import "github.com/redis/go-redis/v9"

// Every script reads the clock with redis.call('TIME'), so all workers
// share one clock, and touches only keys that share the destination's hash
// tag, so it runs on Redis Cluster. Admission is one script, so a refusal
// by a later check consumes nothing from an earlier one, and one round
// trip decides.

// admitScript decides, in order, one or more admissions to one target
// under the same limits (a worker's batch usually holds many deliveries
// to one destination): for each it finds the request's turn in the
// destination's pace, checks the subscription's circuit breaker and the
// destination's concurrency limit, and takes a turn and a permit only if
// all agree. The answers are those of running the checks once per
// admission, one after the other; one call only spares Redis the per-call
// work (one script run, one clock reading, one trim of each set). The
// limits compared are the asking subscription's.
//
// The pace (ADR 29): the rate window holds the destination's send times,
// past and booked. A request's turn is the spacing (window / rate limit)
// after the last one booked, or now if that is past, and later still if the
// second ending at it already holds as many as the rate limit (a
// subscription with a lower limit than the others'). A turn at most `ahead`
// from now is booked and answered with its delay, so the worker sends at
// the turn (a booked turn holds its permit, so the concurrency limit also
// bounds how many are booked). A later turn is refused, with the wait until
// it comes within `ahead`; the refusals of one call queue behind each
// other, so they come back one spacing apart rather than all at once.
//
// KEYS: destination's rate window (sorted set of send times in µs),
// subscription's circuit (hash), destination's permits (sorted set of
// permit ids scored by expiry in ms).
// ARGV: rate limit, window ms, open ms, half-open trials, circuit ttl ms,
// concurrency limit, permit ttl ms, ahead ms, then one permit id per
// admission.
//
// Returns four numbers per admission, in order: 1, 0, trial, delay µs when
// admitted; 0, reason, wait ms, 0 when not, with reason 1 rate limited
// (wait: until its turn comes within ahead), 2 circuit open (wait: until
// it half-opens), 3 concurrency limited (wait chosen by the caller), 4
// circuit half-open with every trial in flight (wait: until the trials'
// time ends; the caller asks again much sooner, since the trials usually
// report well before then).
//
// The circuit: an open circuit turns half-open once open ms have passed;
// half-open lets exactly `trials` requests through and starts over if they
// have not all reported within open ms (their worker died). Admission never
// changes a closed circuit, so it is read once.
var admitScript = redis.NewScript(`
local t = redis.call('TIME')
local nowUS = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(nowUS / 1000)
local rateLimit, windowMS = tonumber(ARGV[1]), tonumber(ARGV[2])
local window = windowMS * 1000
local openMS, trials = tonumber(ARGV[3]), tonumber(ARGV[4])
local concLimit, permitTTL = tonumber(ARGV[6]), tonumber(ARGV[7])
local spacing = math.ceil(window / rateLimit)
local ahead = tonumber(ARGV[8]) * 1000

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowUS - window)
local size = redis.call('ZCARD', KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local held = redis.call('ZCARD', KEYS[3])
local state = redis.call('HGET', KEYS[2], 'state')
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local cursor = tonumber(last[2])

-- Turns booked by this call, written to the window before it is counted
-- and at the end.
local stamps = {}
local function flush()
  if #stamps > 0 then
    redis.call('ZADD', KEYS[1], unpack(stamps))
    stamps = {}
  end
end
-- turn returns the first time from s whose second holds fewer than the
-- rate limit. A window holding fewer sends in all needs no count.
local function turn(s)
  if size < rateLimit then
    return s
  end
  flush()
  local from, to = '(' .. string.format('%.0f', s - window), string.format('%.0f', s)
  local n = redis.call('ZCOUNT', KEYS[1], from, to)
  if n >= rateLimit then
    local leaving = redis.call('ZRANGEBYSCORE', KEYS[1], from, to, 'WITHSCORES', 'LIMIT', n - rateLimit, 1)
    s = tonumber(leaving[2]) + window
  end
  return s
end

local out, permits, admitted, booked, queued = {}, {}, 0, nowUS, false
for i = 9, #ARGV do
  local res
  local s = nowUS
  if queued then
    -- Behind a refusal: only the wait is estimated.
    s = cursor + spacing
  elseif cursor then
    s = turn(math.max(nowUS, cursor + spacing))
  end
  if s - nowUS > ahead then
    cursor, queued = s, true
    res = {0, 1, math.ceil((s - nowUS - ahead) / 1000), 0}
  end
  local trial = 0
  if not res and (state == 'open' or state == 'half_open') then
    local since = tonumber(redis.call('HGET', KEYS[2], 'since'))
    if state == 'open' then
      if now < since + openMS then
        res = {0, 2, since + openMS - now, 0}
      else
        redis.call('HSET', KEYS[2], 'state', 'half_open', 'since', now, 'trials', 0, 'successes', 0)
        redis.call('PEXPIRE', KEYS[2], ARGV[5])
        state, since = 'half_open', now
      end
    elseif now >= since + openMS then
      redis.call('HSET', KEYS[2], 'since', now, 'trials', 0, 'successes', 0)
      since = now
    end
    if not res then
      if tonumber(redis.call('HGET', KEYS[2], 'trials')) >= trials then
        res = {0, 4, math.max(since + openMS - now, 1), 0}
      else
        trial = 1
      end
    end
  end
  if not res and held >= concLimit then
    res = {0, 3, 0, 0}
  end
  if not res then
    held, admitted, cursor, booked, size = held + 1, admitted + 1, s, s, size + 1
    permits[#permits + 1] = now + permitTTL
    permits[#permits + 1] = ARGV[i]
    stamps[#stamps + 1] = s
    stamps[#stamps + 1] = ARGV[i]
    if trial == 1 then
      redis.call('HINCRBY', KEYS[2], 'trials', 1)
    end
    res = {1, 0, trial, s - nowUS}
  end
  out[#out + 1], out[#out + 2], out[#out + 3], out[#out + 4] = res[1], res[2], res[3], res[4]
end

if admitted > 0 then
  flush()
  redis.call('ZADD', KEYS[3], unpack(permits))
  redis.call('PEXPIRE', KEYS[3], permitTTL)
  redis.call('PEXPIRE', KEYS[1], windowMS + math.ceil((booked - nowUS) / 1000))
end
return out
`)

// doneScript ends one or more admissions of one target, in order: each
// releases its permit and, when its report is 1, records the attempt's
// outcome in the circuit, unless the subscription was deleted meanwhile.
// Every failure reported, whatever the circuit's state, is also counted in
// the subscription's failure record (see failureRecord).
// KEYS: permits, circuit, gone marker, failure record. ARGV: failure
// threshold, trials, ttl ms, then four per admission: permit id, report
// (1/0), success (1/0), trial (1/0).
// Returns one number per admission: 1 when its outcome opened the circuit,
// 2 when it closed it, 0 otherwise.
// Outcomes of requests let through before the circuit opened do not move a
// half-open circuit.
// The numbers admitScript answers with (its first number per admission,
// then the reason of a refusal) and doneScript answers with.
const (
	admitted         = 1
	refusedRate      = 1
	refusedOpen      = 2
	refusedBusy      = 3
	refusedTrialsOut = 4
	doneOpened       = 1
	doneClosed       = 2
)

var doneScript = redis.NewScript(`
local permits = {}
for i = 4, #ARGV, 4 do
  permits[#permits + 1] = ARGV[i]
end
redis.call('ZREM', KEYS[1], unpack(permits))
local out = {}
if redis.call('EXISTS', KEYS[3]) == 1 then
  for i = 1, #permits do
    out[i] = 0
  end
  return out
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local threshold, trials = tonumber(ARGV[1]), tonumber(ARGV[2])
-- failed counts a failure in the record's slot of this minute, starting
-- the slot afresh when it last counted an earlier minute.
local function failed()
  local m = math.floor(now / 60000)
  local slot = tostring(m % 60)
  if tonumber(redis.call('HGET', KEYS[4], 'm' .. slot)) == m then
    redis.call('HINCRBY', KEYS[4], 'n' .. slot, 1)
    redis.call('HSET', KEYS[4], 'last', now)
  else
    redis.call('HSET', KEYS[4], 'm' .. slot, m, 'n' .. slot, 1, 'last', now)
  end
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
end
-- done ends the admission whose arguments start at ARGV[i].
local function done(i)
  if ARGV[i + 1] ~= '1' then
    return 0
  end
  local success = ARGV[i + 2] == '1'
  local trial = ARGV[i + 3] == '1'
  if not success then
    failed()
  end
  local state = redis.call('HGET', KEYS[2], 'state') or 'closed'
  if state == 'closed' then
    if success then
      redis.call('HDEL', KEYS[2], 'failures')
      return 0
    end
    local f = redis.call('HINCRBY', KEYS[2], 'failures', 1)
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
    if f >= threshold then
      -- opened stays while the circuit goes between open and half-open:
      -- it is when the trouble began, which 'since' is not.
      redis.call('HSET', KEYS[2], 'state', 'open', 'since', now, 'opened', now, 'failures', 0)
      return 1
    end
    return 0
  end
  if state == 'half_open' and trial then
    if not success then
      redis.call('HSET', KEYS[2], 'state', 'open', 'since', now)
      redis.call('PEXPIRE', KEYS[2], ARGV[3])
      return 1
    end
    if redis.call('HINCRBY', KEYS[2], 'successes', 1) >= trials then
      redis.call('DEL', KEYS[2])
      return 2
    end
  end
  return 0
end
for i = 4, #ARGV, 4 do
  out[#out + 1] = done(i)
end
return out
`)

// circuitScript reports a circuit's effective state (an open circuit
// whose open period has passed is half-open), when it opened (0 while
// closed; a circuit opened before 'opened' was kept gives 'since'), and
// the subscription's failure record: its last failure (ms, 0 when none)
// and its failures in the slots of the last 60 minutes, this one included.
// KEYS: circuit, failure record. ARGV: open ms.
var circuitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local c = redis.call('HMGET', KEYS[1], 'state', 'since', 'opened')
local state = c[1] or 'closed'
if state == 'open' and now >= tonumber(c[2]) + tonumber(ARGV[1]) then
  state = 'half_open'
end
local opened = 0
if state ~= 'closed' then
  opened = tonumber(c[3] or c[2])
end
local h = redis.call('HGETALL', KEYS[2])
local rec = {}
for i = 1, #h, 2 do
  rec[h[i]] = tonumber(h[i + 1])
end
local m, failures = math.floor(now / 60000), 0
for slot = 0, 59 do
  local at = rec['m' .. slot]
  if at and at > m - 60 then
    failures = failures + rec['n' .. slot]
  end
end
return {state, opened, rec['last'] or 0, failures}
`)
