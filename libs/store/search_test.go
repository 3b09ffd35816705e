package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// searchBase is when the first event of searchFixture was received; each
// later one a minute after the previous.
var searchBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// searchFixture stores events whose deliveries cover every derived status,
// one a minute from searchBase, and returns them oldest first.
//
//	e1 order.created    a delivered, b delivered -> delivered
//	e2 invoice.paid     b failed                 -> failed
//	e3 order.paid       a retrying               -> retrying
//	e4 order.item.added a processing             -> pending
//	e5 user.signup      (none)                   -> unmatched
//	e6 order.created    a failed, b retrying     -> retrying
//	e7 order.created    a failed, b pending      -> pending
//	e8 order.           (none: order.* needs more) -> unmatched
func searchFixture(t *testing.T, st *store.Store, db *testkit.Database) []string {
	t.Helper()
	ctx := context.Background()
	createSub(t, st, "a", "order.*")
	createSub(t, st, "b", "order.created", "invoice.*")
	events := []struct {
		id, typ  string
		statuses map[string]domain.DeliveryStatus
	}{
		{"e1", "order.created", map[string]domain.DeliveryStatus{"a": "delivered", "b": "delivered"}},
		{"e2", "invoice.paid", map[string]domain.DeliveryStatus{"b": "failed"}},
		{"e3", "order.paid", map[string]domain.DeliveryStatus{"a": "retrying"}},
		{"e4", "order.item.added", map[string]domain.DeliveryStatus{"a": "processing"}},
		{"e5", "user.signup", nil},
		{"e6", "order.created", map[string]domain.DeliveryStatus{"a": "failed", "b": "retrying"}},
		{"e7", "order.created", map[string]domain.DeliveryStatus{"a": "failed", "b": "pending"}},
		{"e8", "order.", nil},
	}
	var ids []string
	for i, e := range events {
		res, err := st.IngestEvent(ctx, event(e.id, e.typ))
		require.NoError(t, err)
		require.Len(t, res.Deliveries, len(e.statuses), e.id)
		at := searchBase.Add(time.Duration(i) * time.Minute)
		// Listings rely on a delivery being created with its event.
		var apart int
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM deliveries d JOIN events e ON e.id = d.event_id
			WHERE e.id = $1 AND d.created_at <> e.received_at`, e.id).Scan(&apart))
		require.Zero(t, apart, "deliveries are created at their event's received_at")
		_, err = db.Pool.Exec(ctx, `UPDATE events SET received_at = $2 WHERE id = $1`, e.id, at)
		require.NoError(t, err)
		for sub, status := range e.statuses {
			_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET status = $3, created_at = $4, updated_at = $4
				WHERE event_id = $1 AND subscription_id = $2`, e.id, sub, status, at)
			require.NoError(t, err)
		}
		ids = append(ids, e.id)
	}
	return ids
}

