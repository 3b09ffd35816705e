package testkit_test

import (
	"context"
	"testing"

	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// TestSeed: the statements run with their arguments and without
// foreign-key checks (a delivery of an event that does not exist is
// stored), and the tables are analyzed afterwards.
func TestSeed(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	testkit.Seed(t, db.Pool,
		testkit.Statement{SQL: `INSERT INTO subscriptions (id, url, event_types, secret)
			SELECT 'sub_' || i, 'https://example.com/' || i, ARRAY['*'], 'whsec_x' FROM generate_series(1, $1) i`, Args: []any{3}},
		testkit.Statement{SQL: `INSERT INTO deliveries (event_id, subscription_id, status) VALUES ('no_such_event', 'sub_1', 'pending')`},
	)
	ctx := context.Background()
	var subs, deliveries int
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM subscriptions), (SELECT count(*) FROM deliveries)`).Scan(&subs, &deliveries); err != nil {
		t.Fatal(err)
	}
	if subs != 3 || deliveries != 1 {
		t.Fatalf("%d subscriptions and %d deliveries stored, want 3 and 1", subs, deliveries)
	}
	var analyzed bool
	if err := db.Pool.QueryRow(ctx, `SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'subscriptions'`).Scan(&analyzed); err != nil {
		t.Fatal(err)
	}
	if !analyzed {
		t.Fatal("the seeded tables were not analyzed")
	}
}
