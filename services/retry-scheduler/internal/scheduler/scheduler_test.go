package scheduler_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/scheduler"
)

const topic = "events.pending"

func seed(t *testing.T, st *store.Store, db *testkit.Database, n int) {
	t.Helper()
	ctx := context.Background()
	_, err := st.CreateSubscription(ctx, domain.Subscription{ID: "s", URL: "http://127.0.0.1:1/", EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
	require.NoError(t, err)
	for i := range n {
		_, err := st.IngestEvent(ctx, domain.Event{ID: "e" + time.Now().Format("150405.000000000") + string(rune('a'+i%26)), Type: "t", Data: []byte("{}")})
		require.NoError(t, err)
	}
	// As if every ingest publish had failed.
	_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET enqueued_at = '-infinity'`)
	require.NoError(t, err)
}

func TestPassPublishesEveryDueDeliveryInBatches(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	seed(t, st, db, 25)
	cluster := testkit.Kafka(t, 2, topic)
	producer, err := queue.NewProducer(queue.ProducerConfig{Brokers: cluster.ListenAddrs(), Topic: topic})
	require.NoError(t, err)
	t.Cleanup(func() { _ = producer.Close(context.Background()) })
	reg := prometheus.NewRegistry()
	s := scheduler.New(st, producer, scheduler.Config{BatchSize: 10, StrandedAfter: time.Hour, Registerer: reg})

	require.NoError(t, s.Pass(context.Background()))

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	seen := map[int64]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(seen) < 25 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			m, err := queue.Decode(r.Value)
			require.NoError(t, err)
			seen[m.DeliveryID] = true
		})
	}
	require.Len(t, seen, 25)
	require.Equal(t, 25.0, published(t, reg))

	require.NoError(t, s.Pass(context.Background()))
	require.Equal(t, 25.0, published(t, reg), "nothing is published twice while fresh")
}

func TestFailedPublishIsRetriedNextPass(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	seed(t, st, db, 3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close()) // no broker there
	producer, err := queue.NewProducer(queue.ProducerConfig{Brokers: []string{dead}, Topic: topic})
	require.NoError(t, err)
	t.Cleanup(func() { _ = producer.Close(context.Background()) })
	s := scheduler.New(st, producer, scheduler.Config{BatchSize: 10, StrandedAfter: time.Hour, PublishTimeout: 300 * time.Millisecond, Registerer: prometheus.NewRegistry()})

	require.Error(t, s.Pass(context.Background()))
	var unpublished int
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM deliveries WHERE enqueued_at = '-infinity'`).Scan(&unpublished))
	require.Equal(t, 3, unpublished, "claimed but unpublished deliveries are handed back for the next pass")
}

func published(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "dispatch_scheduler_republished_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("dispatch_scheduler_republished_total not registered")
	return 0
}

// memPublisher records what the scheduler publishes and when.
type memPublisher struct{ got chan publication }

type publication struct {
	msg queue.Message
	at  time.Time
}

func (p memPublisher) PublishSync(_ context.Context, msgs ...queue.Message) error {
	for _, m := range msgs {
		p.got <- publication{m, time.Now()}
	}
	return nil
}

// TestRetriesKeepTheirEventsTrace: a republished delivery carries the
// trace context its event was stored with, for the producer to publish it
// in (queue.Message.TraceParent); one whose event had none carries none.
func TestRetriesKeepTheirEventsTrace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	_, err := st.CreateSubscription(ctx, domain.Subscription{ID: "s", URL: "http://127.0.0.1:1/", EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
	require.NoError(t, err)
	const traceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for id, tp := range map[string]string{"traced": traceParent, "untraced": ""} {
		_, err := st.IngestEvent(ctx, domain.Event{ID: id, Type: "t", Data: []byte("{}"), TraceParent: tp})
		require.NoError(t, err)
	}
	_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET enqueued_at = '-infinity'`)
	require.NoError(t, err)
	pub := memPublisher{got: make(chan publication, 2)}
	require.NoError(t, scheduler.New(st, pub, scheduler.Config{BatchSize: 10, StrandedAfter: time.Hour, Registerer: prometheus.NewRegistry()}).Pass(ctx))
	close(pub.got)
	got := map[string]string{}
	for p := range pub.got {
		got[p.msg.EventID] = p.msg.TraceParent
	}
	require.Equal(t, map[string]string{"traced": traceParent, "untraced": ""}, got)
}

// idleStore is the real store, telling on idle when the scheduler learns
// that nothing is waiting, which it does just before it goes to sleep.
type idleStore struct {
	*store.Store
	idle chan struct{}
}

func (s *idleStore) UntilNextDue(ctx context.Context, since time.Duration) (time.Duration, bool, error) {
	wait, ok, err := s.Store.UntilNextDue(ctx, since)
	if err == nil && !ok {
		select {
		case s.idle <- struct{}{}:
		default:
		}
	}
	return wait, ok, err
}

// A retry is republished moments after it comes due, not on the next poll
// ten seconds later: whether it was waiting when the scheduler went to
// sleep, or was scheduled while it slept.
func TestRunWakesForTheNextDueRetry(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	ctx := context.Background()
	_, err := st.CreateSubscription(ctx, domain.Subscription{ID: "s", URL: "http://127.0.0.1:1/", EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
	require.NoError(t, err)
	retryIn := func(id string, d time.Duration) (int64, time.Time) {
		t.Helper()
		res, err := st.IngestEvent(ctx, domain.Event{ID: id, Type: "t", Data: []byte("{}")})
		require.NoError(t, err)
		claims, err := st.ClaimDeliveries(ctx, []int64{res.Deliveries[0].ID}, time.Minute, 0)
		require.NoError(t, err)
		job, err := claims[0].Job, claims[0].Err
		require.NoError(t, err)
		code, due := 500, time.Now().Add(d)
		require.NoError(t, st.RecordAttempt(ctx, store.Retrying(
			domain.Attempt{DeliveryID: job.DeliveryID, Number: job.Attempt, StartedAt: time.Now(), StatusCode: &code, ErrorClass: domain.ErrorHTTPStatus}, due)))
		return job.DeliveryID, due
	}
	pub := memPublisher{got: make(chan publication, 10)}
	idle := &idleStore{Store: st, idle: make(chan struct{}, 1)}
	s := scheduler.New(idle, pub, scheduler.Config{PollInterval: 10 * time.Second, BatchSize: 10, StrandedAfter: time.Hour, Registerer: prometheus.NewRegistry()})

	waiting, due := retryIn("waiting", 300*time.Millisecond)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Run(runCtx) }()
	t.Cleanup(func() { stop(); require.NoError(t, <-done) })

	p := <-pub.got
	require.Equal(t, waiting, p.msg.DeliveryID)
	require.WithinRange(t, p.at, due.Add(-20*time.Millisecond), due.Add(300*time.Millisecond), "woken for the due time it knew of")

	<-idle.idle // the scheduler goes to sleep, knowing of nothing due
	later, due := retryIn("later", 300*time.Millisecond)
	select {
	case p = <-pub.got:
	case <-time.After(3 * time.Second):
		t.Fatal("a retry scheduled while the scheduler slept waited for the poll")
	}
	require.Equal(t, later, p.msg.DeliveryID)
	// It looks for sooner work every second, so at worst about a second late.
	require.WithinRange(t, p.at, due.Add(-20*time.Millisecond), due.Add(1300*time.Millisecond))
}
