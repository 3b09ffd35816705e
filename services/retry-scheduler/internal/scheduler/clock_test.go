package scheduler_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/scheduler"
)

// waiting is a delivery the fake store holds: the store learns of it at
// known (a worker recorded a failure) and it comes due at due, both as
// offsets from the test's start.
type waiting struct{ known, due time.Duration }

// clockStore is an in-memory Store on a fake clock. It records when each
// pass began, so a test can check the scheduler's timing exactly.
type clockStore struct {
	clk   *clock.Fake
	start time.Time
	fail  bool // every claim fails, as with the database down

	mu      sync.Mutex
	waiting []waiting
	passes  []time.Duration
}

func (s *clockStore) now() time.Duration { return s.clk.Now().Sub(s.start) }

func (s *clockStore) ClaimDue(context.Context, int, time.Duration) ([]store.DueDelivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.passes = append(s.passes, now)
	if s.fail {
		return nil, errors.New("database unreachable")
	}
	var due []store.DueDelivery
	kept := s.waiting[:0]
	for i, w := range s.waiting {
		if w.known <= now && w.due <= now {
			due = append(due, store.DueDelivery{DeliveryRef: store.DeliveryRef{ID: int64(i + 1)}, Kind: store.DueRetry})
			continue
		}
		kept = append(kept, w)
	}
	s.waiting = kept
	return due, nil
}

func (s *clockStore) MarkUnpublished(context.Context, ...int64) error { return nil }

func (s *clockStore) UntilNextDue(context.Context, time.Duration) (time.Duration, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var next time.Duration
	found := false
	for _, w := range s.waiting {
		if w.known <= now && (!found || w.due < next) {
			next, found = w.due, true
		}
	}
	return next - now, found, nil
}

type discardPublisher struct{}

func (discardPublisher) PublishSync(context.Context, ...queue.Message) error { return nil }

// TestRunTimesPassesByItsClock moves a fake clock in 10 ms steps and
// checks when Run's passes happen: at the due time it knows of, within the
// one-second recheck of one it learns of while asleep, no sooner than
// minWait, and every PollInterval otherwise. Before each step the test
// waits for the scheduler to be asleep (BlockUntilWaiting), so nothing
// depends on how fast the machine is.
func TestRunTimesPassesByItsClock(t *testing.T) {
	t.Parallel()
	const step = 10 * time.Millisecond
	ms := time.Millisecond
	tests := []struct {
		name    string
		poll    time.Duration
		waiting []waiting
		fail    bool
		until   time.Duration // how far to move the clock
		passes  []time.Duration
	}{
		{
			name: "wakes when the next delivery comes due", poll: 10 * time.Second,
			waiting: []waiting{{due: 2500 * ms}}, until: 13 * time.Second,
			// then nothing waits: the next pass a poll interval later
			passes: []time.Duration{0, 2500 * ms, 12500 * ms},
		},
		{
			name: "polls every interval when nothing waits", poll: 3 * time.Second,
			until: 7 * time.Second, passes: []time.Duration{0, 3 * time.Second, 6 * time.Second},
		},
		{
			name: "sleeps at least minWait", poll: 10 * time.Second,
			waiting: []waiting{{due: 20 * ms}}, until: time.Second,
			passes: []time.Duration{0, 50 * ms},
		},
		{
			name: "finds a retry scheduled while it sleeps within a second", poll: 10 * time.Second,
			// learnt of at 3.5 s, due at 3.7 s: seen at the 4 s recheck,
			// already due, so a pass minWait later
			waiting: []waiting{{known: 3500 * ms, due: 3700 * ms}}, until: 5 * time.Second,
			passes: []time.Duration{0, 4050 * ms},
		},
		{
			name: "a failed pass waits the whole interval", poll: 3 * time.Second, fail: true,
			waiting: []waiting{{due: 500 * ms}}, until: 7 * time.Second,
			passes: []time.Duration{0, 3 * time.Second, 6 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			fake := clock.NewFake(start)
			st := &clockStore{clk: fake, start: start, fail: tt.fail, waiting: tt.waiting}
			s := scheduler.New(st, discardPublisher{}, scheduler.Config{
				PollInterval: tt.poll, BatchSize: 10, StrandedAfter: time.Hour, Clock: fake,
				Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(),
			})
			runCtx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(runCtx) }()
			defer func() { stop(); require.NoError(t, <-done) }()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for moved := time.Duration(0); moved < tt.until; moved += step {
				require.NoError(t, fake.BlockUntilWaiting(ctx, 1), "the scheduler never went to sleep (moved %v)", moved)
				fake.Advance(step)
			}
			require.NoError(t, fake.BlockUntilWaiting(ctx, 1))
			st.mu.Lock()
			defer st.mu.Unlock()
			require.Equal(t, tt.passes, st.passes)
		})
	}
}
