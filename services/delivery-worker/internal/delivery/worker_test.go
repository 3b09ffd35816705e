package delivery

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/retry"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// fakeStore is an in-memory Store: every delivery it knows is claimable
// once, and it keeps the outcomes applied.
type fakeStore struct {
	mu       sync.Mutex
	jobs     map[int64]store.Job
	claimed  map[int64]bool
	outcomes []store.Outcome
	// claimErr fails every claim call; applyErr, if set, answers each
	// outcome (per outcome, or the whole call when whole is true).
	claimErr error
	applyErr func(o store.Outcome) (err error, whole bool)
	applies  atomic.Int64
	// gate, when set, holds every ApplyOutcomes call until it is closed.
	gate chan struct{}
}

func newFakeStore(jobs ...store.Job) *fakeStore {
	s := &fakeStore{jobs: map[int64]store.Job{}, claimed: map[int64]bool{}}
	for _, j := range jobs {
		s.jobs[j.DeliveryID] = j
	}
	return s
}

func (s *fakeStore) ClaimDeliveries(_ context.Context, ids []int64, _, _ time.Duration) ([]store.Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claimErr != nil {
		return nil, s.claimErr
	}
	claims := make([]store.Claim, len(ids))
	for i, id := range ids {
		j, ok := s.jobs[id]
		if !ok || s.claimed[id] {
			claims[i].Err = domain.ErrNotClaimable
			continue
		}
		s.claimed[id] = true
		claims[i].Job = j
	}
	return claims, nil
}

func (s *fakeStore) ApplyOutcomes(_ context.Context, os []store.Outcome) ([]store.Applied, error) {
	if s.gate != nil {
		<-s.gate
	}
	s.applies.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	applied := make([]store.Applied, len(os))
	for i, o := range os {
		if s.applyErr != nil {
			err, whole := s.applyErr(o)
			if whole && err != nil {
				return nil, err
			}
			if applied[i].Err = err; err != nil {
				continue
			}
		}
		s.outcomes = append(s.outcomes, o)
		if o.Kind() == store.OutcomeReleased {
			s.claimed[o.DeliveryID()] = false
		}
	}
	return applied, nil
}

func (s *fakeStore) MarkUnpublished(context.Context, ...int64) error { return nil }

func (s *fakeStore) ExistingSubscriptions(context.Context, []string) ([]string, error) {
	return nil, nil
}

func (s *fakeStore) applied() []store.Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]store.Outcome(nil), s.outcomes...)
}

// fakeGuard admits as its admit function says and keeps what it was told.
type fakeGuard struct {
	admit     func(n int, req resilience.AdmitRequest) resilience.Admission
	mu        sync.Mutex
	asked     int
	finished  []resilience.Finished
	throttled []resilience.Reason
	dropped   []string
}

func allow(int, resilience.AdmitRequest) resilience.Admission {
	return resilience.Admission{Allowed: true}
}

func (g *fakeGuard) AdmitBatch(_ context.Context, reqs []resilience.AdmitRequest) []resilience.Admission {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]resilience.Admission, len(reqs))
	for i, r := range reqs {
		g.asked++
		out[i] = g.admit(g.asked, r)
	}
	return out
}

func (g *fakeGuard) FinishBatch(_ context.Context, fs []resilience.Finished) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.finished = append(g.finished, fs...)
}

func (g *fakeGuard) Throttled(r resilience.Reason) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.throttled = append(g.throttled, r)
}

func (g *fakeGuard) Drop(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dropped = append(g.dropped, id)
}

func (g *fakeGuard) Observed() []string { return nil }

func (g *fakeGuard) state() (asked int, finished []resilience.Finished, throttled []resilience.Reason, dropped []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.asked, append([]resilience.Finished(nil), g.finished...), append([]resilience.Reason(nil), g.throttled...), append([]string(nil), g.dropped...)
}

var start = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// harness is a worker on fakes and a fake clock; its attempts are answered
// by a poster (the Sender's own tests cover HTTP).
type harness struct {
	w      *Worker
	store  *fakeStore
	guard  *fakeGuard
	poster *poster
	clock  *clock.Fake
	logs   *testkit.Logs // the worker's log, at debug level
}

// poster answers attempts with status. While hold is open an attempt
// waits for it to close or for the attempt's context to end, as a request
// to a receiver that has not answered yet. sending gets a value as each
// attempt starts.
type poster struct {
	status  int
	hold    chan struct{}
	sent    atomic.Int64
	sending chan struct{}
}

