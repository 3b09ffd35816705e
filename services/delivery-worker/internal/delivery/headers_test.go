package delivery

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/retry"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// TestHandleStoresTheHeaders delivers to a real receiver through the real
// store: the attempt read back has the receiver's response headers (its
// cookie masked, its HTML kept as text for the pages to escape) and
// request headers that, derived from what was stored, are exactly those
// the receiver got.
func TestHandleStoresTheHeaders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		code int
	}{
		{"delivered", http.StatusAccepted},
		{"refused", http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := testkit.Postgres(t)
			st := store.New(db.Pool)
			rdb, prefix := testkit.Redis(t)
			got := make(chan http.Header, 1)
			receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got <- r.Header.Clone()
				w.Header().Set("X-Receiver", `<script>alert("x")</script>`)
				w.Header().Add("Set-Cookie", "sid=s3cr3t; HttpOnly")
				w.WriteHeader(tc.code)
			}))
			t.Cleanup(receiver.Close)
			ctx := context.Background()
			_, err := st.CreateSubscription(ctx, domain.Subscription{ID: "sub_h", URL: receiver.URL, EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
			require.NoError(t, err)
			res, err := st.IngestEvent(ctx, domain.Event{ID: "evt_h", Type: "order.created", Data: []byte(`{}`)})
			require.NoError(t, err)
			d := res.Deliveries[0]
			guard := resilience.New(rdb, resilience.Config{Prefix: prefix, Registerer: prometheus.NewRegistry()})
			w := NewWorker(st, testSender(), guard, Config{Timeout: 5 * time.Second, LeaseMargin: time.Second, Retry: retry.Default(),
				Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			require.NoError(t, w.Handle(ctx, queue.Message{DeliveryID: d.ID, EventID: d.EventID, SubscriptionID: d.SubscriptionID}))

			attempts, err := st.ListAttempts(ctx, store.Unscoped, store.AttemptFilter{EventID: "evt_h", Limit: 10})
			require.NoError(t, err)
			require.Len(t, attempts, 1)
			a := attempts[0]
			response := domain.ParseHeaderLines(a.ResponseHeaders)
			require.Contains(t, response, domain.Header{Name: "X-Receiver", Value: `<script>alert("x")</script>`})
			require.Contains(t, response, domain.Header{Name: "Set-Cookie", Value: "sid=" + domain.MaskedValue, Masked: true})
			require.NotContains(t, a.ResponseHeaders, "s3cr3t")

			sent := <-got
			request := domain.RequestHeaders(a)
			require.Len(t, request, 10, "Dispatch's ten headers")
			for _, h := range request {
				require.Equal(t, sent.Get(h.Name), h.Value, "request header %s", h.Name)
				require.False(t, h.Masked)
			}
		})
	}
}
