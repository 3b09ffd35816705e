package store

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
	db := analyzedWithOneDelivery(t)
	_, err := db.Pool.Exec(context.Background(), `
		INSERT INTO events (id, type, data) SELECT 'evt_' || i, 'order.created', '{}' FROM generate_series(1, 20000) i;
		INSERT INTO deliveries (event_id, subscription_id, status, attempts, next_attempt_at)
		SELECT 'evt_' || i, 'sub_0', CASE WHEN i % 2 = 0 THEN 'pending' ELSE 'processing' END, i % 2, now() - interval '1 second'
		FROM generate_series(1, 20000) i`)
	require.NoError(t, err)

	for _, s := range workerStatements() {
		t.Run(s.name, func(t *testing.T) {
			requireByKey(t, explain(t, db, nil, s.sql, s.args...))
		})
	}
}

// TestWorkerPlansCachedOnASmallTableUseTheKey: a generic plan made while
// deliveries holds one row, as on a new database, and cached for the
// statement's later runs, still takes the primary key in the worker's
// sessions (KeyedReads); otherwise it would scan the table, which is
// cheaper for one page, for every batch once the table has grown.
func TestWorkerPlansCachedOnASmallTableUseTheKey(t *testing.T) {
	t.Parallel()
	db := analyzedWithOneDelivery(t)
	cfg, err := pgxpool.ParseConfig(db.URL)
	require.NoError(t, err)
	KeyedReads()(cfg)
	settings := map[string]string{"plan_cache_mode": "force_generic_plan"}
	maps.Copy(settings, cfg.ConnConfig.RuntimeParams)
	for _, s := range workerStatements() {
		t.Run(s.name, func(t *testing.T) {
			requireByKey(t, explain(t, db, settings, s.sql, s.args...))
		})
	}
}

// analyzedWithOneDelivery returns a database holding one delivery, with
// statistics taken then, as on a new deployment.
func analyzedWithOneDelivery(t *testing.T) *testkit.Database {
	t.Helper()
	db := testkit.Postgres(t)
	_, err := db.Pool.Exec(context.Background(), `
		INSERT INTO subscriptions (id, url, event_types, secret) VALUES ('sub_0', 'https://example.com', '{*}', 'whsec_x');
		INSERT INTO events (id, type, data) VALUES ('evt_0', 'order.created', '{}');
		INSERT INTO deliveries (event_id, subscription_id, next_attempt_at) VALUES ('evt_0', 'sub_0', now());
		ANALYZE subscriptions, events, deliveries`)
	require.NoError(t, err)
	return db
}

type statement struct {
	name string
	sql  string
	args []any
}

// workerStatements are the statements that claim deliveries and apply
// outcomes, with arguments for 30 deliveries.
func workerStatements() []statement {
	ids := make([]int64, 30)
	var rec recordArgs
	var rel releaseArgs
	for i := range ids {
		ids[i] = int64(100 + 7*i)
		rec.add(Delivered(domain.Attempt{DeliveryID: ids[i], Number: 1, StartedAt: time.Now()}))
		rel.add(ids[i], 1, time.Now())
	}
	return []statement{
		{"claim", claimSQL, []any{ids, 30 * time.Second, 30 * time.Second}},
		{"lock", lockSQL, []any{ids}},
		{"record", recordSQL, rec.args()},
		{"release", releaseSQL, []any{rel.ids, rel.attempts, rel.at}},
	}
}

// requireByKey fails unless plan reaches deliveries by its primary key only.
func requireByKey(t *testing.T, plan string) {
	t.Helper()
	require.Contains(t, plan, "deliveries_pkey", plan)
	for line := range strings.Lines(plan) {
		require.NotContains(t, line, "Seq Scan on deliveries", plan)
		if i := strings.Index(line, "deliveries_"); i >= 0 {
			require.True(t, strings.HasPrefix(line[i:], "deliveries_pkey"), "deliveries reached through another index:\n%s", plan)
		}
	}
}

// explain returns the plan PostgreSQL makes for sql run with args, in a
// session with settings (nil: none; with plan_cache_mode
// force_generic_plan, the plan it would cache for any arguments), rolling
// back whatever the statement would change.
func explain(t *testing.T, db *testkit.Database, settings map[string]string, sql string, args ...any) string {
	t.Helper()
	var plan strings.Builder
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	for name, value := range settings {
		_, err := tx.Exec(ctx, "SELECT set_config($1, $2, true)", name, value)
		require.NoError(t, err)
	}
	query := "EXPLAIN (COSTS OFF) " + sql
	if settings != nil {
		// A generic plan is what a prepared statement caches: prepare it,
		// then explain its execution with the arguments as literals of
		// the parameters' types (EXECUTE takes no protocol parameters).
		_, err := tx.Exec(ctx, "PREPARE worker_statement AS "+sql, pgx.QueryExecModeSimpleProtocol)
		require.NoError(t, err)
		defer func() { _, _ = tx.Exec(ctx, "DEALLOCATE worker_statement") }()
		var types []string
		require.NoError(t, tx.QueryRow(ctx, `SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = 'worker_statement'`).Scan(&types))
		literals := make([]string, len(args))
		for i, a := range args {
			var lit string
			require.NoError(t, tx.QueryRow(ctx, "SELECT quote_nullable($1::"+types[i]+")", a).Scan(&lit))
			literals[i] = lit + "::" + types[i]
		}
		query, args = "EXPLAIN (COSTS OFF) EXECUTE worker_statement("+strings.Join(literals, ", ")+")", nil
	}
	rows, err := tx.Query(ctx, query, args...)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	for _, l := range lines {
		plan.WriteString(l + "\n")
	}
	return plan.String()
}

