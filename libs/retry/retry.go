// Package retry decides when a failed delivery is tried again: exponential
// backoff with full jitter, bounded by a largest delay and a number of
// attempts, and the receiver's Retry-After where it sends one.
package retry

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults: the first retry comes within 5 s and the ceilings double up to
// a day; with full jitter the 15 retries of 16 attempts span about 23 hours
// on average, comparable to the Standard Webhooks schedule.
const (
	DefaultMaxAttempts = 16
	DefaultBaseDelay   = 5 * time.Second
	DefaultMaxDelay    = 24 * time.Hour
)

// Policy is one retry schedule.
type Policy struct {
	// MaxAttempts is the most attempts a delivery gets; after the last
	// failed one it is failed for good.
	MaxAttempts int
	// BaseDelay bounds the wait after the first failed attempt; each
	// further attempt doubles the bound, up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
}

// Default returns the default policy.
func Default() Policy {
	return Policy{MaxAttempts: DefaultMaxAttempts, BaseDelay: DefaultBaseDelay, MaxDelay: DefaultMaxDelay}
}

// Ceiling is the longest wait after failed attempt n (1-based):
// min(MaxDelay, BaseDelay·2^(n-1)).
func (p Policy) Ceiling(n int) time.Duration {
	c := p.BaseDelay
	for i := 1; i < n && c < p.MaxDelay; i++ {
		c *= 2
	}
	return min(c, p.MaxDelay)
}

// Delay draws the wait after failed attempt n uniformly from (0, Ceiling(n)]
// ("full jitter"), so receivers coming back from an outage are not hit by
// every retry at once.
func (p Policy) Delay(n int) time.Duration {
	c := p.Ceiling(n)
	if c <= 0 {
		return 0
	}
	return rand.N(c) + 1 //nolint:gosec // G404: jitter needs spread, not secrecy
}

// Decision is what follows a failed attempt.
type Decision struct {
	// Retry is false when the attempts are used up.
	Retry bool
	// At is when to try again.
	At time.Time
}

// After decides what follows failed attempt n at now. A Retry-After the
// receiver sent (zero if none) replaces the backoff, clamped to
// [1 s, MaxDelay] so a receiver can neither make Dispatch hammer it nor park
// a delivery for longer than the policy allows.
func (p Policy) After(n int, now time.Time, retryAfter time.Duration) Decision {
	return p.AfterDrawn(n, now, retryAfter, p.Delay(n))
}

// AfterDrawn is After with the jittered backoff already drawn (by Delay),
// so that a caller can decide without randomness and test every path.
func (p Policy) AfterDrawn(n int, now time.Time, retryAfter, backoff time.Duration) Decision {
	if n >= p.MaxAttempts {
		return Decision{}
	}
	wait := backoff
	if retryAfter > 0 {
		wait = min(max(retryAfter, time.Second), p.MaxDelay)
	}
	return Decision{Retry: true, At: now.Add(wait)}
}

// ParseRetryAfter reads a Retry-After header value: delay-seconds or an
// HTTP date. It returns 0 when the value is missing or unusable.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// HonoursRetryAfter reports whether a status code's Retry-After is used:
// 429 Too Many Requests and 503 Service Unavailable.
func HonoursRetryAfter(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}
