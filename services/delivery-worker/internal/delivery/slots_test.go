package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
)

// TestTurnProbesFasterThanThePaceMeasured: a destination that gave its slot
// back every 100 ms has a measured pace of 100 ms (a window counts the
// slots given back after the one that opened it), and the turns handed to
// its backlog are an eighth shorter, so the backlog comes back a little
// faster than the last of it was taken and the pace can rise to what the
// destination allows; handed out exactly, it could only fall.
func TestTurnProbesFasterThanThePaceMeasured(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newSlots(clk, 2, memoryWait, shortWait)
	// One slot stays taken, so the destination is not forgotten as idle.
	_, _, ok, err := s.acquire(context.Background(), "dest")
	require.NoError(t, err)
	require.True(t, ok)
	for range 22 {
		sl, _, ok, err := s.acquire(context.Background(), "dest")
		require.NoError(t, err)
		require.True(t, ok)
		clk.Advance(100 * time.Millisecond)
		s.release(sl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.byDest["dest"]
	require.NotNil(t, d)
	require.Equal(t, 100*time.Millisecond, d.pace)
	require.Equal(t, d.pace-d.pace/8, s.turn(d, clk.Now()))
}

// Only a holder waiting long on the destination itself (its request in
// flight, its concurrency or its circuit) makes it look stalled; a request
// waits on it only from its turn. One waiting for a spent rate window (it gives no slot back for up to a
// second) leaves the turn at the average hold over the slots; taken from
// the oldest hold instead, it spread a burst's backlog over three times
// the time the destination's limit needed.
func TestOnlyARequestInFlightLooksStalled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		onDest bool
		// turnIn is how long after the slot was taken its request's turn
		// in the destination's pace comes, when onDest.
		turnIn   time.Duration
		flowing  bool
		wantTurn time.Duration
	}{
		{"waiting for a spent rate window", false, 0, true, 50 * time.Millisecond},
		{"waiting on the destination", true, 0, false, 500 * time.Millisecond},
		// Booked 900 ms ahead: a second on, its request has been out only
		// 100 ms, less than the recheck.
		{"waiting for its turn", true, 900 * time.Millisecond, true, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			s := newSlots(clk, 2, memoryWait, shortWait)
			ctx := context.Background()
			take := func() slot {
				sl, _, ok, err := s.acquire(ctx, "dest")
				require.NoError(t, err)
				require.True(t, ok)
				return sl
			}
			take() // held throughout, waiting for admission; keeps the destination known
			first := take()
			clk.Advance(100 * time.Millisecond)
			s.release(first) // one finished hold of 100 ms

			sl := take()
			if tt.onDest {
				s.waitsOnDest(sl, clk.Now().Add(tt.turnIn))
			}
			clk.Advance(time.Second)
			s.mu.Lock()
			defer s.mu.Unlock()
			d := s.byDest["dest"]
			require.Equal(t, tt.flowing, s.flowing(d, clk.Now()))
			require.Equal(t, tt.wantTurn, s.turn(d, clk.Now()), "a hold over the two slots")
		})
	}
}
