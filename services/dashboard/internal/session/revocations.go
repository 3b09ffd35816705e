package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
)

// ErrEnded is a session that was signed out, or issued before every
// session was ended.
var ErrEnded = errors.New("session: ended")

// ErrUnavailable means Redis could not say whether a session has ended;
// the dashboard then refuses the session rather than guess.
var ErrUnavailable = errors.New("session: cannot tell whether the session has ended")

// Revocations records in Redis which sessions ended before their expiry,
// so that every dashboard instance sharing the Redis refuses them from the
// next request on: a signed-out session by its id, until it would have
// expired, and every session issued before a not-before time, which
// "sign out everywhere" moves to now. Times are Redis's (TIME), so that
// instances whose clocks differ agree on what came first.
//
// A Redis that has lost its data has no not-before time: the first check
// sets it to now, ending every session issued before, since those signed
// out since cannot be told apart any more.
type Revocations struct {
	clock     clock.Clock
	rdb       redis.UniversalClient
	ended     string // key prefix of the ended sessions' ids
	notBefore string // key of the not-before time
}

// NewRevocations keeps the revocations in rdb, under keys that start with
// prefix (REDIS_KEY_PREFIX) and share one hash tag, so that one script
// may touch them on Redis Cluster. clk is the clock sessions' expiry times
// are read on, the one the Sealer and the server use (clock.Real() when
// nil); Redis keeps its own for the times it compares.
func NewRevocations(rdb redis.UniversalClient, prefix string, clk clock.Clock) *Revocations {
	if clk == nil {
		clk = clock.Real()
	}
	return &Revocations{clock: clk, rdb: rdb, ended: prefix + ":{dashboard}:ended:", notBefore: prefix + ":{dashboard}:not-before"}
}

// Times in the scripts are Redis's, in microseconds, kept as strings: a
// Lua number would be written with 14 significant digits.
const redisNow = `
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', t[2])
`

// issueScript returns now for a new session, first setting the not-before
// time to now if there is none, so that the session is not taken for one
// issued before Redis lost its data.
//
// KEYS: not-before. Returns now, in µs.
var issueScript = redis.NewScript(redisNow + `
redis.call('SET', KEYS[1], now, 'NX')
return now
`)

// checkScript reports whether a session has ended.
//
// KEYS: the session's ended marker, not-before. ARGV: when the session
// was issued, in µs. Returns 1 when it has ended, else 0.
var checkScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 1
end
local notBefore = redis.call('GET', KEYS[2])
if not notBefore then
` + redisNow + `
  redis.call('SET', KEYS[2], now)
  notBefore = now
end
if tonumber(ARGV[1]) < tonumber(notBefore) then
  return 1
end
return 0
`)

// endAllScript moves the not-before time to now, never back.
//
// KEYS: not-before.
var endAllScript = redis.NewScript(redisNow + `
local notBefore = redis.call('GET', KEYS[1])
if not notBefore or tonumber(now) > tonumber(notBefore) then
  redis.call('SET', KEYS[1], now)
end
return now
`)

// Issue returns the time to record as a new session's Issued.
func (v *Revocations) Issue(ctx context.Context) (time.Time, error) {
	now, err := issueScript.Run(ctx, v.rdb, []string{v.notBefore}).Text()
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	us, err := strconv.ParseInt(now, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: Redis's time %q: %w", ErrUnavailable, now, err)
	}
	return time.UnixMicro(us), nil
}

// Check returns ErrEnded if s has ended, ErrUnavailable if Redis does not
// answer, and nil if s may be used.
func (v *Revocations) Check(ctx context.Context, s Session) error {
	ended, err := checkScript.Run(ctx, v.rdb, []string{v.ended + s.ID, v.notBefore}, s.Issued.UnixMicro()).Int()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if ended == 1 {
		return ErrEnded
	}
	return nil
}

// End ends s on every instance. Its id is kept a minute longer than the
// session would have lasted, so that clocks a little apart cannot revive
// it.
func (v *Revocations) End(ctx context.Context, s Session) error {
	if err := v.rdb.Set(ctx, v.ended+s.ID, 1, s.Expires.Sub(v.clock.Now())+time.Minute).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// EndAll ends every session issued until now, on every instance.
func (v *Revocations) EndAll(ctx context.Context) error {
	if err := endAllScript.Run(ctx, v.rdb, []string{v.notBefore}).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Ping checks that Redis answers, for readiness.
func (v *Revocations) Ping(ctx context.Context) error {
	return v.rdb.Ping(ctx).Err()
}
