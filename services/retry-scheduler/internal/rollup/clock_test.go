package rollup_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/rollup"
)

// scriptedStore answers RollUpActivity from a script, one answer a call
// (then zero), and records when each call came on its fake clock.
type scriptedStore struct {
	clk   *clock.Fake
	start time.Time

	mu      sync.Mutex
	answers []answer
	calls   []time.Duration
}

type answer struct {
	n   int64
	err error
}

func (s *scriptedStore) RollUpActivity(context.Context, int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, s.clk.Now().Sub(s.start))
	if len(s.answers) == 0 {
		return 0, nil
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a.n, a.err
}

// TestRollerWaitsByItsClock: full batches follow each other at once; a
// partial batch or a failure waits Every.
func TestRollerWaitsByItsClock(t *testing.T) {
	t.Parallel()
	const every = 15 * time.Second
	tests := []struct {
		name    string
		answers []answer
		want    []time.Duration
	}{
		{"full batches back to back, then Every", []answer{{n: 10}, {n: 10}, {n: 3}},
			[]time.Duration{0, 0, 0, every, 2 * every}},
		{"a failure waits Every", []answer{{err: errors.New("database unreachable")}, {n: 10}},
			[]time.Duration{0, every, every, 2 * every}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			fake := clock.NewFake(start)
			st := &scriptedStore{clk: fake, start: start, answers: tt.answers}
			r := rollup.New(st, rollup.Config{Every: every, Batch: 10, Clock: fake, Logger: slog.New(slog.DiscardHandler)})
			runCtx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(runCtx) }()
			defer func() { stop(); require.NoError(t, <-done) }()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for moved := time.Duration(0); moved < 2*every+time.Second; moved += time.Second {
				require.NoError(t, fake.BlockUntilWaiting(ctx, 1))
				fake.Advance(time.Second)
			}
			require.NoError(t, fake.BlockUntilWaiting(ctx, 1))
			st.mu.Lock()
			defer st.mu.Unlock()
			require.Equal(t, tt.want, st.calls)
		})
	}
}
