package store_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

func TestTenantPutGetList(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()

	def, counts, err := st.GetTenant(ctx, domain.DefaultTenant)
	require.NoError(t, err, "the default tenant exists from the start")
	require.Equal(t, domain.DefaultTenant, def.ID)
	require.Zero(t, counts.Subscriptions)

	in := domain.Tenant{ID: "acme", Name: "Acme", Metadata: []byte(`{"plan": "gold"}`),
		Settings: domain.DeliverySettings{MaxAttempts: 3, Timeout: 2 * time.Second}, MaxSubscriptions: 5}
	created, isNew, err := st.PutTenant(ctx, in)
	require.NoError(t, err)
	require.True(t, isNew)
	require.Equal(t, "Acme", created.Name)
	require.JSONEq(t, `{"plan": "gold"}`, string(created.Metadata))
	require.Equal(t, 3, created.Settings.MaxAttempts)
	require.Equal(t, 2*time.Second, created.Settings.Timeout)
	require.Equal(t, 5, created.MaxSubscriptions)

	in.Name, in.Settings, in.MaxSubscriptions = "Acme Inc.", domain.DeliverySettings{}, 0
	updated, isNew, err := st.PutTenant(ctx, in)
	require.NoError(t, err)
	require.False(t, isNew)
	require.Equal(t, "Acme Inc.", updated.Name)
	require.Zero(t, updated.Settings.MaxAttempts, "a put replaces the settings")
	require.Zero(t, updated.MaxSubscriptions)
	require.Equal(t, created.CreatedAt, updated.CreatedAt)

	for _, id := range []string{"acme_eu", "acme_us", "globex"} {
		_, _, err := st.PutTenant(ctx, domain.Tenant{ID: id})
		require.NoError(t, err)
	}
	ids := func(f store.TenantFilter) []string {
		ts, err := st.ListTenants(ctx, f)
		require.NoError(t, err)
		var out []string
		for _, t := range ts {
			out = append(out, t.ID)
		}
		return out
	}
	require.Equal(t, []string{"acme", "acme_eu", "acme_us", "default", "globex"}, ids(store.TenantFilter{Limit: 10}))
	require.Equal(t, []string{"acme", "acme_eu"}, ids(store.TenantFilter{Prefix: "acme", Limit: 2}))
	require.Equal(t, []string{"acme_us"}, ids(store.TenantFilter{Prefix: "acme", After: "acme_eu", Limit: 2}))
	require.Empty(t, ids(store.TenantFilter{Prefix: "acme_%", Limit: 10}), "a prefix is matched as it is")

	_, _, err = st.GetTenant(ctx, "nope")
	require.ErrorIs(t, err, domain.ErrNotFound)
}

func TestTenantQuotaBeyondInt4IsRefusedNotWrapped(t *testing.T) {
	st, _ := setup(t)
	_, _, err := st.PutTenant(context.Background(), domain.Tenant{ID: "big", Name: "big", MaxSubscriptions: math.MaxInt32 + 1})
	require.ErrorContains(t, err, "greater than maximum value for int4")
}

func TestDeleteTenantTakesOnlyItsRows(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		_, _, err := st.PutTenant(ctx, domain.Tenant{ID: id})
		require.NoError(t, err)
		for i := range 2 {
			sub := createSub(t, st, fmt.Sprintf("%s_sub_%d", id, i), "*")
			_, err := db.Pool.Exec(ctx, `UPDATE subscriptions SET tenant_id = $1 WHERE id = $2`, id, sub.ID)
			require.NoError(t, err)
		}
		_, err = db.Pool.Exec(ctx, `INSERT INTO events (id, type, data, tenant_id) VALUES ($1, 'x', '{}', $2)`, id+"_evt", id)
		require.NoError(t, err)
		_, err = db.Pool.Exec(ctx, `INSERT INTO deliveries (event_id, subscription_id) SELECT $1, id FROM subscriptions WHERE tenant_id = $2`, id+"_evt", id)
		require.NoError(t, err)
		_, err = db.Pool.Exec(ctx, `INSERT INTO tenant_activity_minutes (tenant_id, minute, events_received, delivered, retrying, failed)
			VALUES ($1, date_trunc('minute', now()), 1, 0, 0, 0)`, id)
		require.NoError(t, err)
	}

	_, counts, err := st.GetTenant(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, store.TenantCounts{Subscriptions: 2, RecentEvents: 1}, counts)

	subs, err := st.DeleteTenant(ctx, "a")
	require.NoError(t, err)
	require.Len(t, subs, 2)
	require.Equal(t, "a_sub_0", subs[0].ID)
	require.Equal(t, "a", subs[1].TenantID)
	count := func(q string) int {
		var n int
		require.NoError(t, db.Pool.QueryRow(ctx, q).Scan(&n))
		return n
	}
	require.Zero(t, count(`SELECT count(*) FROM subscriptions WHERE id LIKE 'a\_%'`))
	require.Zero(t, count(`SELECT count(*) FROM events WHERE id = 'a_evt'`))
	require.Zero(t, count(`SELECT count(*) FROM deliveries WHERE event_id = 'a_evt'`))
	require.Zero(t, count(`SELECT count(*) FROM tenant_activity_minutes WHERE tenant_id = 'a'`), "a new tenant of the same id starts without figures")
	require.Equal(t, 1, count(`SELECT count(*) FROM tenant_activity_minutes WHERE tenant_id = 'b'`))
	require.Equal(t, 2, count(`SELECT count(*) FROM subscriptions WHERE tenant_id = 'b'`))
	require.Equal(t, 2, count(`SELECT count(*) FROM deliveries WHERE event_id = 'b_evt'`))

	_, err = st.DeleteTenant(ctx, "a")
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = st.DeleteTenant(ctx, domain.DefaultTenant)
	require.ErrorIs(t, err, domain.ErrConflict)
}