func eventIDs(es []store.EventSummary) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func TestListEvents(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	searchFixture(t, st, db)
	minute := func(n int) time.Time { return searchBase.Add(time.Duration(n) * time.Minute) }

	tests := []struct {
		name string
		f    store.EventFilter
		want []string
	}{
		{"all, newest first", store.EventFilter{}, []string{"e8", "e7", "e6", "e5", "e4", "e3", "e2", "e1"}},
		{"exact type", store.EventFilter{Type: "order.created"}, []string{"e7", "e6", "e1"}},
		{"pattern", store.EventFilter{Type: "order.*"}, []string{"e7", "e6", "e4", "e3", "e1"}},
		{"nested pattern", store.EventFilter{Type: "order.item.*"}, []string{"e4"}},
		{"star", store.EventFilter{Type: "*"}, []string{"e8", "e7", "e6", "e5", "e4", "e3", "e2", "e1"}},
		{"unknown type", store.EventFilter{Type: "nope"}, []string{}},
		{"unmatched", store.EventFilter{Status: domain.EventUnmatched}, []string{"e8", "e5"}},
		{"pending", store.EventFilter{Status: domain.EventPending}, []string{"e7", "e4"}},
		{"retrying", store.EventFilter{Status: domain.EventRetrying}, []string{"e6", "e3"}},
		{"failed", store.EventFilter{Status: domain.EventFailed}, []string{"e2"}},
		{"delivered", store.EventFilter{Status: domain.EventDelivered}, []string{"e1"}},
		{"subscription", store.EventFilter{SubscriptionID: "b"}, []string{"e7", "e6", "e2", "e1"}},
		// With a subscription, the status is that of the delivery to it: e6
		// is retrying (b) but its delivery to a failed.
		{"subscription and status", store.EventFilter{SubscriptionID: "a", Status: domain.EventRetrying}, []string{"e3"}},
		{"subscription and its delivery's status", store.EventFilter{SubscriptionID: "a", Status: domain.EventFailed}, []string{"e7", "e6"}},
		{"unknown subscription", store.EventFilter{SubscriptionID: "zz"}, []string{}},
		{"since", store.EventFilter{Since: minute(5)}, []string{"e8", "e7", "e6"}},
		{"until", store.EventFilter{Until: minute(2)}, []string{"e2", "e1"}},
		{"since and until", store.EventFilter{Since: minute(1), Until: minute(3)}, []string{"e3", "e2"}},
		{"status, type and time", store.EventFilter{Status: domain.EventPending, Type: "order.*", Until: minute(6)}, []string{"e4"}},
		{"subscription and time", store.EventFilter{SubscriptionID: "a", Since: minute(3), Until: minute(6)}, []string{"e6", "e4"}},
		{"failed of one type", store.EventFilter{Status: domain.EventFailed, Type: "order.created"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := tt.f
			f.Limit = 100
			got, err := st.ListEvents(ctx, store.Unscoped, f)
			require.NoError(t, err)
			require.Equal(t, tt.want, eventIDs(got))
			for _, e := range got {
				if f.Status != "" && f.SubscriptionID == "" {
					require.Equal(t, f.Status, e.Status, e.ID)
				}
				_, status, err := st.GetEvent(ctx, store.Unscoped, e.ID)
				require.NoError(t, err)
				require.Equal(t, status, e.Status, "%s: the same status as GET /events/{id}", e.ID)
			}

			// Pages of two walk the same list.
			f.Limit = 2
			var paged []string
			for range 10 {
				page, err := st.ListEvents(ctx, store.Unscoped, f)
				require.NoError(t, err)
				paged = append(paged, eventIDs(page)...)
				if len(page) < f.Limit {
					break
				}
				p := page[len(page)-1].Position()
				f.After = &p
			}
			require.Equal(t, tt.want, append([]string{}, paged...))
		})
	}
}

func TestListDeliveries(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	searchFixture(t, st, db)
	createSub(t, st, "quiet", "never.*")
	minute := func(n int) time.Time { return searchBase.Add(time.Duration(n) * time.Minute) }

	tests := []struct {
		name string
		f    store.DeliveryFilter
		want []string // event ids
		err  error
	}{
		{"all, newest first", store.DeliveryFilter{SubscriptionID: "a"}, []string{"e7", "e6", "e4", "e3", "e1"}, nil},
		{"status", store.DeliveryFilter{SubscriptionID: "a", Status: domain.DeliveryFailed}, []string{"e7", "e6"}, nil},
		{"since", store.DeliveryFilter{SubscriptionID: "a", Since: minute(3)}, []string{"e7", "e6", "e4"}, nil},
		{"until", store.DeliveryFilter{SubscriptionID: "b", Until: minute(5)}, []string{"e2", "e1"}, nil},
		{"status and time", store.DeliveryFilter{SubscriptionID: "b", Status: domain.DeliveryRetrying, Since: minute(5), Until: minute(6)}, []string{"e6"}, nil},
		{"no match", store.DeliveryFilter{SubscriptionID: "a", Status: domain.DeliveryPending, Until: minute(1)}, []string{}, nil},
		{"no deliveries", store.DeliveryFilter{SubscriptionID: "quiet"}, []string{}, nil},
		{"unknown subscription", store.DeliveryFilter{SubscriptionID: "zz"}, nil, domain.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := tt.f
			f.Limit = 100
			got, err := st.ListDeliveries(ctx, store.Unscoped, f)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			ids := make([]string, len(got))
			for i, d := range got {
				ids[i] = d.EventID
				require.Equal(t, f.SubscriptionID, d.SubscriptionID)
				require.NotEmpty(t, d.EventType)
			}
			require.Equal(t, tt.want, ids)

			f.Limit = 2
			var paged []string
			for range 10 {
				page, err := st.ListDeliveries(ctx, store.Unscoped, f)
				require.NoError(t, err)
				for _, d := range page {
					paged = append(paged, d.EventID)
				}
				if len(page) < f.Limit {
					break
				}
				p := page[len(page)-1].Position()
				f.After = &p
			}
			require.Equal(t, tt.want, append([]string{}, paged...))
		})
	}
}

