package backlog

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

func TestGaugesShowTheDueBacklog(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	ctx := context.Background()
	_, err := st.CreateSubscription(ctx, domain.Subscription{ID: "s", URL: "https://s.example/", EventTypes: []string{"*"}, Secret: "secret-value"})
	require.NoError(t, err)
	for _, id := range []string{"a", "b", "c", "d"} {
		_, err := st.IngestEvent(ctx, domain.Event{ID: id, Type: "t", Data: []byte(`{}`)})
		require.NoError(t, err)
	}
	_, err = db.Pool.Exec(ctx, `
		UPDATE deliveries SET next_attempt_at = now() - interval '90 seconds' WHERE event_id = 'a';
		UPDATE deliveries SET status = 'retrying', attempts = 1, next_attempt_at = now() - interval '10 seconds' WHERE event_id = 'b';
		UPDATE deliveries SET status = 'retrying', attempts = 1, next_attempt_at = now() + interval '1 hour' WHERE event_id = 'c';
		UPDATE deliveries SET status = 'delivered', attempts = 1, next_attempt_at = NULL WHERE event_id = 'd'`)
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	g := New(st, time.Hour, clock.Real(), slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	g.refresh(ctx)
	require.Equal(t, 1.0, testutil.ToFloat64(g.due.WithLabelValues("pending")))
	require.Equal(t, 1.0, testutil.ToFloat64(g.due.WithLabelValues("retrying")), "a retry due in an hour is not backlog")
	require.Equal(t, 0.0, testutil.ToFloat64(g.due.WithLabelValues("processing")))
	require.InDelta(t, 90, testutil.ToFloat64(g.oldest), 10)

	_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET status = 'delivered', next_attempt_at = NULL`)
	require.NoError(t, err)
	g.refresh(ctx)
	require.Equal(t, 0.0, testutil.ToFloat64(g.due.WithLabelValues("pending")))
	require.Equal(t, 0.0, testutil.ToFloat64(g.oldest))
}
