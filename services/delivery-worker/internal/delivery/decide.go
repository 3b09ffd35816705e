package delivery

import (
	"net/http"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/retry"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// decide turns an attempt into the delivery's outcome. It is a pure
// function of the policy, the attempt, the receiver's Retry-After (zero
// when it sent none), the time and the jittered backoff drawn for this
// attempt (retry.Policy.Delay), so every path is table-tested.
func decide(p retry.Policy, a domain.Attempt, retryAfter time.Duration, now time.Time, backoff time.Duration) store.Outcome {
	switch {
	case a.Succeeded():
		return store.Delivered(a)
	case a.StatusCode != nil && *a.StatusCode == http.StatusGone:
		// The receiver says the endpoint is retired for good: stop sending.
		return store.Gone(a, goneReason)
	case a.ErrorClass == domain.ErrorBlocked:
		// The destination may never be reached: retrying cannot help.
		return store.Failed(a)
	}
	next := p.AfterDrawn(a.Number, now, retryAfter, backoff)
	if !next.Retry {
		return store.Failed(a)
	}
	return store.Retrying(a, next.At)
}

// policyFor is the worker's retry policy with a subscription's overrides.
func policyFor(p retry.Policy, s domain.DeliverySettings) retry.Policy {
	if s.MaxAttempts > 0 {
		p.MaxAttempts = s.MaxAttempts
	}
	if s.RetryBaseDelay > 0 {
		p.BaseDelay = s.RetryBaseDelay
	}
	if s.RetryMaxDelay > 0 {
		p.MaxDelay = s.RetryMaxDelay
	}
	p.MaxDelay = max(p.MaxDelay, p.BaseDelay)
	return p
}
