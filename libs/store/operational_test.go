package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// step is one attempt of a test's batch: whether it succeeded, when it
// started (seconds after t0), and whether it was an operational event's.
type step struct {
	ok          bool
	at          int
	operational bool
	released    bool
}

// applyBatch makes one delivery per step to sub, claims them and applies
// their outcomes together, as one worker batch.
func applyBatch(t *testing.T, st *store.Store, sub string, t0 time.Time, batch []step, n *int) {
	t.Helper()
	ctx := context.Background()
	outcomes := make([]store.Outcome, len(batch))
	for i, s := range batch {
		*n++
		res, err := st.IngestEvent(ctx, event(fmt.Sprintf("evt_%s_%d", sub, *n), "order.created"))
		require.NoError(t, err)
		job, err := st.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
		require.NoError(t, err)
		code := 500
		if s.ok {
			code = 200
		}
		a := domain.Attempt{DeliveryID: job.DeliveryID, Number: job.Attempt, StartedAt: t0.Add(time.Duration(s.at) * time.Second), StatusCode: &code}
		if !s.ok {
			a.ErrorClass = domain.ErrorHTTPStatus
		}
		switch {
		case s.released:
			outcomes[i] = store.Released(job.DeliveryID, job.Attempt, time.Now())
		case s.ok:
			outcomes[i] = store.Delivered(a)
		default:
			outcomes[i] = store.Retrying(a, time.Now().Add(time.Hour))
		}
		if s.operational {
			outcomes[i] = outcomes[i].Operational()
		}
	}
	applied, err := st.ApplyOutcomes(ctx, outcomes)
	require.NoError(t, err)
	for _, a := range applied {
		require.NoError(t, a.Err)
	}
}

