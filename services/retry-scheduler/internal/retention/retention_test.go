package retention_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/retention"
)

const day = 24 * time.Hour

// seed stores n events received 31 days ago and more (ids prefix1 to
// prefixN) and one a day ago (prefixrecent), each with one delivery in
// status to sub_a and two attempts of it.
func seed(t *testing.T, db *testkit.Database, prefix string, n int, status string) {
	t.Helper()
	for _, s := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO subscriptions (id, url, event_types, secret) VALUES ('sub_a', 'https://example.com', '{*}', 'whsec_x')
		  ON CONFLICT DO NOTHING`, nil},
		{`INSERT INTO events (id, type, data, received_at)
		  SELECT $1 || i, 'order.created', '{}', now() - interval '31 days' - i * interval '1 second' FROM generate_series(1, $2::int) i
		  UNION ALL SELECT $1 || 'recent', 'order.created', '{}'::jsonb, now() - interval '1 day'`, []any{prefix, n}},
		{`INSERT INTO deliveries (event_id, subscription_id, status, attempts, next_attempt_at, created_at, updated_at)
		  SELECT id, 'sub_a', $2, 2, CASE WHEN $2 IN ('pending', 'processing', 'retrying') THEN now() END, received_at, received_at
		  FROM events WHERE id LIKE $1 || '%'`, []any{prefix, status}},
		{`INSERT INTO attempts (delivery_id, number, started_at, duration_ms)
		  SELECT d.id, n, d.created_at, 5 FROM deliveries d, generate_series(1, 2) n WHERE d.event_id LIKE $1 || '%'`, []any{prefix}},
	} {
		_, err := db.Pool.Exec(context.Background(), s.sql, s.args...)
		require.NoError(t, err)
	}
}

func count(t *testing.T, db *testkit.Database, table string) int {
	t.Helper()
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n))
	return n
}

// deleted reads dispatch_retention_deleted_total by table.
func deleted(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "dispatch_retention_deleted_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestPassDeletesExpired: a pass deletes the expired events whose
// deliveries are final, with their deliveries and attempts, batch by batch,
// keeps those with an open delivery and the recent ones, and counts what
// it deleted by table.
func TestPassDeletesExpired(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	seed(t, db, "done_", 250, "delivered")
	seed(t, db, "open_", 30, "retrying")
	reg := prometheus.NewRegistry()
	p := retention.New(store.New(db.Pool), retention.Config{Period: 30 * day, BatchSize: 100, Pause: time.Millisecond, Registerer: reg})
	require.Equal(t, map[string]float64{"events": 0, "deliveries": 0, "attempts": 0}, deleted(t, reg), "zeros before anything is deleted")

	tot, err := p.Pass(context.Background())
	require.NoError(t, err)
	require.Equal(t, retention.Totals{Batches: 3, Examined: 280, Events: 250, Deliveries: 250, Attempts: 500}, tot,
		"280 expired: two full batches and one of 80")
	require.Equal(t, map[string]float64{"events": 250, "deliveries": 250, "attempts": 500}, deleted(t, reg))
	require.Equal(t, 32, count(t, db, "events"), "the 30 with an open delivery and the two recent ones are kept")
	require.Equal(t, 32, count(t, db, "deliveries"))
	require.Equal(t, 64, count(t, db, "attempts"))
}

// TestTwoPrunersDeleteEachRowOnce: two schedulers pruning at once share the
// work; between them every expired row is deleted, and counted, once.
func TestTwoPrunersDeleteEachRowOnce(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	seed(t, db, "evt_", 3000, "failed")
	st := store.New(db.Pool)
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg   sync.WaitGroup
		regs = []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
		errs = make(chan error, len(regs))
	)
	for _, reg := range regs {
		p := retention.New(st, retention.Config{Period: 30 * day, BatchSize: 50, Pause: time.Millisecond, Every: 20 * time.Millisecond, Registerer: reg})
		wg.Go(func() { errs <- p.Run(ctx) })
	}
	require.Eventually(t, func() bool { return count(t, db, "events") == 1 }, 60*time.Second, 20*time.Millisecond)
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	a, b := deleted(t, regs[0]), deleted(t, regs[1])
	for table, want := range map[string]float64{"events": 3000, "deliveries": 3000, "attempts": 6000} {
		require.Equal(t, want, a[table]+b[table], "%s: each row deleted once (%v + %v)", table, a[table], b[table])
	}
	require.Equal(t, 1, count(t, db, "deliveries"))
	require.Equal(t, 2, count(t, db, "attempts"))
}

// blockingStore hands out full batches forever; each call waits until
// released.
type blockingStore struct {
	calls   chan context.Context
	release chan struct{}
}

func (s *blockingStore) PruneEvents(ctx context.Context, _ time.Duration, _ *store.Position, limit int) (store.Pruned, error) {
	s.calls <- ctx
	<-s.release
	return store.Pruned{Examined: limit, Events: int64(limit), Last: &store.Position{ID: "x"}}, ctx.Err()
}

func (s *blockingStore) PruneActivityHours(context.Context, time.Duration) (int64, error) {
	return 0, nil
}

func (s *blockingStore) PruneOrderingKeys(context.Context, time.Duration, int) (int64, error) {
	return 0, nil
}

// TestPassDeletesActivityHoursOfThePeriod: a pass deletes the
// subscriptions' hours of activity that ended before the retention
// period, and keeps the others.
func TestPassDeletesActivityHoursOfThePeriod(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	seed(t, db, "evt_", 1, "delivered")
	_, err := db.Pool.Exec(context.Background(), `INSERT INTO subscription_activity_hours (subscription_id, hour, attempts, succeeded)
		SELECT 'sub_a', date_trunc('hour', now()) - h * interval '1 hour', 1, 1 FROM unnest(ARRAY[1, 3, 5]) h`)
	require.NoError(t, err)
	p := retention.New(store.New(db.Pool), retention.Config{Period: 2 * time.Hour, Registerer: prometheus.NewRegistry()})
	tot, err := p.Pass(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(2), tot.ActivityHours)
	require.Equal(t, 1, count(t, db, "subscription_activity_hours WHERE hour = date_trunc('hour', now()) - interval '1 hour'"))
	require.Equal(t, 1, count(t, db, "subscription_activity_hours"))
}

// TestPassForgetsIdleOrderingKeys: a pass deletes the ordering keys that
// have had nothing open for longer than the period, in batches, and keeps
// those with an open delivery however old, and the recent ones.
func TestPassForgetsIdleOrderingKeys(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	seed(t, db, "evt_", 1, "delivered")
	for _, q := range []string{
		`INSERT INTO ordering_keys (subscription_id, key, last_seq, updated_at)
		SELECT 'sub_a', 'idle' || i, 3, now() - interval '3 hours' FROM generate_series(1, 25) i
		UNION ALL SELECT 'sub_a', 'blocked', 3, now() - interval '3 hours'
		UNION ALL SELECT 'sub_a', 'recent', 3, now() - interval '1 hour'`,
		// A key's last delivery tells: idle1's went, blocked's waits
		// behind the one before it, which is retrying.
		`INSERT INTO events (id, type, data) VALUES ('k1', 'order.created', '{}'), ('k2', 'order.created', '{}'), ('k3', 'order.created', '{}')`,
		`INSERT INTO deliveries (event_id, subscription_id, status, next_attempt_at, ordering_key, seq) VALUES
		('k1', 'sub_a', 'delivered', NULL, 'idle1', 3), ('k2', 'sub_a', 'retrying', now() + interval '1 hour', 'blocked', 2),
		('k3', 'sub_a', 'pending', NULL, 'blocked', 3)`,
	} {
		_, err := db.Pool.Exec(context.Background(), q)
		require.NoError(t, err)
	}
	p := retention.New(store.New(db.Pool), retention.Config{Period: 2 * time.Hour, BatchSize: 10, Registerer: prometheus.NewRegistry()})
	tot, err := p.Pass(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(25), tot.OrderingKeys, "three batches")
	require.Equal(t, 2, count(t, db, "ordering_keys WHERE key IN ('blocked', 'recent')"))
	require.Equal(t, 2, count(t, db, "ordering_keys"))
}

// TestRunStopsOnCancel: cancelling the context lets the batch in flight
// finish (its context is not cancelled) and starts no other.
func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	st := &blockingStore{calls: make(chan context.Context, 10), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	p := retention.New(st, retention.Config{Period: day, BatchSize: 10, Pause: time.Millisecond, Registerer: reg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	<-st.calls
	st.release <- struct{}{}
	second := <-st.calls
	cancel()
	require.NoError(t, second.Err(), "the batch in flight is not interrupted")
	close(st.release)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	require.Empty(t, st.calls, "no batch after cancel")
	require.Equal(t, 20.0, deleted(t, reg)["events"], "both batches counted")
}
