package delivery

import (
	"math/rand/v2"
	"time"
)

// RetryPolicy decides when a failed delivery is tried again.
type RetryPolicy struct {
	// MaxAttempts is the most attempts a delivery gets before it fails.
	MaxAttempts int
	// BaseDelay is the largest wait before the first retry; each retry
	// doubles it, up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
}

// Delay returns the wait after failed attempt n (1-based): exponential
// backoff with full jitter, so receivers coming back from an outage are not
// hit by every retry at once.
func (p RetryPolicy) Delay(n int) time.Duration {
	ceiling := p.BaseDelay
	for i := 1; i < n && ceiling < p.MaxDelay; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, p.MaxDelay)
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling) + time.Millisecond
}
