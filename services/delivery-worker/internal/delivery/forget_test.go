package delivery

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/seal"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// TestForgetDeletedDropsSeriesOfDeletedSubscriptions: a subscription
// deleted through the API while this worker had no attempt in flight still
// loses its metric series here.
func TestForgetDeletedDropsSeriesOfDeletedSubscriptions(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	rdb, prefix := testkit.Redis(t)
	reg := prometheus.NewRegistry()
	guard := resilience.New(rdb, resilience.Config{Prefix: prefix, Registerer: reg})
	w := NewWorker(st, testSender(), guard, Config{Timeout: time.Second, LeaseMargin: time.Second,
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()
	for _, id := range []string{"kept", "deleted"} {
		sub, err := st.CreateSubscription(ctx, domain.Subscription{ID: id, URL: "https://" + id + ".example/", EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
		require.NoError(t, err)
		target := resilience.TargetOf(sub.ID, sub.URL, sub.CreatedAt)
		for range 5 {
			a := guard.AdmitBatch(ctx, []resilience.AdmitRequest{{Target: target, Timeout: time.Second}})[0]
			guard.FinishBatch(ctx, []resilience.Finished{{Admission: a, Report: true}})
		}
	}
	require.ElementsMatch(t, []string{"kept", "deleted"}, guard.Observed())
	_, err := st.DeleteSubscription(ctx, store.Unscoped, "deleted")
	require.NoError(t, err)

	w.forgetDeleted(ctx)
	require.Equal(t, []string{"kept"}, guard.Observed())
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				require.False(t, l.GetName() == "subscription_id" && l.GetValue() == "deleted", "%s still has a series for the deleted subscription", f.GetName())
			}
		}
	}
}

// TestHandleGivesBackWhenTheSecretDoesNotOpen: a worker whose keys cannot
// open a subscription's secret finishes the message (its partition moves
// on) and leaves the delivery due again, no attempt spent.
func TestHandleGivesBackWhenTheSecretDoesNotOpen(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	ctx := context.Background()
	keyring := func() *seal.Keyring {
		key, err := seal.ParseKey(seal.NewKey())
		require.NoError(t, err)
		k, err := seal.NewKeyring(key)
		require.NoError(t, err)
		return k
	}
	writer := store.New(db.Pool, store.WithSecretKeys(keyring()))
	_, err := writer.CreateSubscription(ctx, domain.Subscription{ID: "s", URL: "https://s.example/", EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
	require.NoError(t, err)
	res, err := writer.IngestEvent(ctx, domain.Event{ID: "e", Type: "t", Data: []byte(`{}`)})
	require.NoError(t, err)

	rdb, prefix := testkit.Redis(t)
	w := NewWorker(store.New(db.Pool, store.WithSecretKeys(keyring())), testSender(),
		resilience.New(rdb, resilience.Config{Prefix: prefix, Registerer: prometheus.NewRegistry()}),
		Config{Timeout: time.Second, LeaseMargin: time.Second, Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	d := res.Deliveries[0]
	require.NoError(t, w.Handle(ctx, queue.Message{DeliveryID: d.ID, EventID: d.EventID, SubscriptionID: d.SubscriptionID}))
	var attempts, recorded int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT attempts, (SELECT count(*) FROM attempts) FROM deliveries WHERE id = $1`, d.ID).Scan(&attempts, &recorded))
	require.Zero(t, attempts, "no attempt spent")
	require.Zero(t, recorded, "nothing was sent")
}