func TestStats(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "a", "*")
	for _, id := range []string{"s1", "s2", "s3", "s4", "s5", "s6"} {
		_, err := st.IngestEvent(ctx, event(id, "x.y"))
		require.NoError(t, err)
	}
	set := func(event, status, updated, next string) {
		t.Helper()
		_, err := db.Pool.Exec(ctx, `UPDATE deliveries SET status = $2, updated_at = now() - $3::interval,
			next_attempt_at = now() - $4::interval WHERE event_id = $1`, event, status, updated, next)
		require.NoError(t, err)
	}
	set("s1", "delivered", "1 minute", "0")
	set("s2", "delivered", "2 hours", "0") // outside a 1h window
	set("s3", "failed", "10 minutes", "0")
	set("s4", "retrying", "5 minutes", "-1 hour")    // due in an hour: not backlog
	set("s5", "retrying", "5 minutes", "90 seconds") // due 90 s ago
	set("s6", "processing", "1 minute", "-1 minute") // claimed, lease still running
	_, err := db.Pool.Exec(ctx, `UPDATE events SET received_at = now() - interval '2 hours' WHERE id = 's2'`)
	require.NoError(t, err)
	_, err = st.IngestEvent(ctx, event("s7", "x.y")) // pending, due at once
	require.NoError(t, err)
	var oldest time.Time
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT next_attempt_at FROM deliveries WHERE event_id = 's5'`).Scan(&oldest))

	tests := []struct {
		window                                   time.Duration
		received, delivered, retrying, failed, n int64
	}{
		{time.Hour, 6, 1, 2, 1, 2},
		{3 * time.Hour, 7, 2, 2, 1, 2},
		{30 * time.Second, 6, 0, 0, 0, 2},
	}
	// Not parallel: a subtest waiting for a free slot could start after
	// the 30 s window has passed the events by.
	for _, tt := range tests {
		t.Run(tt.window.String(), func(t *testing.T) {
			s, err := st.Stats(ctx, store.Unscoped, tt.window)
			require.NoError(t, err)
			require.Equal(t, tt.window, s.To.Sub(s.From))
			require.Equal(t, []int64{tt.received, tt.delivered, tt.retrying, tt.failed, tt.n},
				[]int64{s.EventsReceived, s.Delivered, s.Retrying, s.Failed, s.BacklogDue})
			require.NotNil(t, s.OldestDue)
			require.WithinDuration(t, oldest, *s.OldestDue, time.Millisecond, "the retry due 90 s ago is the oldest")
		})
	}
}

// TestRolledUpStatsEqualLiveCounts: once closed minutes are rolled up,
// GET /stats adds them up instead of counting rows, and answers the same.
func TestRolledUpStatsEqualLiveCounts(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "a", "*")
	createSub(t, st, "b", "x.*")
	for i := range 40 {
		_, err := st.IngestEvent(ctx, event(fmt.Sprintf("r%d", i), "x.y"))
		require.NoError(t, err)
	}
	// Spread them over the last three hours, in every status.
	_, err := db.Pool.Exec(ctx, `
		UPDATE events SET received_at = now() - (substr(id, 2)::int * interval '4 minutes 7 seconds');
		UPDATE deliveries d SET created_at = e.received_at,
			updated_at = e.received_at + interval '20 seconds',
			status = (ARRAY['delivered', 'retrying', 'failed', 'pending'])[1 + substr(e.id, 2)::int % 4]
		FROM events e WHERE e.id = d.event_id`)
	require.NoError(t, err)

	windows := []time.Duration{time.Hour, 2*time.Hour + 7*time.Minute, 24 * time.Hour}
	live := map[time.Duration]store.Stats{}
	for _, w := range windows {
		s, err := st.Stats(ctx, store.Unscoped, w)
		require.NoError(t, err)
		live[w] = s
	}
	n, err := st.RollUpActivity(ctx, 100_000)
	require.NoError(t, err)
	require.Greater(t, n, int64(7*24*60-5), "a week of minutes at first")
	again, err := st.RollUpActivity(ctx, 100_000)
	require.NoError(t, err)
	require.LessOrEqual(t, again, int64(2), "only minutes closed since")
	for _, w := range windows {
		s, err := st.Stats(ctx, store.Unscoped, w)
		require.NoError(t, err)
		want := live[w]
		require.Equal(t, []int64{want.EventsReceived, want.Delivered, want.Retrying, want.Failed},
			[]int64{s.EventsReceived, s.Delivered, s.Retrying, s.Failed}, "window %s", w)
	}
	require.Equal(t, int64(40), live[24*time.Hour].EventsReceived)
}

// TestTimelineIsTheSameBeforeAndAfterRollUp: each minute's activity, and
// every minute present, whether rolled up or counted live.
func TestTimelineIsTheSameBeforeAndAfterRollUp(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "a", "*")
	for i := range 12 {
		_, err := st.IngestEvent(ctx, event(fmt.Sprintf("t%d", i), "x.y"))
		require.NoError(t, err)
	}
	_, err := db.Pool.Exec(ctx, `
		UPDATE events SET received_at = date_trunc('minute', now()) - (substr(id, 2)::int * interval '3 minutes') + interval '10 seconds';
		UPDATE deliveries d SET updated_at = e.received_at, status = CASE WHEN substr(e.id, 2)::int % 3 = 0 THEN 'failed' ELSE 'delivered' END
		FROM events e WHERE e.id = d.event_id`)
	require.NoError(t, err)
	live, err := st.Timeline(ctx, store.Unscoped, time.Hour)
	require.NoError(t, err)
	require.Len(t, live, 61, "every minute of the hour and the current one")
	var events, failed int64
	for _, m := range live {
		events += m.EventsReceived
		failed += m.Failed
	}
	require.Equal(t, int64(12), events)
	require.Equal(t, int64(4), failed)
	_, err = st.RollUpActivity(ctx, 100_000)
	require.NoError(t, err)
	rolled, err := st.Timeline(ctx, store.Unscoped, time.Hour)
	require.NoError(t, err)
	require.Equal(t, active(live), active(rolled))
}

// active is the minutes of a timeline that saw something. Two readings
// compare by them: a minute that began between the readings moves the
// window (its first minute drops out, a new one is added), but the tests'
// activity lies well inside both windows.
func active(timeline []store.MinuteActivity) []store.MinuteActivity {
	return slices.DeleteFunc(slices.Clone(timeline), func(m store.MinuteActivity) bool {
		return m == store.MinuteActivity{Minute: m.Minute}
	})
}

// TestStatsOfOneTenant: a tenant's stats and timeline count its own events
// and the deliveries to its subscriptions (those of an event sent to every
// tenant included), never another tenant's, and answer the same whether
// the minutes are rolled up or counted live; the tail after the last
// rolled-up minute is counted live for the tenant too.
func TestStatsOfOneTenant(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "quiet"} {
		_, _, err := st.PutTenant(ctx, domain.Tenant{ID: id})
		require.NoError(t, err)
	}
	for _, s := range []struct{ id, tenant string }{{"sa", "a"}, {"sb", "b"}, {"sd", domain.DefaultTenant}} {
		_, err := st.CreateSubscription(ctx, domain.Subscription{ID: s.id, TenantID: s.tenant, URL: "http://127.0.0.1:1/" + s.id,
			EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
		require.NoError(t, err)
	}
	ingest := func(id, tenant string) {
		t.Helper()
		e := event(id, "x.y")
		e.TenantID = tenant
		_, err := st.IngestEvent(ctx, e)
		require.NoError(t, err)
	}
	// at moves an event and sets its delivery to sub, both ago.
	at := func(event, received, sub, status, updated string) {
		t.Helper()
		_, err := db.Pool.Exec(ctx, `UPDATE events SET received_at = now() - $2::interval WHERE id = $1`, event, received)
		require.NoError(t, err)
		_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET status = $3, updated_at = now() - $4::interval,
			next_attempt_at = CASE $3 WHEN 'retrying' THEN now() + interval '1 hour' END
			WHERE event_id = $1 AND subscription_id = $2`, event, sub, status, updated)
		require.NoError(t, err)
	}
	for _, e := range []struct{ id, tenant string }{{"a1", "a"}, {"a2", "a"}, {"b1", "b"}, {"b2", "b"},
		{"all", domain.AllTenants}, {"d1", domain.DefaultTenant}} {
		ingest(e.id, e.tenant)
	}
	at("a1", "20 minutes", "sa", "delivered", "19 minutes")
	at("a2", "20 minutes", "sa", "failed", "18 minutes")
	at("b1", "20 minutes", "sb", "delivered", "19 minutes")
	at("b2", "2 hours", "sb", "delivered", "2 hours") // outside the window
	at("all", "15 minutes", "sa", "retrying", "14 minutes")
	at("all", "15 minutes", "sb", "delivered", "14 minutes")
	at("all", "15 minutes", "sd", "delivered", "14 minutes")
	at("d1", "10 minutes", "sd", "delivered", "10 minutes")

	type figures struct{ received, delivered, retrying, failed, backlog int64 }
	scopes := map[string]store.Scope{"every tenant": store.Unscoped, "a": store.TenantScope("a"), "b": store.TenantScope("b"),
		"default": store.TenantScope(domain.DefaultTenant), "quiet": store.TenantScope("quiet")}
	// read returns each scope's stats over the last hour, and its timeline.
	read := func() (map[string]figures, map[string][]store.MinuteActivity) {
		t.Helper()
		stats, timelines := map[string]figures{}, map[string][]store.MinuteActivity{}
		for name, scope := range scopes {
			s, err := st.Stats(ctx, scope, time.Hour)
			require.NoError(t, err)
			stats[name] = figures{s.EventsReceived, s.Delivered, s.Retrying, s.Failed, s.BacklogDue}
			timelines[name], err = st.Timeline(ctx, scope, time.Hour)
			require.NoError(t, err)
			require.Len(t, timelines[name], 61, name)
			var sum figures
			for _, m := range timelines[name] {
				sum.received += m.EventsReceived
				sum.delivered += m.Delivered
				sum.retrying += m.Retrying
				sum.failed += m.Failed
			}
			sum.backlog = stats[name].backlog
			require.Equal(t, stats[name], sum, "%s: the timeline adds up to the stats", name)
		}
		return stats, timelines
	}
	liveStats, liveTimelines := read()
	require.Equal(t, map[string]figures{
		"every tenant": {received: 5, delivered: 5, retrying: 1, failed: 1},
		// a's own events, not the one sent to every tenant, whose
		// delivery to a's subscription counts.
		"a":       {received: 2, delivered: 1, retrying: 1, failed: 1},
		"b":       {received: 1, delivered: 2},
		"default": {received: 1, delivered: 2},
		"quiet":   {},
	}, liveStats)
	n, err := st.RollUpActivity(ctx, 100_000)
	require.NoError(t, err)
	require.Greater(t, n, int64(7*24*60-5), "the answer counts minutes, not the tenants' rows")
	var rowsOfA int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM tenant_activity_minutes WHERE tenant_id = 'a'`).Scan(&rowsOfA))
	require.Equal(t, 4, rowsOfA, "a row for each minute of a's activity: received, delivered, failed, retrying")
	rolledStats, rolledTimelines := read()
	require.Equal(t, liveStats, rolledStats, "the rolled-up minutes add up to the live counts")
	for name := range scopes {
		require.Equal(t, active(liveTimelines[name]), active(rolledTimelines[name]), name)
	}

	// After the roll-up, in the live tail: a pending delivery each for a
	// and b, due now, and a delivered one for a.
	for _, e := range []struct{ id, tenant string }{{"a3", "a"}, {"a4", "a"}, {"b3", "b"}} {
		ingest(e.id, e.tenant)
	}
	_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET status = 'delivered', updated_at = now(), next_attempt_at = NULL WHERE event_id = 'a4'`)
	require.NoError(t, err)
	stats, _ := read()
	require.Equal(t, map[string]figures{
		"every tenant": {received: 8, delivered: 6, retrying: 1, failed: 1, backlog: 2},
		"a":            {received: 4, delivered: 2, retrying: 1, failed: 1, backlog: 1},
		"b":            {received: 2, delivered: 2, backlog: 1},
		"default":      {received: 1, delivered: 2},
		"quiet":        {},
	}, stats)

	none := store.NoActivity(time.Hour)
	require.Len(t, none, 61)
	require.Equal(t, store.MinuteActivity{Minute: none[60].Minute}, none[60])
}