// TestAttemptPagesReadTheirOwnSize pins ListAttempts to the index on
// attempts (delivery_id, started_at, id): with 3,000 attempts to each of
// an event's two deliveries, a page of 10, in either order, from the start
// or the middle, for the event or one delivery, reads at most 10 attempts
// of each delivery.
func TestAttemptPagesReadTheirOwnSize(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO subscriptions (id, url, event_types, secret) VALUES ('s1', 'https://example.com', '{*}', 'x'), ('s2', 'https://example.com', '{*}', 'x');
		INSERT INTO events (id, type, data) VALUES ('e', 't', '{}');
		INSERT INTO deliveries (event_id, subscription_id) VALUES ('e', 's1'), ('e', 's2');
		INSERT INTO attempts (delivery_id, number, started_at, duration_ms, response_body)
		SELECT d.id, n, now() - n * interval '1 minute', 1, repeat('r', 1000) FROM deliveries d, generate_series(1, 3000) n;
		ANALYZE deliveries, attempts`)
	require.NoError(t, err)
	var middle AttemptPosition
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT started_at, id FROM attempts WHERE number = 1500 LIMIT 1`).Scan(&middle.StartedAt, &middle.ID))
	const limit = 10
	for _, f := range []AttemptFilter{
		{EventID: "e", Limit: limit},
		{EventID: "e", Newest: true, Limit: limit},
		{EventID: "e", After: &middle, Limit: limit},
		{EventID: "e", Newest: true, After: &middle, Limit: limit},
		{EventID: "e", SubscriptionID: "s2", Limit: limit},
		{EventID: "e", SubscriptionID: "s2", Newest: true, After: &middle, Limit: limit},
	} {
		t.Run(fmt.Sprintf("%s newest=%v after=%v", f.SubscriptionID, f.Newest, f.After != nil), func(t *testing.T) {
			sql, args := attemptsQuery(Unscoped, f)
			tx, err := db.Pool.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(ctx) }()
			rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "+sql, args...)
			require.NoError(t, err)
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			plan := strings.Join(lines, "\n")
			require.Contains(t, plan, "attempts_delivery_started", plan)
			for _, line := range lines {
				if !strings.Contains(line, " on attempts") {
					continue
				}
				var read, loops int
				_, actual, _ := strings.Cut(line, "(actual rows=")
				_, err := fmt.Sscanf(actual, "%d loops=%d)", &read, &loops)
				require.NoError(t, err, line)
				require.LessOrEqual(t, read, limit, "a delivery's attempts read beyond the page:\n%s", plan)
			}
		})
	}
}

// TestIngestNeverScansEvents: on a database analysed while events held one
// row, as on a new deployment where autovacuum is off or has not run
// since, the foreign key check of every delivery the API inserts looks its
// event up with a plan the connection caches. In plain sessions that plan
// scans events, cheaper for one page, and goes on scanning it as it grows;
// on an ingest pool with KeyedReads, as the API opens, no statement of
// ingest scans events at all.
func TestIngestNeverScansEvents(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		opts      []ConnectOption
		wantScans bool
	}{
		{"plain sessions scan events", nil, true},
		{"keyed reads do not", []ConnectOption{KeyedReads()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := analyzedWithOneDelivery(t)
			_, err := db.Pool.Exec(ctx, `UPDATE subscriptions SET tenant_id = 'default'`)
			require.NoError(t, err)
			opts := append([]ConnectOption{func(cfg *pgxpool.Config) {
				cfg.ConnConfig.RuntimeParams["application_name"] = "ingest_plan_test"
			}}, tc.opts...)
			ingest, err := Connect(ctx, db.URL, 1, opts...)
			require.NoError(t, err)
			st := New(db.Pool, WithIngestPool(ingest))

			// Single events and batches, past the five runs after which a
			// prepared statement keeps its generic plan; events grows
			// between them.
			for i := range 8 {
				_, err := st.IngestEvent(ctx, domain.Event{ID: fmt.Sprintf("single_%d", i), Type: "order.created", Data: []byte(`{}`)})
				require.NoError(t, err)
				batch := make([]domain.Event, 10)
				for j := range batch {
					batch[j] = domain.Event{ID: fmt.Sprintf("batch_%d_%d", i, j), Type: "order.created", Data: []byte(`{}`)}
				}
				res, err := st.IngestEvents(ctx, batch)
				require.NoError(t, err)
				require.Len(t, res.Deliveries, len(batch))
				_, err = db.Pool.Exec(ctx, `INSERT INTO events (id, type, data) SELECT 'grown_' || $1::int || '_' || g, 't', '{}' FROM generate_series(1, 500) g`, i)
				require.NoError(t, err)
			}

			// A session's table counters reach the statistics when it ends.
			ingest.Close()
			require.Eventually(t, func() bool {
				var open int
				require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'ingest_plan_test'`).Scan(&open))
				return open == 0
			}, 10*time.Second, 10*time.Millisecond)
			var scans int64
			require.NoError(t, db.Pool.QueryRow(ctx, `SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'events'`).Scan(&scans))
			if tc.wantScans {
				require.Positive(t, scans)
			} else {
				require.Zero(t, scans)
			}
		})
	}
}