func (p *poster) Send(ctx context.Context, job store.Job, _ time.Duration, turn Turn) Result {
	now := time.Now()
	a := domain.Attempt{DeliveryID: job.DeliveryID, EventID: job.Event.ID, SubscriptionID: job.SubscriptionID, Number: job.Attempt, StartedAt: now}
	if turn.late(now) {
		return Result{Attempt: a, Late: true}
	}
	p.sent.Add(1)
	p.sending <- struct{}{}
	if p.hold != nil {
		select {
		case <-p.hold:
		case <-ctx.Done():
			a.ErrorClass, a.Error = domain.ErrorTimeout, ctx.Err().Error()
			return Result{Attempt: a}
		}
	}
	code := p.status
	a.StatusCode = &code
	if code > 299 {
		a.ErrorClass, a.Error = domain.ErrorHTTPStatus, "HTTP "+strconv.Itoa(code)
	}
	return Result{Attempt: a}
}

// Now is the system clock's: the poster checks turns on it.
func (p *poster) Now() time.Time { return time.Now() }

// sends waits until n attempts have started.
func (h *harness) sends(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-h.poster.sending:
		case <-time.After(10 * time.Second):
			t.Fatal("no attempt started")
		}
	}
}

type harnessOpts struct {
	status      int           // the receiver's answer (default 204)
	hold        chan struct{} // when set, each attempt waits for it to close
	leaseMargin time.Duration
	slots       int
	admit       func(n int, req resilience.AdmitRequest) resilience.Admission
	jobs        int
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	h := &harness{clock: clock.NewFake(start), logs: &testkit.Logs{}}
	if o.status == 0 {
		o.status = http.StatusNoContent
	}
	if o.leaseMargin == 0 {
		o.leaseMargin = 30 * time.Second
	}
	if o.admit == nil {
		o.admit = allow
	}
	if o.jobs == 0 {
		o.jobs = 1
	}
	jobs := make([]store.Job, o.jobs)
	for i := range jobs {
		jobs[i] = store.Job{DeliveryID: int64(i + 1), SubscriptionID: "sub_1", Attempt: 1, URL: "https://receiver.example/hook",
			Secrets: []string{signing.GenerateSecret()}, SubscriptionCreatedAt: start,
			Event: domain.Event{ID: "evt_1", Type: "order.created", Data: []byte(`{}`), ReceivedAt: start}}
	}
	h.store = newFakeStore(jobs...)
	h.guard = &fakeGuard{admit: o.admit}
	h.poster = &poster{status: o.status, hold: o.hold, sending: make(chan struct{}, o.jobs+16)}
	h.w = NewWorker(h.store, h.poster, h.guard, Config{
		Timeout: 5 * time.Second, LeaseMargin: o.leaseMargin, DestinationSlots: o.slots,
		Retry: retry.Policy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: time.Minute}, Instance: "w1",
		Clock: h.clock, Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	return h
}

func msg(id int64) queue.Message {
	return queue.Message{DeliveryID: id, EventID: "evt_1", SubscriptionID: "sub_1"}
}

// handleAsync runs Handle in the background; the channel gets its error.
func (h *harness) handleAsync(ctx context.Context, id int64) <-chan error {
	done := make(chan error, 1)
	go func() { done <- h.w.Handle(ctx, msg(id)) }()
	return done
}

// advanceWhile moves the fake clock by step each time something waits on
// it, until done has an answer.
func (h *harness) advanceWhile(t *testing.T, done <-chan error, step time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		waiting := make(chan error, 1)
		wctx, stop := context.WithCancel(ctx)
		go func() { waiting <- h.clock.BlockUntilWaiting(wctx, 1) }()
		select {
		case err := <-done:
			stop()
			return err
		case err := <-waiting:
			stop()
			require.NoError(t, err, "neither finished nor waiting on the clock")
			h.clock.Advance(step)
		}
	}
}

func kinds(os []store.Outcome) []store.OutcomeKind {
	var ks []store.OutcomeKind
	for _, o := range os {
		ks = append(ks, o.Kind())
	}
	return ks
}

