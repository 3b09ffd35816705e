package rollup_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/rollup"
)

// TestRollerCatchesUpInBatches: on a fresh database the roller rolls up a
// week of minutes in batches back to back, then stops at the last closed
// minute.
func TestRollerCatchesUpInBatches(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rollup.New(st, rollup.Config{Every: time.Hour, Batch: 500}).Run(ctx) }()
	minutes := func() int {
		var n int
		require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM activity_minutes`).Scan(&n))
		return n
	}
	require.Eventually(t, func() bool { return minutes() >= int(store.MaxStatsWindow/time.Minute)-2 }, 60*time.Second, 50*time.Millisecond,
		"a week of minutes is rolled up without waiting between full batches")
	var last time.Time
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT max(minute) FROM activity_minutes`).Scan(&last))
	// The last minute rolled up starts 90 to 150 s ago: it ended at least
	// the roll-up delay (30 s) ago.
	require.WithinDuration(t, time.Now().Add(-120*time.Second), last, 31*time.Second, "only closed minutes")
	cancel()
	require.NoError(t, <-done)
}
