package delivery

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

func TestDeferralsRunOnceAndHandBackOnStop(t *testing.T) {
	t.Parallel()
	d := newDeferrals(2)
	var ran atomic.Int32
	require.True(t, d.add(1, 10*time.Millisecond, func() { ran.Add(1) }))
	require.True(t, d.add(1, 10*time.Millisecond, func() { ran.Add(1) }), "a duplicate shares the first wait")
	require.True(t, d.add(2, time.Hour, func() { ran.Add(1) }))
	require.False(t, d.add(3, time.Hour, func() {}), "full: the caller must use the database")
	require.Eventually(t, func() bool { return ran.Load() == 1 }, time.Second, 5*time.Millisecond)
	require.Equal(t, []int64{2}, d.stop(), "what still waits is handed back")
	require.False(t, d.add(4, time.Millisecond, func() {}), "nothing waits after stop")
	time.Sleep(20 * time.Millisecond)
	require.EqualValues(t, 1, ran.Load())
}

func TestSettingsCache(t *testing.T) {
	t.Parallel()
	var loads atomic.Int32
	c := newSettingsCache(func(_ context.Context, id string) (domain.DeliverySettings, error) {
		loads.Add(1)
		if id == "gone" {
			return domain.DeliverySettings{}, domain.ErrNotFound
		}
		return domain.DeliverySettings{RatePerSecond: 7}, nil
	}, 50*time.Millisecond)
	ctx := context.Background()
	for range 3 {
		s, err := c.get(ctx, "s")
		require.NoError(t, err)
		require.Equal(t, 7, s.RatePerSecond)
	}
	require.EqualValues(t, 1, loads.Load())
	time.Sleep(60 * time.Millisecond)
	_, err := c.get(ctx, "s")
	require.NoError(t, err)
	require.EqualValues(t, 2, loads.Load(), "expired entries are loaded again")
	_, err = c.get(ctx, "gone")
	require.True(t, errors.Is(err, domain.ErrNotFound))
}
