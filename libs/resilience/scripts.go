package resilience

import "github.com/redis/go-redis/v9"

// Every script reads the clock with redis.call('TIME'), so all workers
// share one clock, and touches only keys that share the destination's hash
// tag, so it runs on Redis Cluster. Admission is one script, so a refusal
// by a later check consumes nothing from an earlier one, and one round
// trip decides.

// admitScript checks, in order, the destination's rate limit, the
// subscription's circuit breaker and the destination's concurrency limit,
// and takes a slot of each only if all three agree. The limits compared are
// the asking subscription's.
//
// KEYS: destination's rate window (sorted set of admission times in µs),
// rate sequence, subscription's circuit (hash), destination's permits
// (sorted set of permit ids scored by expiry in ms).
// ARGV: rate limit, window ms, open ms, half-open trials, circuit ttl ms,
// concurrency limit, permit ttl ms, permit id.
//
// Returns {1, 0, trial} when admitted; {0, reason, wait_ms} when not, with
// reason 1 rate limited (wait: until the oldest admission leaves the
// window), 2 circuit open (wait: until it half-opens), 3 concurrency
// limited (wait chosen by the caller), 4 circuit half-open with every trial
// in flight (wait: until the trials' time ends; the caller asks again much
// sooner, since the trials usually report well before then).
//
// The circuit: an open circuit turns half-open once open ms have passed;
// half-open lets exactly `trials` requests through and starts over if they
// have not all reported within open ms (their worker died).
var admitScript = redis.NewScript(`
local t = redis.call('TIME')
local nowUS = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(nowUS / 1000)

local window = tonumber(ARGV[2]) * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowUS - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, 1, math.ceil((tonumber(oldest[2]) + window - nowUS) / 1000)}
end

local openMS = tonumber(ARGV[3])
local trial = 0
local state = redis.call('HGET', KEYS[3], 'state')
if state == 'open' or state == 'half_open' then
  local since = tonumber(redis.call('HGET', KEYS[3], 'since'))
  if state == 'open' then
    if now < since + openMS then
      return {0, 2, since + openMS - now}
    end
    redis.call('HSET', KEYS[3], 'state', 'half_open', 'since', now, 'trials', 0, 'successes', 0)
    redis.call('PEXPIRE', KEYS[3], ARGV[5])
    since = now
  elseif now >= since + openMS then
    redis.call('HSET', KEYS[3], 'since', now, 'trials', 0, 'successes', 0)
    since = now
  end
  if tonumber(redis.call('HGET', KEYS[3], 'trials')) >= tonumber(ARGV[4]) then
    return {0, 4, math.max(since + openMS - now, 1)}
  end
  trial = 1
end

redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
if redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[6]) then
  return {0, 3, 0}
end

redis.call('ZADD', KEYS[4], now + tonumber(ARGV[7]), ARGV[8])
redis.call('PEXPIRE', KEYS[4], ARGV[7])
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], nowUS, nowUS .. ':' .. seq)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if trial == 1 then
  redis.call('HINCRBY', KEYS[3], 'trials', 1)
end
return {1, 0, trial}
`)

// doneScript releases a permit and, when report is 1, records the attempt's
// outcome in the circuit, unless the subscription was deleted meanwhile.
// KEYS: permits, circuit, gone marker. ARGV: permit id, report (1/0),
// success (1/0), trial (1/0), failure threshold, trials, ttl ms.
// Returns 1 when the circuit opened, 2 when it closed, 0 otherwise.
// Outcomes of requests let through before the circuit opened do not move a
// half-open circuit.
var doneScript = redis.NewScript(`
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[2] ~= '1' or redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local success = ARGV[3] == '1'
local trial = ARGV[4] == '1'
local state = redis.call('HGET', KEYS[2], 'state') or 'closed'
if state == 'closed' then
  if success then
    redis.call('HDEL', KEYS[2], 'failures')
    return 0
  end
  local f = redis.call('HINCRBY', KEYS[2], 'failures', 1)
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
  if f >= tonumber(ARGV[5]) then
    redis.call('HSET', KEYS[2], 'state', 'open', 'since', now, 'failures', 0)
    return 1
  end
  return 0
end
if state == 'half_open' and trial then
  if not success then
    redis.call('HSET', KEYS[2], 'state', 'open', 'since', now)
    redis.call('PEXPIRE', KEYS[2], ARGV[7])
    return 1
  end
  if redis.call('HINCRBY', KEYS[2], 'successes', 1) >= tonumber(ARGV[6]) then
    redis.call('DEL', KEYS[2])
    return 2
  end
end
return 0
`)

// breakerStateScript reports the effective state: an open circuit whose
// open period has passed is half-open.
var breakerStateScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'open' and now >= tonumber(redis.call('HGET', KEYS[1], 'since')) + tonumber(ARGV[1]) then
  return 'half_open'
end
return state
`)
