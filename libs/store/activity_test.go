package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// TestSubscriptionActivityIsRolledUpByHour: a subscription's activity is
// the same counted live and added up from its rolled-up hours; once rolled
// up it no longer reads the attempts but for those stored after the last
// minute rolled up: among each endpoint's newest deliveries while the
// roll-up is current, on every delivery when it lags. Another tenant's subscription is never counted in
// a tenant's scope.
func TestSubscriptionActivityIsRolledUpByHour(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "a", "*")
	_, _, err := st.PutTenant(ctx, domain.Tenant{ID: "globex"})
	require.NoError(t, err)
	_, err = st.CreateSubscription(ctx, domain.Subscription{ID: "g", TenantID: "globex", URL: "http://127.0.0.1:1/g", EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
	require.NoError(t, err)
	_, err = st.IngestEvent(ctx, event("e1", "x.y"))
	require.NoError(t, err)
	_, err = st.IngestEvent(ctx, domain.Event{ID: "e2", Type: "x.y", Source: "test", Data: []byte(`{}`), TenantID: "globex"})
	require.NoError(t, err)

	record := func(sub string, number int, age string, code int) {
		t.Helper()
		_, err := db.Pool.Exec(ctx, `INSERT INTO attempts (delivery_id, number, started_at, recorded_at, duration_ms, status_code)
			SELECT id, $2, now() - $3::interval, now() - $3::interval, 5, $4 FROM deliveries WHERE subscription_id = $1`, sub, number, age, code)
		require.NoError(t, err)
	}
	record("a", 1, "26 hours", 204) // before the window's first hour
	record("a", 2, "23 hours", 500)
	record("a", 3, "10 hours", 204)
	record("a", 4, "3 minutes", 204)
	record("g", 1, "2 hours", 204)

	activity := func(scope store.Scope) map[string]store.Activity {
		t.Helper()
		got, err := st.SubscriptionActivity(ctx, scope, []string{"a", "g"}, time.Now().Add(-store.ActivityWindow))
		require.NoError(t, err)
		return got
	}
	want := map[string]store.Activity{"a": {Attempts: 3, Succeeded: 2}, "g": {Attempts: 1, Succeeded: 1}}
	require.Equal(t, want, activity(store.Unscoped), "counted live: nothing is rolled up")

	// A roll-up that stopped ten minutes ago: what it would have rolled up
	// is in the hours, so only the attempts stored since are counted live,
	// on every delivery.
	_, err = db.Pool.Exec(ctx, `INSERT INTO activity_minutes (minute, events_received, delivered, retrying, failed)
		VALUES (date_trunc('minute', now()) - interval '10 minutes', 0, 0, 0, 0)`)
	require.NoError(t, err)
	require.Equal(t, map[string]store.Activity{"a": {Attempts: 1, Succeeded: 1}}, activity(store.Unscoped), "lagging")
	_, err = db.Pool.Exec(ctx, `DELETE FROM activity_minutes`)
	require.NoError(t, err)

	_, err = st.RollUpActivity(ctx, 100_000)
	require.NoError(t, err)
	require.Equal(t, want, activity(store.Unscoped), "added up from the hours")
	require.Equal(t, map[string]store.Activity{"g": {Attempts: 1, Succeeded: 1}}, activity(store.TenantScope("globex")))
	var hours int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM subscription_activity_hours WHERE subscription_id = 'a'`).Scan(&hours))
	require.Equal(t, 3, hours, "one row per hour with attempts in the window")

	_, err = db.Pool.Exec(ctx, `DELETE FROM attempts`)
	require.NoError(t, err)
	require.Equal(t, want, activity(store.Unscoped), "the attempts are no longer read")

	record("a", 5, "0 seconds", 500)
	require.Equal(t, map[string]store.Activity{"a": {Attempts: 4, Succeeded: 2}, "g": {Attempts: 1, Succeeded: 1}}, activity(store.Unscoped),
		"stored after the last minute rolled up, counted live while the roll-up is current")

	// 25 newer deliveries of a: its attempt above is on an older one,
	// left to the roll-up while the roll-up is current.
	_, err = db.Pool.Exec(ctx, `
		INSERT INTO events (id, type, data) SELECT 'n' || i, 'x.y', '{}' FROM generate_series(1, 25) i;
		INSERT INTO deliveries (event_id, subscription_id, created_at) SELECT 'n' || i, 'a', now() + i * interval '1 second' FROM generate_series(1, 25) i`)
	require.NoError(t, err)
	require.Equal(t, want, activity(store.Unscoped), "only each endpoint's newest deliveries are looked at")
}

// TestActivityHoursAreDropped: hours older than the activity window are
// dropped by the roll-up, and those that ended before the retention
// period by PruneActivityHours.
func TestActivityHoursAreDropped(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "a", "*")
	hours := func() []int {
		t.Helper()
		rows, err := db.Pool.Query(ctx, `SELECT round(extract(epoch FROM date_trunc('hour', now()) - hour) / 3600)::int
			FROM subscription_activity_hours ORDER BY hour`)
		require.NoError(t, err)
		var out []int
		for rows.Next() {
			var h int
			require.NoError(t, rows.Scan(&h))
			out = append(out, h)
		}
		require.NoError(t, rows.Err())
		return out
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO subscription_activity_hours (subscription_id, hour, attempts, succeeded)
		SELECT 'a', date_trunc('hour', now()) - h * interval '1 hour', 1, 1 FROM unnest(ARRAY[30, 26, 20, 3, 1]) h`)
	require.NoError(t, err)
	_, err = st.RollUpActivity(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, []int{20, 3, 1}, hours(), "older than the window and an hour")

	n, err := st.PruneActivityHours(ctx, 2*time.Hour)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, []int{1}, hours(), "ended before the retention period")
}