func TestHandlePaths(t *testing.T) {
	t.Parallel()
	refuse := func(reason resilience.Reason, wait time.Duration) func(int, resilience.AdmitRequest) resilience.Admission {
		return func(n int, _ resilience.AdmitRequest) resilience.Admission {
			if n == 1 {
				return resilience.Admission{Reason: reason, RetryAfter: wait}
			}
			return resilience.Admission{Allowed: true}
		}
	}
	always := func(reason resilience.Reason, wait time.Duration) func(int, resilience.AdmitRequest) resilience.Admission {
		return func(int, resilience.AdmitRequest) resilience.Admission {
			return resilience.Admission{Reason: reason, RetryAfter: wait}
		}
	}
	tests := []struct {
		name  string
		opts  harnessOpts
		sends int64
		kinds []store.OutcomeKind
		// releasedAfter: a Released outcome must be due at least this long after start.
		releasedAfter time.Duration
		report        []bool // Finished.Report of each admission ended
		// throttled: the postponements the worker counted itself.
		throttled []resilience.Reason
		// logged is the level of the "attempt recorded" line, if any: a
		// delivery that went as asked is not worth an operator's eye.
		logged string
	}{
		{name: "delivered", sends: 1, kinds: []store.OutcomeKind{store.OutcomeDelivered}, report: []bool{true}, logged: "DEBUG"},
		{name: "refused briefly: waits in memory, then goes",
			opts:  harnessOpts{admit: refuse(resilience.RateLimited, 300*time.Millisecond)},
			sends: 1, kinds: []store.OutcomeKind{store.OutcomeDelivered}, report: []bool{true}, logged: "DEBUG"},
		{name: "missed its turn: not sent, no attempt spent, asks again for a new turn",
			opts: harnessOpts{admit: func(n int, _ resilience.AdmitRequest) resilience.Admission {
				if n == 1 {
					return resilience.Admission{Allowed: true, Delay: -time.Second}
				}
				return resilience.Admission{Allowed: true}
			}},
			sends: 1, kinds: []store.OutcomeKind{store.OutcomeDelivered}, report: []bool{false, true}, logged: "DEBUG",
			throttled: []resilience.Reason{resilience.RateLimited}},
		{name: "refused long: given back, due when the wait ends",
			opts:  harnessOpts{admit: always(resilience.CircuitOpen, 30*time.Second)},
			kinds: []store.OutcomeKind{store.OutcomeReleased}, releasedAfter: 30 * time.Second},
		{name: "410 Gone: failed and the subscription disabled",
			opts:  harnessOpts{status: http.StatusGone},
			sends: 1, kinds: []store.OutcomeKind{store.OutcomeGone}, report: []bool{true}, logged: "INFO"},
		{name: "500: retrying", opts: harnessOpts{status: http.StatusInternalServerError},
			sends: 1, kinds: []store.OutcomeKind{store.OutcomeRetrying}, report: []bool{true}, logged: "INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tt.opts)
			require.NoError(t, h.advanceWhile(t, h.handleAsync(context.Background(), 1), 100*time.Millisecond))
			require.Equal(t, tt.sends, h.poster.sent.Load(), "requests the receiver got")
			got := h.store.applied()
			require.Equal(t, tt.kinds, kinds(got))
			if tt.releasedAfter > 0 {
				require.False(t, got[0].NextAttemptAt().Before(start.Add(tt.releasedAfter)), "due %s, want at least %s after start", got[0].NextAttemptAt(), tt.releasedAfter)
			}
			_, finished, throttled, _ := h.guard.state()
			require.Equal(t, tt.throttled, throttled)
			require.Len(t, finished, len(tt.report))
			for i, f := range finished {
				require.Equal(t, tt.report[i], f.Report)
			}
			if tt.logged == "" {
				require.NotContains(t, h.logs.String(), `msg="attempt recorded"`)
			} else {
				require.Contains(t, h.logs.String(), "level="+tt.logged+` msg="attempt recorded"`)
			}
		})
	}
}

func TestHandleHeldToTheLeaseBound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{leaseMargin: 4 * time.Second, admit: func(int, resilience.AdmitRequest) resilience.Admission {
		return resilience.Admission{Reason: resilience.RateLimited, RetryAfter: 900 * time.Millisecond}
	}})
	require.NoError(t, h.advanceWhile(t, h.handleAsync(context.Background(), 1), 100*time.Millisecond))
	asked, _, _, _ := h.guard.state()
	require.GreaterOrEqual(t, asked, 2, "a short refusal is asked again")
	require.LessOrEqual(t, h.clock.Now().Sub(start), 2*time.Second+time.Second, "held past half the lease margin")
	require.Zero(t, h.poster.sent.Load())
}

func TestHandleNotClaimable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	require.NoError(t, h.w.Handle(context.Background(), msg(99)))
	require.Zero(t, h.poster.sent.Load())
	require.Empty(t, h.store.applied())
	asked, _, _, _ := h.guard.state()
	require.Zero(t, asked)
}

func TestHandleClaimFailureIsTheQueuesToRetry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.store.claimErr = domain.ErrUnavailable
	require.ErrorIs(t, h.w.Handle(context.Background(), msg(1)), domain.ErrUnavailable)
	require.Zero(t, h.poster.sent.Load())
}

