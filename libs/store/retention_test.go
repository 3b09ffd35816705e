package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// seedAged stores event id as received age ago with one delivery per
// status (to subscriptions sub_0, sub_1, ...), each with two attempts, and
// returns nothing: the rows are checked by counting.
func seedAged(t *testing.T, db *testkit.Database, id string, age time.Duration, statuses ...string) {
	t.Helper()
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `INSERT INTO events (id, type, data, received_at) VALUES ($1, 'order.created', '{}', now() - $2::interval)`, id, age)
	require.NoError(t, err)
	for i, status := range statuses {
		sub := fmt.Sprintf("sub_%d", i)
		_, err := db.Pool.Exec(ctx, `INSERT INTO subscriptions (id, url, event_types, secret) VALUES ($1, 'https://example.com', '{*}', 'whsec_x')
			ON CONFLICT DO NOTHING`, sub)
		require.NoError(t, err)
		_, err = db.Pool.Exec(ctx, `
			WITH d AS (
				INSERT INTO deliveries (event_id, subscription_id, status, attempts, next_attempt_at, created_at, updated_at)
				SELECT e.id, $2, $3, 2, CASE WHEN $3 IN ('pending', 'processing', 'retrying') THEN now() END, e.received_at, e.received_at
				FROM events e WHERE e.id = $1
				RETURNING id, created_at
			)
			INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code)
			SELECT d.id, n, d.created_at, 10, 500 FROM d, generate_series(1, 2) n`, id, sub, status)
		require.NoError(t, err)
	}
}

// rowsOf counts the rows that remain of one event: itself, its deliveries
// and their attempts.
func rowsOf(t *testing.T, db *testkit.Database, id string) (events, deliveries, attempts int) {
	t.Helper()
	err := db.Pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM events WHERE id = $1),
		       (SELECT count(*) FROM deliveries WHERE event_id = $1),
		       (SELECT count(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.event_id = $1)`, id).
		Scan(&events, &deliveries, &attempts)
	require.NoError(t, err)
	return events, deliveries, attempts
}

func TestPruneEvents(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	const day = 24 * time.Hour
	seedAged(t, db, "old_finished", 40*day, "delivered", "failed")
	seedAged(t, db, "old_unmatched", 40*day)
	seedAged(t, db, "old_pending", 40*day, "delivered", "pending")
	seedAged(t, db, "old_processing", 40*day, "processing", "failed")
	seedAged(t, db, "old_retrying", 40*day, "retrying")
	seedAged(t, db, "recent", 29*day, "delivered")

	p, err := st.PruneEvents(ctx, 30*day, nil, 100)
	require.NoError(t, err)
	require.Equal(t, 5, p.Examined, "every expired event is looked at")
	require.Equal(t, store.Pruned{Examined: 5, Events: 2, Deliveries: 2, Attempts: 4, Last: p.Last}, p)
	require.NotNil(t, p.Last)

	for _, id := range []string{"old_finished", "old_unmatched"} {
		e, d, a := rowsOf(t, db, id)
		require.Zero(t, e+d+a, "%s and everything of it is deleted", id)
	}
	for id, want := range map[string][3]int{
		"old_pending": {1, 2, 4}, "old_processing": {1, 2, 4}, "old_retrying": {1, 1, 2}, "recent": {1, 1, 2},
	} {
		e, d, a := rowsOf(t, db, id)
		require.Equal(t, want, [3]int{e, d, a}, "%s is kept whole", id)
	}

	// Once its delivery is final, a kept event goes on the next pass.
	_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET status = 'delivered', next_attempt_at = NULL WHERE event_id = 'old_pending'`)
	require.NoError(t, err)
	p, err = st.PruneEvents(ctx, 30*day, nil, 100)
	require.NoError(t, err)
	require.Equal(t, 3, p.Examined)
	require.EqualValues(t, 1, p.Events)
	e, d, a := rowsOf(t, db, "old_pending")
	require.Zero(t, e+d+a)
}