// TestRollUpDropsMinutesOlderThanAnyWindow: the roll-up drops the whole
// deployment's minutes and the tenants' once they are older than the
// longest window.
func TestRollUpDropsMinutesOlderThanAnyWindow(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	_, _, err := st.PutTenant(ctx, domain.Tenant{ID: "acme"})
	require.NoError(t, err)
	// One minute for every statement: now() moves on between them, and
	// may cross into the next minute.
	var minute time.Time
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT date_trunc('minute', now())`).Scan(&minute))
	for _, q := range []string{
		`INSERT INTO activity_minutes (minute, events_received, delivered, retrying, failed)
			SELECT $1::timestamptz - age, 1, 1, 0, 0 FROM (VALUES (interval '8 days'), (interval '10 minutes')) a(age)`,
		`INSERT INTO tenant_activity_minutes (tenant_id, minute, events_received, delivered, retrying, failed)
			SELECT 'acme', $1::timestamptz - age, 1, 1, 0, 0 FROM (VALUES (interval '8 days'), (interval '10 minutes')) a(age)`,
	} {
		_, err := db.Pool.Exec(ctx, q, minute)
		require.NoError(t, err)
	}
	_, err = st.RollUpActivity(ctx, 100)
	require.NoError(t, err)
	var old, recent int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE minute < now() - interval '7 days'),
		count(*) FILTER (WHERE minute = $1::timestamptz - interval '10 minutes' AND events_received = 1)
		FROM (SELECT minute, events_received FROM activity_minutes
		      UNION ALL SELECT minute, events_received FROM tenant_activity_minutes) m`, minute).Scan(&old, &recent))
	require.Zero(t, old, "no minute older than a week, of the whole deployment or of a tenant")
	require.Equal(t, 2, recent, "the recent minutes stay as they were")
}