// Stopping while waiting in memory gives the claim back, due at once.
func TestHandleStoppingWhileWaiting(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{admit: func(int, resilience.AdmitRequest) resilience.Admission {
		return resilience.Admission{Reason: resilience.RateLimited, RetryAfter: time.Second}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := h.handleAsync(ctx, 1)
	require.NoError(t, h.clock.BlockUntilWaiting(context.Background(), 1))
	cancel()
	require.NoError(t, <-done)
	got := h.store.applied()
	require.Equal(t, []store.OutcomeKind{store.OutcomeReleased}, kinds(got))
	require.Equal(t, start, got[0].NextAttemptAt())
	require.Zero(t, h.poster.sent.Load())
}

// Stopping during the POST: the attempt is cut short and not spent, the
// admission ended without a report to the circuit.
func TestHandleStoppingDuringTheAttempt(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	h := newHarness(t, harnessOpts{hold: hold})
	t.Cleanup(func() { close(hold) })
	ctx, cancel := context.WithCancel(context.Background())
	done := h.handleAsync(ctx, 1)
	h.sends(t, 1)
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, []store.OutcomeKind{store.OutcomeReleased}, kinds(h.store.applied()))
	_, finished, _, _ := h.guard.state()
	require.Len(t, finished, 1)
	require.False(t, finished[0].Report)
}

// The database down while recording: tried again until the lease margin
// is spent; the circuit still hears of the attempt.
func TestHandleRecordFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{leaseMargin: 3 * time.Second})
	h.store.applyErr = func(store.Outcome) (error, bool) { return domain.ErrUnavailable, true }
	require.NoError(t, h.advanceWhile(t, h.handleAsync(context.Background(), 1), 500*time.Millisecond))
	require.Equal(t, int64(1), h.poster.sent.Load())
	require.Greater(t, h.store.applies.Load(), int64(2), "tried again")
	require.Empty(t, h.store.applied())
	_, finished, _, _ := h.guard.state()
	require.Len(t, finished, 1)
	require.True(t, finished[0].Report)
}

// The subscription deleted while the attempt was in flight: the guard
// forgets it and the circuit hears nothing.
func TestHandleDeletedDuringTheAttempt(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.store.applyErr = func(store.Outcome) (error, bool) { return domain.ErrNotFound, false }
	require.NoError(t, h.w.Handle(context.Background(), msg(1)))
	_, finished, _, dropped := h.guard.state()
	require.Equal(t, []string{"sub_1"}, dropped)
	require.Len(t, finished, 1)
	require.False(t, finished[0].Report)
}

// With one slot for the destination, a second delivery waits in memory for
// the first to finish, then goes; it never runs beside it.
func TestHandleWaitsForADestinationSlot(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	h := newHarness(t, harnessOpts{hold: hold, slots: 1, jobs: 2})
	first := h.handleAsync(context.Background(), 1)
	h.sends(t, 1)
	second := h.handleAsync(context.Background(), 2)
	require.NoError(t, h.clock.BlockUntilWaiting(context.Background(), 1), "the second waits for the slot")
	require.Equal(t, int64(1), h.poster.sent.Load())
	close(hold)
	require.NoError(t, <-first)
	require.NoError(t, <-second)
	require.Equal(t, int64(2), h.poster.sent.Load())
	require.Equal(t, []store.OutcomeKind{store.OutcomeDelivered, store.OutcomeDelivered}, kinds(h.store.applied()))
}

// A destination whose slot has been held for long (it stopped answering)
// sends the next delivery to wait in the database, due when its turn is
// expected, and counts it as destination_busy.
func TestHandleGivesBackWhenTheDestinationIsSlow(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	h := newHarness(t, harnessOpts{hold: hold, slots: 1, jobs: 3})
	first := h.handleAsync(context.Background(), 1)
	h.sends(t, 1)
	h.clock.Advance(3 * time.Second)
	require.NoError(t, h.w.Handle(context.Background(), msg(2)))
	require.NoError(t, h.w.Handle(context.Background(), msg(3)))
	close(hold)
	require.NoError(t, <-first)
	got := h.store.applied()
	require.Equal(t, []store.OutcomeKind{store.OutcomeReleased, store.OutcomeReleased, store.OutcomeDelivered}, kinds(got))
	require.True(t, got[0].NextAttemptAt().After(h.clock.Now()), "due when its turn is expected")
	require.True(t, got[1].NextAttemptAt().After(got[0].NextAttemptAt()), "the backlog is spread, not all due at once")
	_, _, throttled, _ := h.guard.state()
	require.Equal(t, []resilience.Reason{resilience.DestinationBusy, resilience.DestinationBusy}, throttled)
}