// TestPruneEventsInBatches: a pass walks the expired events oldest first in
// batches of at most the limit, continuing after the last one examined, so
// events it keeps never hold it up.
func TestPruneEventsInBatches(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	// The oldest 15 keep an open delivery; 25 younger ones are finished.
	for i := range 40 {
		status := "delivered"
		if i < 15 {
			status = "retrying"
		}
		seedAged(t, db, fmt.Sprintf("evt_%02d", i), time.Duration(100-i)*time.Hour, status)
	}
	var (
		after   *store.Position
		batches []store.Pruned
	)
	for {
		p, err := st.PruneEvents(ctx, time.Hour, after, 10)
		require.NoError(t, err)
		batches = append(batches, p)
		if p.Examined < 10 {
			break
		}
		after = p.Last
	}
	require.Len(t, batches, 5)
	for i, want := range []struct {
		examined int
		events   int64
		last     string
	}{{10, 0, "evt_09"}, {10, 5, "evt_19"}, {10, 10, "evt_29"}, {10, 10, "evt_39"}} {
		require.Equal(t, want.examined, batches[i].Examined, "batch %d", i)
		require.Equal(t, want.events, batches[i].Events, "batch %d", i)
		require.Equal(t, want.last, batches[i].Last.ID, "batch %d", i)
	}
	require.Equal(t, store.Pruned{}, batches[4], "a full last batch is followed by an empty one")
	var left int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&left))
	require.Equal(t, 15, left)
}

// TestPruneEventsSkipsLocked: an event whose delivery another transaction
// holds (a redelivery under way) is passed over without waiting, and one
// that another pruner holds is not examined twice.
func TestPruneEventsSkipsLocked(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	seedAged(t, db, "a", 3*time.Hour, "delivered")
	seedAged(t, db, "b", 2*time.Hour, "failed", "delivered")
	seedAged(t, db, "c", 2*time.Hour, "delivered")

	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // rolled back on failure only
	_, err = tx.Exec(ctx, `SELECT 1 FROM deliveries WHERE event_id = 'b' AND subscription_id = 'sub_1' FOR UPDATE`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT 1 FROM events WHERE id = 'c' FOR UPDATE`)
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := st.PruneEvents(short, time.Hour, nil, 10)
	require.NoError(t, err, "the batch does not wait for locks")
	require.Equal(t, 2, p.Examined, "c, locked, is left to whoever holds it")
	require.EqualValues(t, 1, p.Events)
	e, d, a := rowsOf(t, db, "b")
	require.Equal(t, [3]int{1, 2, 4}, [3]int{e, d, a}, "b is kept whole while one of its deliveries is held")

	// The holder reopens the delivery (as a redelivery does) and commits: b stays.
	_, err = tx.Exec(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = now() WHERE event_id = 'b' AND subscription_id = 'sub_1'`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	p, err = st.PruneEvents(ctx, time.Hour, nil, 10)
	require.NoError(t, err)
	require.Equal(t, 2, p.Examined)
	require.EqualValues(t, 1, p.Events, "c goes once released; b, reopened, stays")
	e, d, a = rowsOf(t, db, "b")
	require.Equal(t, [3]int{1, 2, 4}, [3]int{e, d, a})
}

// TestPruneEventsPlan pins the plan to the indexes: the expired events are
// read from events_received_at in order, and their deliveries and attempts
// by their foreign-key indexes, never by scanning a table.
func TestPruneEventsPlan(t *testing.T) {
	_, db := setup(t)
	ctx := context.Background()
	// Enough rows that a sequential scan would be chosen if it were cheaper.
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO subscriptions (id, url, event_types, secret) VALUES ('sub_0', 'https://example.com', '{*}', 'whsec_x');
		INSERT INTO events (id, type, data, received_at)
		SELECT 'evt_' || i, 'order.created', '{}', now() - i * interval '1 minute' FROM generate_series(1, 20000) i;
		INSERT INTO deliveries (event_id, subscription_id, status, created_at, updated_at)
		SELECT id, 'sub_0', 'delivered', received_at, received_at FROM events;
		INSERT INTO attempts (delivery_id, number, started_at, duration_ms) SELECT id, 1, created_at, 5 FROM deliveries;
		ANALYZE`)
	require.NoError(t, err)
	var plan string
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `EXPLAIN (COSTS OFF) `+store.PruneSQL, 24*time.Hour, "-infinity", "", 1000)
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, l := range lines {
			plan += l + "\n"
		}
		return err
	})
	require.NoError(t, err)
	require.NotContains(t, plan, "Seq Scan", plan)
	require.Contains(t, plan, "Index Scan Backward using events_received_at on events", plan)
}