func failingSince(t *testing.T, db *testkit.Database, sub string) *time.Time {
	t.Helper()
	var since pgtype.Timestamptz
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT failing_since FROM subscriptions WHERE id = $1`, sub).Scan(&since))
	if !since.Valid {
		return nil
	}
	return &since.Time
}

func TestOutcomesKeepFailingSince(t *testing.T) {
	t.Parallel()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	tests := []struct {
		name    string
		batches [][]step
		want    int // seconds after t0; -1: not failing
	}{
		{"a failure starts the period", [][]step{{{at: 1}}}, 1},
		{"later failures keep its start", [][]step{{{at: 1}}, {{at: 5}}, {{at: 9}}}, 1},
		{"a success ends it", [][]step{{{at: 1}}, {{ok: true, at: 2}}}, -1},
		{"a failure after a success starts another", [][]step{{{at: 1}}, {{ok: true, at: 2}}, {{at: 3}}}, 3},
		{"a batch whose latest attempt succeeded ends it", [][]step{{{at: 1}}, {{at: 4}, {ok: true, at: 5}}}, -1},
		{"a batch whose latest attempt failed starts it", [][]step{{{ok: true, at: 2}, {at: 3}}}, 3},
		{"successes only", [][]step{{{ok: true, at: 1}}, {{ok: true, at: 2}}}, -1},
		{"an operational event's failure does not start it", [][]step{{{at: 1, operational: true}}}, -1},
		{"an operational event's success does not end it", [][]step{{{at: 1}}, {{ok: true, at: 2, operational: true}}}, 1},
		{"a claim given back is no attempt", [][]step{{{at: 1, released: true}}}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, db := setup(t)
			createSub(t, st, "sub_f", "*")
			n := 0
			for _, b := range tt.batches {
				applyBatch(t, st, "sub_f", t0, b, &n)
			}
			got := failingSince(t, db, "sub_f")
			if tt.want < 0 {
				require.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			require.True(t, got.Equal(t0.Add(time.Duration(tt.want)*time.Second)), "failing since %v", got)
		})
	}
}

// opDeliveries returns, for each operational event of typ, the
// subscriptions its deliveries go to and whether each is marked for the
// scheduler to publish and has no failure to report.
func opDeliveries(t *testing.T, db *testkit.Database, typ string) map[string][]string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `
		SELECT e.id, d.subscription_id, d.enqueued_at = '-infinity' AND NOT d.report_failure
		FROM events e JOIN deliveries d ON d.event_id = e.id WHERE e.type = $1 ORDER BY e.id, d.subscription_id`, typ)
	require.NoError(t, err)
	defer rows.Close()
	got := map[string][]string{}
	for rows.Next() {
		var (
			id, sub string
			marked  bool
		)
		require.NoError(t, rows.Scan(&id, &sub, &marked))
		require.True(t, marked, "an operational delivery waits for the scheduler and reports nothing when it fails")
		got[id] = append(got[id], sub)
	}
	require.NoError(t, rows.Err())
	return got
}

func TestReportHealth(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "sub_bad", "order.*")
	createSub(t, st, "ops", "dispatch.*")
	since := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	_, err := db.Pool.Exec(ctx, `UPDATE subscriptions SET failing_since = $1 WHERE id = 'sub_bad'`, since)
	require.NoError(t, err)
	waiting, err := st.IngestEvent(ctx, event("evt_waiting", "order.created"))
	require.NoError(t, err)

	subs, err := st.SubscriptionsToReport(ctx, "", 10)
	require.NoError(t, err)
	require.Len(t, subs, 1, "only the failing subscription has something to report")
	seen := subs[0]
	require.Equal(t, "sub_bad", seen.ID)
	require.True(t, seen.FailingSince.Equal(since))

	failing := func(open int64) ([]domain.Event, error) {
		data, err := json.Marshal(domain.OperationalData{SubscriptionID: seen.ID, OpenDeliveries: &open})
		return []domain.Event{{ID: domain.OperationalEventID(domain.OpSubscriptionFailing, seen.ID, "50", domain.PeriodKey(since)),
			Type: domain.OpSubscriptionFailing, Source: store.OperationalSource, Data: data}}, err
	}
	require.NoError(t, st.ReportHealth(ctx, seen, store.HealthReport{AlertSince: &since, AlertLevel: 50, Events: failing}))
	require.ErrorIs(t, st.ReportHealth(ctx, seen, store.HealthReport{AlertSince: &since, AlertLevel: 50, Events: failing}),
		store.ErrHealthChanged, "a report made from a stale read does nothing")
	got := opDeliveries(t, db, domain.OpSubscriptionFailing)
	require.Len(t, got, 1)
	for id, subs := range got {
		require.Equal(t, []string{"ops"}, subs)
		e, _, err := st.GetEvent(ctx, store.Unscoped, id)
		require.NoError(t, err)
		require.Equal(t, domain.DefaultTenant, e.TenantID)
		require.JSONEq(t, `{"subscription_id":"sub_bad","tenant_id":"","url":"","reason":"","open_deliveries":1,"occurred_at":"0001-01-01T00:00:00Z"}`, string(e.Data))
	}
	due, err := st.ClaimDue(ctx, 10, time.Hour)
	require.NoError(t, err)
	require.Len(t, due, 1, "the scheduler publishes the operational delivery on its next pass")
	require.Equal(t, "ops", due[0].SubscriptionID)

	subs, err = st.SubscriptionsToReport(ctx, "", 10)
	require.NoError(t, err)
	require.Equal(t, 50, subs[0].AlertLevel)
	require.NoError(t, st.ReportHealth(ctx, subs[0], store.HealthReport{AlertSince: &since, AlertLevel: domain.OpDisabledLevel,
		Disable: true, DisableReason: "failing for too long", Events: func(int64) ([]domain.Event, error) { return nil, nil }}))
	sub, err := st.GetSubscription(ctx, store.Unscoped, "sub_bad")
	require.NoError(t, err)
	require.Equal(t, domain.SubscriptionDisabled, sub.State)
	require.Equal(t, "failing for too long", sub.StateReason)
	require.Equal(t, domain.DeliveryPending, deliveriesOf(t, st, waiting.Event.ID)[0].Status, "a disabled subscription's deliveries wait")
	subs, err = st.SubscriptionsToReport(ctx, "", 10)
	require.NoError(t, err)
	require.Empty(t, subs, "reported disabled: nothing more to report")

	active := domain.SubscriptionActive
	_, err = st.UpdateSubscription(ctx, store.Unscoped, "sub_bad", store.SubscriptionPatch{State: &active})
	require.NoError(t, err)
	require.Nil(t, failingSince(t, db, "sub_bad"), "re-enabling starts the failing period afresh")
	subs, err = st.SubscriptionsToReport(ctx, "", 10)
	require.NoError(t, err)
	require.Empty(t, subs)
}

func TestGoneReportsTheDisabledSubscription(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	createSub(t, st, "sub_gone", "*")
	res, err := st.IngestEvent(ctx, event("evt_g", "x.y"))
	require.NoError(t, err)
	_, err = st.IngestEvent(ctx, event("evt_g2", "x.y"))
	require.NoError(t, err)
	job, err := st.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
	require.NoError(t, err)
	code := 410
	require.NoError(t, st.RecordAttempt(ctx, store.Gone(domain.Attempt{DeliveryID: job.DeliveryID, Number: 1, StartedAt: time.Now(),
		StatusCode: &code, ErrorClass: domain.ErrorHTTPStatus}, "endpoint answered 410 Gone")))
	subs, err := st.SubscriptionsToReport(ctx, "", 10)
	require.NoError(t, err)
	require.Len(t, subs, 1)
	require.Equal(t, domain.SubscriptionDisabled, subs[0].State)
	require.Equal(t, "endpoint answered 410 Gone", subs[0].StateReason)
	n, err := st.ReportExhausted(ctx, 10, false, time.Now())
	require.NoError(t, err)
	require.Equal(t, 1, n, "the 410's own delivery failed for good; the waiting one failed with its subscription, which the disabled event reports")
}

func TestReportExhausted(t *testing.T) {
	t.Parallel()
	for _, bySub := range []bool{false, true} {
		t.Run(fmt.Sprintf("by subscription tenant %v", bySub), func(t *testing.T) {
			st, db := setup(t)
			ctx := context.Background()
			_, _, err := st.PutTenant(ctx, domain.Tenant{ID: "acme"})
			require.NoError(t, err)
			for _, s := range []domain.Subscription{
				{ID: "sub_x", TenantID: "acme", URL: "https://user:pw@example.com/hook?token=t", EventTypes: []string{"order.*"}, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
				{ID: "ops_default", URL: "https://ops.example.com/", EventTypes: []string{"dispatch.*"}, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
				{ID: "ops_acme", TenantID: "acme", URL: "https://acme.example.com/", EventTypes: []string{"dispatch.delivery.exhausted"}, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
			} {
				_, err := st.CreateSubscription(ctx, s)
				require.NoError(t, err)
			}
			e := event("evt_x", "order.created")
			e.TenantID = "acme"
			res, err := st.IngestEvent(ctx, e)
			require.NoError(t, err)
			job, err := st.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
			require.NoError(t, err)
			code := 503
			require.NoError(t, st.RecordAttempt(ctx, store.Failed(domain.Attempt{DeliveryID: job.DeliveryID, Number: 1, StartedAt: time.Now(),
				StatusCode: &code, ErrorClass: domain.ErrorHTTPStatus, Error: "HTTP 503"})))

			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			n, err := st.ReportExhausted(ctx, 10, bySub, now)
			require.NoError(t, err)
			require.Equal(t, 1, n)
			n, err = st.ReportExhausted(ctx, 10, bySub, now)
			require.NoError(t, err)
			require.Zero(t, n, "a failure is reported once")

			got := opDeliveries(t, db, domain.OpDeliveryExhausted)
			require.Len(t, got, 1)
			want := []string{"ops_default"}
			if bySub {
				want = []string{"ops_acme"}
			}
			for id, subs := range got {
				require.Equal(t, want, subs)
				ev, _, err := st.GetEvent(ctx, store.Unscoped, id)
				require.NoError(t, err)
				require.JSONEq(t, fmt.Sprintf(`{"subscription_id":"sub_x","tenant_id":"acme","url":"https://example.com/hook",
					"reason":"the delivery failed for good after 1 attempts","delivery_id":%d,"event_id":"evt_x","event_type":"order.created",
					"attempts":1,"last_status_code":503,"last_error":"HTTP 503","occurred_at":"2026-03-01T12:00:00Z"}`, job.DeliveryID), string(ev.Data))

				// The operational event's own delivery failing for good
				// reports nothing: no loop.
				var opDelivery int64
				require.NoError(t, db.Pool.QueryRow(ctx, `SELECT id FROM deliveries WHERE event_id = $1`, id).Scan(&opDelivery))
				opJob, err := st.ClaimDelivery(ctx, opDelivery, time.Minute, 0)
				require.NoError(t, err)
				require.NoError(t, st.RecordAttempt(ctx, store.Failed(domain.Attempt{DeliveryID: opDelivery, Number: opJob.Attempt, StartedAt: time.Now(),
					StatusCode: &code, ErrorClass: domain.ErrorHTTPStatus}).Operational()))
			}
			n, err = st.ReportExhausted(ctx, 10, bySub, now)
			require.NoError(t, err)
			require.Zero(t, n)
			require.Nil(t, failingSince(t, db, "ops_default"))
			require.Nil(t, failingSince(t, db, "ops_acme"))
		})
	}
}
