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
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
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
			guard.Done(ctx, guard.Admit(ctx, target, resilience.Limits{}, time.Second), false)
		}
	}
	require.ElementsMatch(t, []string{"kept", "deleted"}, guard.Observed())
	_, err := st.DeleteSubscription(ctx, "deleted")
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