// A slot held by a delivery that the destination's own concurrency limit
// keeps refusing (its requests are all out, perhaps from other workers)
// says the destination is not answering, as a request in flight would:
// the next delivery waits in the database, not in memory.
func TestHandleGivesBackWhileTheSlotWaitsOnTheDestination(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{slots: 1, jobs: 2, admit: func(int, resilience.AdmitRequest) resilience.Admission {
		return resilience.Admission{Reason: resilience.ConcurrencyLimited, RetryAfter: 300 * time.Millisecond}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	first := h.handleAsync(ctx, 1)
	require.NoError(t, h.clock.BlockUntilWaiting(context.Background(), 1), "the first waits for admission, holding the slot")
	h.clock.Advance(recheck)
	select {
	case err := <-h.handleAsync(context.Background(), 2):
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the second waits in memory behind a destination that does not answer")
	}
	cancel()
	require.NoError(t, <-first)
	got := h.store.applied()
	require.Equal(t, []store.OutcomeKind{store.OutcomeReleased, store.OutcomeReleased}, kinds(got))
	require.Equal(t, int64(2), got[0].DeliveryID(), "the second went first, to the database")
	_, _, throttled, _ := h.guard.state()
	require.Equal(t, []resilience.Reason{resilience.DestinationBusy}, throttled)
}

// Concurrent claims and outcomes share statements.
func TestHandleGroupsConcurrentDeliveries(t *testing.T) {
	t.Parallel()
	const n = 200
	h := newHarness(t, harnessOpts{jobs: n})
	// The first outcome's statement is held until every delivery was sent,
	// so the others queue behind it, as they do behind a busy database.
	h.store.gate = make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- h.w.Handle(context.Background(), msg(int64(i+1))) })
	}
	h.sends(t, n)
	close(h.store.gate)
	wg.Wait()
	for range n {
		require.NoError(t, <-errs)
	}
	require.Len(t, h.store.applied(), n)
	require.Less(t, h.store.applies.Load(), int64(n), "some outcomes were stored together")
}

func TestDecide(t *testing.T) {
	t.Parallel()
	code := func(c int) *int { return &c }
	p := retry.Policy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: time.Minute}
	tests := []struct {
		name       string
		attempt    domain.Attempt
		retryAfter time.Duration
		kind       store.OutcomeKind
		next       time.Duration // after now, for retrying
	}{
		{"2xx", domain.Attempt{Number: 1, StatusCode: code(200)}, 0, store.OutcomeDelivered, 0},
		{"410 on the first attempt", domain.Attempt{Number: 1, StatusCode: code(410)}, 0, store.OutcomeGone, 0},
		{"blocked destination", domain.Attempt{Number: 1, ErrorClass: domain.ErrorBlocked}, 0, store.OutcomeFailed, 0},
		{"500, attempts left", domain.Attempt{Number: 1, StatusCode: code(500)}, 0, store.OutcomeRetrying, 700 * time.Millisecond},
		{"500, Retry-After wins", domain.Attempt{Number: 1, StatusCode: code(503)}, 20 * time.Second, store.OutcomeRetrying, 20 * time.Second},
		{"Retry-After clamped to the max delay", domain.Attempt{Number: 2, StatusCode: code(429)}, time.Hour, store.OutcomeRetrying, time.Minute},
		{"timeout, attempts left", domain.Attempt{Number: 2, ErrorClass: domain.ErrorTimeout}, 0, store.OutcomeRetrying, 700 * time.Millisecond},
		{"500 on the last attempt", domain.Attempt{Number: 3, StatusCode: code(500)}, 0, store.OutcomeFailed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := decide(p, tt.attempt, tt.retryAfter, start, 700*time.Millisecond)
			require.Equal(t, tt.kind, o.Kind())
			if tt.kind == store.OutcomeRetrying {
				require.Equal(t, start.Add(tt.next), o.NextAttemptAt())
			}
			if tt.kind == store.OutcomeGone {
				require.Equal(t, goneReason, o.Reason())
			}
		})
	}
}

func TestPolicyForOverrides(t *testing.T) {
	t.Parallel()
	base := retry.Policy{MaxAttempts: 5, BaseDelay: time.Second, MaxDelay: time.Minute}
	require.Equal(t, base, policyFor(base, domain.DeliverySettings{}))
	got := policyFor(base, domain.DeliverySettings{MaxAttempts: 2, RetryBaseDelay: 2 * time.Minute})
	require.Equal(t, retry.Policy{MaxAttempts: 2, BaseDelay: 2 * time.Minute, MaxDelay: 2 * time.Minute}, got, "the max delay is never below the base")
}
