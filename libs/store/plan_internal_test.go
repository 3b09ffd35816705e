package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// TestWorkerStatementsReachDeliveriesByKey pins the plans of the worker's
// statements to the primary key of deliveries, with the statistics of a
// burst on a new database: analyzed while the table held one delivery,
// then 20,000 open deliveries of the same subscription. With a condition on
// the delivery's status or subscription, the planner took the
// subscription's open deliveries through other indexes and filtered them by
// id, reading thousands of rows for each batch.
func TestWorkerStatementsReachDeliveriesByKey(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO subscriptions (id, url, event_types, secret) VALUES ('sub_0', 'https://example.com', '{*}', 'whsec_x');
		INSERT INTO events (id, type, data) VALUES ('evt_0', 'order.created', '{}');
		INSERT INTO deliveries (event_id, subscription_id, next_attempt_at) VALUES ('evt_0', 'sub_0', now());
		ANALYZE subscriptions, events, deliveries;
		INSERT INTO events (id, type, data) SELECT 'evt_' || i, 'order.created', '{}' FROM generate_series(1, 20000) i;
		INSERT INTO deliveries (event_id, subscription_id, status, attempts, next_attempt_at)
		SELECT 'evt_' || i, 'sub_0', CASE WHEN i % 2 = 0 THEN 'pending' ELSE 'processing' END, i % 2, now() - interval '1 second'
		FROM generate_series(1, 20000) i`)
	require.NoError(t, err)

	ids := make([]int64, 30)
	var rec recordArgs
	var rel releaseArgs
	for i := range ids {
		ids[i] = int64(100 + 7*i)
		rec.add(Delivered(domain.Attempt{DeliveryID: ids[i], Number: 1, StartedAt: time.Now()}))
		rel.add(ids[i], 1, time.Now())
	}
	for _, s := range []struct {
		name string
		sql  string
		args []any
	}{
		{"claim", claimSQL, []any{ids, 30 * time.Second, 30 * time.Second}},
		{"lock", lockSQL, []any{ids}},
		{"record", recordSQL, rec.args()},
		{"release", releaseSQL, []any{rel.ids, rel.attempts, rel.at}},
	} {
		t.Run(s.name, func(t *testing.T) {
			plan := explain(t, db, s.sql, s.args...)
			require.Contains(t, plan, "deliveries_pkey", plan)
			for line := range strings.Lines(plan) {
				require.NotContains(t, line, "Seq Scan on deliveries", plan)
				if i := strings.Index(line, "deliveries_"); i >= 0 {
					require.True(t, strings.HasPrefix(line[i:], "deliveries_pkey"), "deliveries reached through another index:\n%s", plan)
				}
			}
		})
	}
}

// explain returns the plan PostgreSQL makes for sql run with args, rolling
// back whatever the statement would change.
func explain(t *testing.T, db *testkit.Database, sql string, args ...any) string {
	t.Helper()
	var plan strings.Builder
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, "EXPLAIN (COSTS OFF) "+sql, args...)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	for _, l := range lines {
		plan.WriteString(l + "\n")
	}
	return plan.String()
}
