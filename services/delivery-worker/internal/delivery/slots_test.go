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
