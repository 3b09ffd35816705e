package resilience

import "github.com/redis/go-redis/v9"

// Every script reads the clock with redis.call('TIME'), so all workers
// share one clock, and touches only keys that share the subscription's hash
// tag, so it runs on Redis Cluster.

// rateScript is a sliding-window log: KEYS[1] is a sorted set of admission
// times (µs), KEYS[2] a sequence making members unique. ARGV: limit,
// window in ms. Returns {1, 0} when admitted, {0, wait_ms} when not, where
// wait_ms is when the oldest admission leaves the window.
var rateScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  local seq = redis.call('INCR', KEYS[2])
  redis.call('ZADD', KEYS[1], now, now .. ':' .. seq)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.ceil((tonumber(oldest[2]) + window - now) / 1000)}
`)

// breakerAllowScript decides whether a request may pass the circuit
// (KEYS[1], a hash). ARGV: open_ms, trials, ttl_ms. Returns {allowed,
// wait_ms, trial}. An open circuit turns half-open once open_ms has passed;
// half-open lets exactly `trials` requests through, and starts over if they
// have not all reported within open_ms (their worker died).
var breakerAllowScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local openMS = tonumber(ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'closed' then
  return {1, 0, 0}
end
local since = tonumber(redis.call('HGET', KEYS[1], 'since'))
if state == 'open' then
  if now < since + openMS then
    return {0, since + openMS - now, 0}
  end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'since', now, 'trials', 0, 'successes', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  since = now
elseif now >= since + openMS then
  redis.call('HSET', KEYS[1], 'since', now, 'trials', 0, 'successes', 0)
  since = now
end
if tonumber(redis.call('HGET', KEYS[1], 'trials')) < tonumber(ARGV[2]) then
  redis.call('HINCRBY', KEYS[1], 'trials', 1)
  return {1, 0, 1}
end
return {0, math.max(since + openMS - now, 1), 0}
`)

// breakerReportScript records an outcome (KEYS[1]). ARGV: success (1/0),
// trial (1/0), failure threshold, trials, ttl_ms. Returns 1 when the
// circuit opened, 2 when it closed, 0 otherwise. Outcomes of requests let
// through before the circuit opened do not move a half-open circuit.
var breakerReportScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local success = ARGV[1] == '1'
local trial = ARGV[2] == '1'
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then
  if success then
    redis.call('HDEL', KEYS[1], 'failures')
    return 0
  end
  local f = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  if f >= tonumber(ARGV[3]) then
    redis.call('HSET', KEYS[1], 'state', 'open', 'since', now, 'failures', 0)
    return 1
  end
  return 0
end
if state == 'half_open' and trial then
  if not success then
    redis.call('HSET', KEYS[1], 'state', 'open', 'since', now)
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
    return 1
  end
  if redis.call('HINCRBY', KEYS[1], 'successes', 1) >= tonumber(ARGV[4]) then
    redis.call('DEL', KEYS[1])
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

// acquireScript takes a permit of a semaphore (KEYS[1], a sorted set of
// permit ids scored by expiry in ms). ARGV: limit, ttl_ms, permit id.
// Expired permits (a crashed worker's) are dropped first. Returns 1 or 0.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)