// TestConcurrentRollUpsDoNotMixTheirCounts: of two roll-ups of the same
// minutes, the one that finds them taken by the other inserts none of their
// tenants' rows, even a tenant's that the other, reading earlier, did not
// see.
func TestConcurrentRollUpsDoNotMixTheirCounts(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	for _, id := range []string{"early", "late"} {
		_, _, err := st.PutTenant(ctx, domain.Tenant{ID: id})
		require.NoError(t, err)
	}
	var minute time.Time
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT date_trunc('minute', now()) - interval '10 minutes'`).Scan(&minute))
	post := func(id, tenant string) {
		t.Helper()
		_, err := db.Pool.Exec(ctx, `INSERT INTO events (id, type, data, tenant_id, received_at) VALUES ($1, 'x.y', '{}', $2, $3)`, id, tenant, minute)
		require.NoError(t, err)
	}
	post("e1", "early")

	first, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = first.Rollback(ctx) }()
	var n int64
	require.NoError(t, first.QueryRow(ctx, store.RollUpSQL, 100_000, store.MaxStatsWindow, store.RollUpDelay, store.ActivityWindow).Scan(&n))
	require.Positive(t, n)
	var firstLast time.Time
	require.NoError(t, first.QueryRow(ctx, `SELECT max(minute) FROM activity_minutes`).Scan(&firstLast))
	post("e2", "late") // seen by the second roll-up only

	second := make(chan int64, 1)
	go func() {
		n, err := st.RollUpActivity(ctx, 100_000)
		assert.NoError(t, err)
		second <- n
	}()
	require.Eventually(t, func() bool {
		var waiting bool
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%activity_minutes%')`).Scan(&waiting))
		return waiting
	}, 10*time.Second, 10*time.Millisecond, "the second roll-up waits for the first's minutes")
	require.NoError(t, first.Commit(ctx))
	// The second's range ends a minute later than the first's when a minute
	// turned between their statements; it may add that minute, none other.
	var after int64
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM activity_minutes WHERE minute > $1`, firstLast).Scan(&after))
	require.LessOrEqual(t, after, int64(1))
	require.Equal(t, after, <-second, "the first's minutes were taken")

	rows, err := db.Pool.Query(ctx, `SELECT tenant_id FROM tenant_activity_minutes ORDER BY 1`)
	require.NoError(t, err)
	tenants, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"early"}, tenants)
	var received int64
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT events_received FROM activity_minutes WHERE minute = $1`, minute).Scan(&received))
	require.Equal(t, int64(1), received, "the first roll-up's count stands")
}

