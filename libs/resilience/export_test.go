package resilience

import (
	"context"
	"time"
)

// The one-delivery forms of AdmitBatch and FinishBatch, for the tests: the
// worker only ever admits and finishes in batches.

// Admit checks, for one delivery, the destination's rate limit, the subscription's
// circuit breaker and the destination's concurrency limit. It never blocks
// on a busy destination and never fails: without Redis it decides
// in-process. timeout is the attempt's timeout; a permit outlives it so
// that a slow attempt keeps its slot. An allowed admission must be passed
// to Done or Release (or FinishBatch).
func (g *Guard) Admit(ctx context.Context, t Target, limits Limits, timeout time.Duration) Admission {
	return g.AdmitBatch(ctx, []AdmitRequest{{Target: t, Limits: limits, Timeout: timeout}})[0]
}

// Done releases an allowed admission's permit and reports the attempt's
// outcome to the circuit breaker.
func (g *Guard) Done(ctx context.Context, a Admission, success bool) {
	g.FinishBatch(ctx, []Finished{{Admission: a, Report: true, Success: success}})
}

// Release gives back an allowed admission that was not used (the worker is
// stopping): its permit is freed and nothing is reported to the circuit
// breaker.
func (g *Guard) Release(ctx context.Context, a Admission) {
	g.FinishBatch(ctx, []Finished{{Admission: a}})
}
