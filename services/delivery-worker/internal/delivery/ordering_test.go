package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
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

// TestHandleFollowsAnOrderingKey delivers through the real store to a real
// receiver: one message, the head's, delivers the key's events one after
// another in the order they were accepted, each with its key in a header
// and in the signed body, until one fails: the key waits behind it.
func TestHandleFollowsAnOrderingKey(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	rdb, prefix := testkit.Redis(t)
	var (
		mu       sync.Mutex
		received []string
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ID          string `json:"id"`
			OrderingKey string `json:"ordering_key"`
		}
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, &body)
		mu.Lock()
		received = append(received, fmt.Sprintf("%s %s %s", body.ID, body.OrderingKey, r.Header.Get(domain.HeaderOrderingKey)))
		mu.Unlock()
		if body.ID == "e4" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(receiver.Close)
	ctx := context.Background()
	_, err := st.CreateSubscription(ctx, domain.Subscription{ID: "sub_o", URL: receiver.URL, EventTypes: []string{"*"}, Secret: signing.GenerateSecret(), Ordering: domain.OrderingPerKey})
	require.NoError(t, err)
	var first store.DeliveryRef
	for i := 1; i <= 6; i++ {
		res, err := st.IngestEvent(ctx, domain.Event{ID: fmt.Sprintf("e%d", i), Type: "order.updated", Data: []byte(`{}`), OrderingKey: "k"})
		require.NoError(t, err)
		require.Len(t, res.Deliveries, 1)
		require.Equal(t, i > 1, res.Deliveries[0].Held)
		if i == 1 {
			first = res.Deliveries[0]
		}
	}
	guard := resilience.New(rdb, resilience.Config{Prefix: prefix, Registerer: prometheus.NewRegistry()})
	w := NewWorker(st, testSender(), guard, Config{Timeout: 5 * time.Second, LeaseMargin: time.Second, Retry: retry.Default(),
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, w.Handle(ctx, queue.Message{DeliveryID: first.ID, EventID: first.EventID, SubscriptionID: first.SubscriptionID}))

	require.Equal(t, []string{"e1 k k", "e2 k k", "e3 k k", "e4 k k"}, received, "in order, one message, until e4 failed")
	keys, err := st.ListOrderingKeys(ctx, store.Unscoped, store.OrderingKeyFilter{SubscriptionID: "sub_o", State: store.KeyBlocked, Limit: 10})
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.Equal(t, "e4", keys[0].Head.EventID)
	require.EqualValues(t, 2, keys[0].Waiting, "e5 and e6 wait behind it")
}