// TestEventListingsAreNeverCachedAsGenericPlans: a connection that lists a
// tenant's events again and again keeps no prepared statement of the
// listing, so PostgreSQL plans each for its values. A cached one turned
// generic after five runs, and the generic plan for a tenant's type
// pattern read every matching event of the tenant and sorted them (1.6 s
// a page for a tenant of a million events; PERFORMANCE.md).
func TestEventListingsAreNeverCachedAsGenericPlans(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO tenants (id, name) VALUES ('acme', 'Acme');
		INSERT INTO events (id, tenant_id, type, data) SELECT 'evt_' || i, 'acme', 'order.created', '{}' FROM generate_series(1, 20) i`)
	require.NoError(t, err)
	cfg, err := pgxpool.ParseConfig(db.URL)
	require.NoError(t, err)
	cfg.MaxConns = 1 // every listing on the one connection inspected below
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := store.New(pool)
	for _, f := range []store.EventFilter{{Type: "order.*"}, {Status: domain.EventUnmatched}, {}} {
		for range 7 {
			f.Limit = 10
			events, err := st.ListEvents(ctx, store.TenantScope("acme"), f)
			require.NoError(t, err)
			require.Len(t, events, 10)
		}
	}
	var cached int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%ARRAY(SELECT x.status FROM deliveries x%'
		AND statement NOT LIKE '%pg_prepared_statements%'`).Scan(&cached))
	require.Zero(t, cached, "the listing was prepared and cached on the connection")
}

