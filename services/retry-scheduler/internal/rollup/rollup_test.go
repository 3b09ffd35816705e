package rollup_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/rollup"
)

// TestRollerCatchesUpInBatches: on a fresh database the roller rolls up a
// week of minutes in batches back to back, then stops at the last closed
// minute. Each minute has the whole deployment's row, and each tenant with
// activity in it a row of its own: its events, and the deliveries to its
// subscriptions.
func TestRollerCatchesUpInBatches(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	// Ten minutes ago: acme's event delivered to acme's subscription,
	// globex's event failed at globex's, and an event sent to every tenant
	// retrying at both.
	var minute time.Time
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT date_trunc('minute', now()) - interval '10 minutes'`).Scan(&minute))
	for _, q := range []string{
		`INSERT INTO tenants (id) VALUES ('acme'), ('globex')`,
		`INSERT INTO subscriptions (id, tenant_id, url, event_types, secret)
			VALUES ('sub_acme', 'acme', 'http://127.0.0.1:9/', ARRAY['*'], 'whsec_x'),
			       ('sub_globex', 'globex', 'http://127.0.0.1:9/', ARRAY['*'], 'whsec_x')`,
		`INSERT INTO events (id, type, data, tenant_id, received_at)
			VALUES ('e_acme', 'x.y', '{}', 'acme', $1), ('e_globex', 'x.y', '{}', 'globex', $1), ('e_all', 'x.y', '{}', NULL, $1)`,
		`INSERT INTO deliveries (event_id, subscription_id, status, updated_at)
			VALUES ('e_acme', 'sub_acme', 'delivered', $1), ('e_globex', 'sub_globex', 'failed', $1),
			       ('e_all', 'sub_acme', 'retrying', $1), ('e_all', 'sub_globex', 'retrying', $1)`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, minute)
		}
		_, err := db.Pool.Exec(context.Background(), q, args...)
		require.NoError(t, err)
	}
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

	// Received, delivered, retrying and failed in that minute: for the
	// whole deployment, and for each tenant in the one minute it was active.
	var whole [4]int64
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT events_received, delivered, retrying, failed
		FROM activity_minutes WHERE minute = $1`, minute).Scan(&whole[0], &whole[1], &whole[2], &whole[3]))
	require.Equal(t, [4]int64{3, 1, 2, 1}, whole)
	rows, err := db.Pool.Query(context.Background(), `SELECT tenant_id, minute, events_received, delivered, retrying, failed
		FROM tenant_activity_minutes`)
	require.NoError(t, err)
	tenants := map[string][4]int64{}
	for rows.Next() {
		var (
			tenant string
			at     time.Time
			n      [4]int64
		)
		require.NoError(t, rows.Scan(&tenant, &at, &n[0], &n[1], &n[2], &n[3]))
		require.True(t, at.Equal(minute), "%s has a row for %s", tenant, at)
		tenants[tenant] = n
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string][4]int64{"acme": {1, 1, 1, 0}, "globex": {1, 0, 1, 1}}, tenants)
}
