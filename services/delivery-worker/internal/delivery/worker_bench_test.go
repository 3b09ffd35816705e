package delivery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/retry"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// BenchmarkHandle measures the delivery hot path for one queued message:
// claim in PostgreSQL, admission in Redis (rate limit, circuit, semaphore),
// signing, the HTTP POST to a local receiver, and the attempt and status
// written back. 32 messages are in flight at once, grouped as in a worker.
func BenchmarkHandle(b *testing.B) {
	db := testkit.Postgres(b)
	ctx := context.Background()
	pool, err := store.Connect(ctx, db.URL, 30, store.AsynchronousCommit(), store.KeyedReads()) // as the worker connects
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	st := store.New(pool)
	rdb, prefix := testkit.Redis(b)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	b.Cleanup(receiver.Close)
	if _, err := st.CreateSubscription(ctx, domain.Subscription{ID: "s", URL: receiver.URL, EventTypes: []string{"*"}, Secret: signing.GenerateSecret(),
		Settings: domain.DeliverySettings{RatePerSecond: 100000, MaxConcurrency: 1000}}); err != nil {
		b.Fatal(err)
	}
	msgs := make([]queue.Message, b.N)
	for i := range b.N {
		res, err := st.IngestEvent(ctx, domain.Event{ID: fmt.Sprintf("e%d", i), Type: "t", Data: []byte(`{"order_id":42,"total":"12.50"}`)})
		if err != nil {
			b.Fatal(err)
		}
		d := res.Deliveries[0]
		msgs[i] = queue.Message{DeliveryID: d.ID, EventID: d.EventID, SubscriptionID: d.SubscriptionID}
	}
	guard := resilience.New(rdb, resilience.Config{Prefix: prefix, Registerer: prometheus.NewRegistry()})
	w := NewWorker(st, NewSender(SenderConfig{Version: "bench", Policy: loopback}), guard, Config{
		Timeout: 5 * time.Second, LeaseMargin: 30 * time.Second, Retry: retry.Default(), Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := w.Handle(ctx, msgs[next.Add(1)-1]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	var delivered int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE status = 'delivered'`).Scan(&delivered); err != nil {
		b.Fatal(err)
	}
	if delivered != b.N {
		b.Fatalf("%d of %d delivered", delivered, b.N)
	}
}