// TestListingWithTwoFiltersKeepsItsConnections: a tenant's failed events
// are listed by two statements at once and the slower one cancelled (here
// the walk of every failed delivery, 20,000 of another tenant's before
// the tenant's one); the cancelled statement's connection goes back to
// the pool instead of being closed, which made every such listing open a
// new session.
func TestListingWithTwoFiltersKeepsItsConnections(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO tenants (id, name) VALUES ('acme', 'Acme'), ('other', 'Other');
		INSERT INTO subscriptions (id, tenant_id, url, event_types, secret) VALUES
			('acme_1', 'acme', 'https://acme.example/', ARRAY['*'], 'whsec_x'),
			('other_1', 'other', 'https://other.example/', ARRAY['*'], 'whsec_x');
		INSERT INTO events (id, tenant_id, type, data, received_at)
			SELECT 'evt_' || i, 'acme', 'order.created', '{}', now() - interval '1 day' - i * interval '1 second' FROM generate_series(1, 5) i;
		INSERT INTO deliveries (event_id, subscription_id, status, created_at)
			SELECT id, 'acme_1', CASE WHEN id = 'evt_1' THEN 'failed' ELSE 'delivered' END, received_at FROM events;
		INSERT INTO events (id, tenant_id, type, data, received_at)
			SELECT 'other_' || i, 'other', 'order.created', '{}', now() - i * interval '1 second' FROM generate_series(1, 20000) i;
		INSERT INTO deliveries (event_id, subscription_id, status, created_at)
			SELECT id, 'other_1', 'failed', received_at FROM events WHERE tenant_id = 'other';
		ANALYZE`)
	require.NoError(t, err)
	pool, err := store.Connect(ctx, db.URL, 10)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := store.New(pool)
	for range 10 {
		events, err := st.ListEvents(ctx, store.TenantScope("acme"), store.EventFilter{Status: domain.EventFailed, Limit: 10})
		require.NoError(t, err)
		require.Equal(t, []string{"evt_1"}, eventIDs(events))
	}
	s := pool.Stat()
	require.Equal(t, s.NewConnsCount(), int64(s.TotalConns()), "connections closed by a cancelled listing")
}
