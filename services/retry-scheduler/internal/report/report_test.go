package report_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/report"
)

// reported is one operational event as the test reads it back.
type reported struct {
	Type string
	Data domain.OperationalData
}

// operationalEvents returns the operational events stored, oldest first.
func operationalEvents(t *testing.T, db *testkit.Database) []reported {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT type, data FROM events WHERE source = 'dispatch' ORDER BY received_at, type DESC, data->>'threshold_percent'`)
	require.NoError(t, err)
	defer rows.Close()
	var out []reported
	for rows.Next() {
		var (
			r    reported
			data []byte
		)
		require.NoError(t, rows.Scan(&r.Type, &data))
		require.NoError(t, json.Unmarshal(data, &r.Data))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

func types(rs []reported) []string {
	out := []string{}
	for _, r := range rs {
		if r.Data.ThresholdPercent > 0 {
			out = append(out, fmt.Sprintf("%s@%d", r.Type, r.Data.ThresholdPercent))
			continue
		}
		out = append(out, r.Type)
	}
	return out
}

// TestReporterFollowsAFailingSubscription moves a fake clock through a
// failing period and checks each pass's events against a real database:
// each threshold once, then disabled, and nothing twice.
func TestReporterFollowsAFailingSubscription(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	ctx := context.Background()
	for _, s := range []domain.Subscription{
		{ID: "sub_bad", URL: "https://token@bad.example.com/hook?key=k", EventTypes: []string{"order.*"}},
		{ID: "ops", URL: "https://ops.example.com/", EventTypes: []string{"dispatch.*"}},
	} {
		s.Secret = signing.GenerateSecret()
		_, err := st.CreateSubscription(ctx, s)
		require.NoError(t, err)
	}
	since := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	_, err := db.Pool.Exec(ctx, `UPDATE subscriptions SET failing_since = $1 WHERE id = 'sub_bad'`, since)
	require.NoError(t, err)
	_, err = st.IngestEvent(ctx, domain.Event{ID: "evt_waiting", Type: "order.created", Data: []byte(`{}`)})
	require.NoError(t, err)

	const after = 10 * time.Hour
	clk := clock.NewFake(since)
	r := report.New(st, report.Config{AutoDisableAfter: after, Clock: clk, Registerer: prometheus.NewRegistry()})
	steps := []struct {
		at   time.Duration
		want []string // the events stored so far
	}{
		{4 * time.Hour, []string{}},
		{5 * time.Hour, []string{"dispatch.subscription.failing@50"}},
		{6 * time.Hour, []string{"dispatch.subscription.failing@50"}},
		{9*time.Hour + time.Minute, []string{"dispatch.subscription.failing@50", "dispatch.subscription.failing@70", "dispatch.subscription.failing@90"}},
		{after, []string{"dispatch.subscription.failing@50", "dispatch.subscription.failing@70", "dispatch.subscription.failing@90", "dispatch.subscription.disabled"}},
		{2 * after, []string{"dispatch.subscription.failing@50", "dispatch.subscription.failing@70", "dispatch.subscription.failing@90", "dispatch.subscription.disabled"}},
	}
	for _, s := range steps {
		clk.Set(since.Add(s.at))
		require.NoError(t, r.Pass(ctx))
		got := operationalEvents(t, db)
		require.Equal(t, s.want, types(got), "after %s", s.at)
	}
	got := operationalEvents(t, db)
	first := got[0].Data
	require.Equal(t, "sub_bad", first.SubscriptionID)
	require.Equal(t, "default", first.TenantID)
	require.Equal(t, "https://bad.example.com/hook", first.URL, "no credentials from the URL")
	require.True(t, first.FailingSince.Equal(since))
	require.True(t, first.DisableAt.Equal(since.Add(after)))
	require.Equal(t, int64(36000), first.AutoDisableAfterSeconds)
	require.Equal(t, int64(1), *first.OpenDeliveries)
	disabled := got[3].Data
	require.Contains(t, disabled.Reason, "AUTO_DISABLE_AFTER")
	require.Equal(t, int64(1), *disabled.OpenDeliveries, "the disabled subscription's deliveries wait")

	sub, err := st.GetSubscription(ctx, store.Unscoped, "sub_bad")
	require.NoError(t, err)
	require.Equal(t, domain.SubscriptionDisabled, sub.State)
	require.Equal(t, disabled.Reason, sub.StateReason)

	// Every event went to the operator's subscription, for the scheduler
	// to publish.
	var opDeliveries int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE subscription_id = 'ops' AND enqueued_at = '-infinity'`).Scan(&opDeliveries))
	require.Equal(t, 4, opDeliveries)
}

// TestReporterReportsRecovery: a success after a reported failing period
// is reported once; one after an unreported period is not.
func TestReporterReportsRecovery(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	ctx := context.Background()
	for _, id := range []string{"sub_reported", "sub_brief"} {
		_, err := st.CreateSubscription(ctx, domain.Subscription{ID: id, TenantID: "default", URL: "https://x.example.com/", EventTypes: []string{"a"}, Secret: signing.GenerateSecret()})
		require.NoError(t, err)
	}
	since := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	_, err := db.Pool.Exec(ctx, `UPDATE subscriptions SET failing_since = $1`, since)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `UPDATE subscriptions SET failing_since = $1 WHERE id = 'sub_brief'`, since.Add(5*time.Hour))
	require.NoError(t, err)
	clk := clock.NewFake(since.Add(6 * time.Hour))
	r := report.New(st, report.Config{AutoDisableAfter: 10 * time.Hour, Clock: clk, Registerer: prometheus.NewRegistry()})
	require.NoError(t, r.Pass(ctx))
	require.Equal(t, []string{"dispatch.subscription.failing@50"}, types(operationalEvents(t, db)))

	// Both succeed (as the worker's outcome statement records it).
	_, err = db.Pool.Exec(ctx, `UPDATE subscriptions SET failing_since = NULL`)
	require.NoError(t, err)
	for range 2 {
		require.NoError(t, r.Pass(ctx))
	}
	got := operationalEvents(t, db)
	require.Equal(t, []string{"dispatch.subscription.failing@50", "dispatch.subscription.recovered"}, types(got))
	require.Equal(t, "sub_reported", got[1].Data.SubscriptionID)
	require.True(t, got[1].Data.FailingSince.Equal(since), "recovered names the period that ended")
	subs, err := st.SubscriptionsToReport(ctx, "", 10)
	require.NoError(t, err)
	require.Empty(t, subs, "nothing left to report")
}