// TestTenantSettingsFillInWhatASubscriptionLeavesUnset: a claim carries
// the subscription's own settings, its tenant's where it sets none, and
// nothing (the worker's defaults) where neither does.
func TestTenantSettingsFillInWhatASubscriptionLeavesUnset(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	_, _, err := st.PutTenant(ctx, domain.Tenant{ID: "acme", Settings: domain.DeliverySettings{
		MaxAttempts: 3, Timeout: 2 * time.Second, RatePerSecond: 7, RetryBaseDelay: time.Second, RetryMaxDelay: time.Minute}})
	require.NoError(t, err)
	_, err = st.CreateSubscription(ctx, domain.Subscription{ID: "own", TenantID: "acme", URL: "http://127.0.0.1:9/", EventTypes: []string{"*"},
		Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Settings: domain.DeliverySettings{MaxAttempts: 9}})
	require.NoError(t, err)
	res, err := st.IngestEvent(ctx, domain.Event{ID: "e1", Type: "x", TenantID: "acme", Data: []byte(`{}`)})
	require.NoError(t, err)
	job, err := st.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, domain.DeliverySettings{MaxAttempts: 9, Timeout: 2 * time.Second, RatePerSecond: 7,
		RetryBaseDelay: time.Second, RetryMaxDelay: time.Minute}, job.Settings)

	createSub(t, st, "plain", "*")
	res, err = st.IngestEvent(ctx, event("e2", "x"))
	require.NoError(t, err)
	job, err = st.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
	require.NoError(t, err)
	require.Zero(t, job.Settings, "the default tenant sets nothing")
}

// TestScopeHidesOtherTenantsRows calls each scoped read and change with
// another tenant's scope: each finds nothing and changes nothing.
func TestScopeHidesOtherTenantsRows(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		_, _, err := st.PutTenant(ctx, domain.Tenant{ID: id})
		require.NoError(t, err)
		_, err = st.CreateSubscription(ctx, domain.Subscription{ID: "sub_" + id, TenantID: id, URL: "http://127.0.0.1:9/", EventTypes: []string{"*"}, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
		require.NoError(t, err)
		_, err = st.IngestEvent(ctx, domain.Event{ID: "evt_" + id, Type: "x", TenantID: id, Data: []byte(`{}`)})
		require.NoError(t, err)
	}
	_, err := db.Pool.Exec(ctx, `UPDATE deliveries SET status = 'failed', next_attempt_at = NULL`)
	require.NoError(t, err)
	a, b := store.TenantScope("a"), store.TenantScope("b")

	_, err = st.GetSubscription(ctx, a, "sub_b")
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = st.UpdateSubscription(ctx, a, "sub_b", store.SubscriptionPatch{URL: ptr("http://127.0.0.1:9/x")})
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, _, err = st.RotateSecret(ctx, a, "sub_b", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", time.Hour)
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = st.DeleteSubscription(ctx, a, "sub_b")
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, _, err = st.GetEvent(ctx, a, "evt_b")
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = st.ListEventDeliveries(ctx, a, store.EventDeliveryFilter{EventID: "evt_b", Limit: 10})
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = st.ListAttempts(ctx, a, store.AttemptFilter{EventID: "evt_b", Limit: 10})
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = st.Redeliver(ctx, a, "evt_b", "", false)
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = st.RedeliverBulk(ctx, a, store.RedeliverFilter{SubscriptionID: "sub_b", Limit: 10})
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = st.ListDeliveries(ctx, a, store.DeliveryFilter{SubscriptionID: "sub_b", Limit: 10})
	require.ErrorIs(t, err, domain.ErrNotFound)
	subs, err := st.ListSubscriptions(ctx, a, "", 10)
	require.NoError(t, err)
	require.Len(t, subs, 1)
	require.Equal(t, "sub_a", subs[0].ID)
	events, err := st.ListEvents(ctx, a, store.EventFilter{Limit: 10})
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, "evt_a", events[0].ID)
	events, err = st.ListEvents(ctx, a, store.EventFilter{SubscriptionID: "sub_b", Limit: 10})
	require.NoError(t, err)
	require.Empty(t, events)

	// Tenant b's scope sees its own, unchanged.
	sub, err := st.GetSubscription(ctx, b, "sub_b")
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:9/", sub.URL)
	var failed int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE status = 'failed'`).Scan(&failed))
	require.Equal(t, 2, failed, "nothing was redelivered")
}

func ptr[T any](v T) *T { return &v }

// TestCreatingASubscriptionDoesNotHoldUpIngest: while a subscription is
// being created in a tenant (its row locked against the quota), events of
// that tenant are still stored: their foreign key's share lock does not
// wait for the creation's.
func TestCreatingASubscriptionDoesNotHoldUpIngest(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	_, _, err := st.PutTenant(ctx, domain.Tenant{ID: "acme", MaxSubscriptions: 10})
	require.NoError(t, err)
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	_, err = tx.Exec(ctx, store.LockTenantSQL, "acme")
	require.NoError(t, err)

	ingestCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = st.IngestEvent(ingestCtx, domain.Event{ID: "e1", Type: "x", TenantID: "acme", Data: []byte(`{}`)})
	require.NoError(t, err, "an event waited for a subscription's creation in its tenant")
}
