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
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

func recorder() (*tracetest.SpanRecorder, trace.TracerProvider) {
	spans := tracetest.NewSpanRecorder()
	return spans, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
}

// TestSendTraceparent: DELIVERY_TRACEPARENT sends the POST's span context
// to the receiver; without it, or without tracing, no trace header leaves.
func TestSendTraceparent(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got <- r.Header }))
	t.Cleanup(srv.Close)
	secret := signing.GenerateSecret()

	for _, tc := range []struct {
		name        string
		traced      bool
		traceparent bool
	}{
		{name: "traced, setting on", traced: true, traceparent: true},
		{name: "traced, setting off", traced: true},
		{name: "not traced, setting on", traceparent: true},
	} {
		spans, tp := recorder()
		cfg := SenderConfig{Version: "test", Policy: loopback, Traceparent: tc.traceparent}
		if tc.traced {
			cfg.TracerProvider = tp
		}
		// Without tracing, nothing upstream started a span either.
		ctx, parent := context.Background(), trace.SpanFromContext(context.Background())
		if tc.traced {
			ctx, parent = tp.Tracer("test").Start(ctx, "delivery attempt")
		}
		a := NewSender(cfg).Send(ctx, job(srv.URL, secret), 5*time.Second, Turn{}).Attempt
		parent.End()
		require.True(t, a.Succeeded(), "%s: %+v", tc.name, a)
		h := <-got
		if !tc.traced || !tc.traceparent {
			require.Empty(t, h.Get("traceparent"), tc.name)
			continue
		}
		post := spanNamed(t, spans, "POST")
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(h)))
		require.Equal(t, post.SpanContext().TraceID(), sc.TraceID(), tc.name)
		require.Equal(t, post.SpanContext().SpanID(), sc.SpanID(), "the receiver's parent is the POST span")
		require.Equal(t, parent.SpanContext().SpanID(), post.Parent().SpanID())
		require.Equal(t, trace.SpanKindClient, post.SpanKind())
		require.Empty(t, h.Get("baggage"), "baggage stays inside")
	}
}

// TestOneTraceFromIngestToAttempt follows one event with real parts: a span
// started as the API's create-event is, the event stored in PostgreSQL,
// its delivery published through libs/queue to Kafka (kfake), consumed by
// libs/queue's consumer into Worker.Handle with Redis limits, and POSTed to
// a local receiver. The attempt is one trace with the ingest: attempt ←
// process ← publish ← create-event, and the POST is the attempt's child.
func TestOneTraceFromIngestToAttempt(t *testing.T) {
	t.Parallel()
	spans, tp := recorder()
	tracing := queue.Tracing{TracerProvider: tp, Propagator: propagation.TraceContext{}}
	received := make(chan http.Header, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { received <- r.Header }))
	t.Cleanup(receiver.Close)

	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := st.CreateSubscription(ctx, domain.Subscription{ID: "sub_traced", URL: receiver.URL + "/hook", EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
	require.NoError(t, err)
	const topic = "events.pending"
	cluster := testkit.Kafka(t, 2, topic)
	brokers := cluster.ListenAddrs()

	// The ingest: store, then publish within the request's span.
	producer, err := queue.NewProducer(queue.ProducerConfig{Brokers: brokers, Topic: topic, Tracing: tracing})
	require.NoError(t, err)
	ingestCtx, ingest := tp.Tracer("ingest").Start(ctx, "create-event")
	res, err := st.IngestEvent(ingestCtx, domain.Event{ID: "evt_traced", Type: "order.created", Data: []byte(`{}`)})
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 1)
	d := res.Deliveries[0]
	producer.Publish(ingestCtx, queue.Message{DeliveryID: d.ID, EventID: d.EventID, SubscriptionID: d.SubscriptionID})
	ingest.End()
	require.NoError(t, producer.Close(ctx))

	// The worker.
	rdb, prefix := testkit.Redis(t)
	w := NewWorker(st, NewSender(SenderConfig{Version: "test", Policy: loopback, Traceparent: true, TracerProvider: tp}),
		resilience.New(rdb, resilience.Config{Prefix: prefix, Registerer: prometheus.NewRegistry()}),
		Config{Timeout: 5 * time.Second, LeaseMargin: 5 * time.Second, Registerer: prometheus.NewRegistry(),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), TracerProvider: tp})
	consumer, err := queue.NewConsumer(queue.ConsumerConfig{Brokers: brokers, Topics: []string{topic}, Group: "workers", Tracing: tracing,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consumer.Run(runCtx, w.Handle) }()

	var h http.Header
	select {
	case h = <-received:
	case <-ctx.Done():
		t.Fatal("the receiver got nothing")
	}
	var attempt sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		for _, s := range spans.Ended() {
			// A request that missed its turn (a stalled machine can make it)
			// ends an attempt span of its own without being sent; the
			// delivery then asks for a new turn. The span looked for is the
			// one that was sent.
			if s.Name() == "delivery attempt" && s.Status().Description != missedTurn {
				attempt = s
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the attempt span ends once the attempt is recorded")
	stop()
	require.NoError(t, <-done)

	traceID := ingest.SpanContext().TraceID()
	require.Equal(t, traceID, attempt.SpanContext().TraceID(), "the attempt is in the ingest's trace")
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		byID[s.SpanContext().SpanID()] = s
	}
	chain := []string{attempt.Name()}
	for s := attempt; s.Parent().IsValid(); {
		parent, ok := byID[s.Parent().SpanID()]
		require.True(t, ok, "the parent of %q was recorded", s.Name())
		require.Equal(t, traceID, parent.SpanContext().TraceID())
		chain = append(chain, parent.Name())
		s = parent
	}
	require.Equal(t, []string{"delivery attempt", topic + " process", topic + " publish", "create-event"}, chain)

	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range attempt.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	require.Equal(t, "evt_traced", attrs["dispatch.event_id"].AsString())
	require.Equal(t, "sub_traced", attrs["dispatch.subscription_id"].AsString())
	require.Equal(t, int64(1), attrs["dispatch.attempt"].AsInt64())
	require.Equal(t, int64(http.StatusOK), attrs["http.response.status_code"].AsInt64())
	require.Equal(t, "delivered", attrs["dispatch.delivery_status"].AsString())
	require.NotContains(t, attrs, attribute.Key("dispatch.error_class"))

	// The POST looked for is the sent attempt's child: a request that
	// missed its turn has a POST span of its own under its own attempt span.
	var post sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "POST" && s.Parent().SpanID() == attempt.SpanContext().SpanID() {
			post = s
		}
	}
	require.NotNil(t, post, "the POST is the attempt's child")
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(h)))
	require.Equal(t, traceID, sc.TraceID(), "the receiver got the trace (DELIVERY_TRACEPARENT)")
	require.Equal(t, post.SpanContext().SpanID(), sc.SpanID())
}

// TestAttemptSpanDescribesFailure: a 503 is an error span with its status
// code and error class.
func TestAttemptSpanDescribesFailure(t *testing.T) {
	t.Parallel()
	spans, tp := recorder()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	t.Cleanup(srv.Close)
	a := NewSender(SenderConfig{Version: "test", Policy: loopback, TracerProvider: tp}).Send(context.Background(), job(srv.URL, signing.GenerateSecret()), 5*time.Second, Turn{}).Attempt
	require.False(t, a.Succeeded())
	post := spanNamed(t, spans, "POST")
	require.Equal(t, "Error", post.Status().Code.String())
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range post.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	require.Equal(t, int64(503), attrs["http.response.status_code"].AsInt64())
	require.Equal(t, "http_status", attrs["dispatch.error_class"].AsString())
	require.Equal(t, "127.0.0.1", attrs["server.address"].AsString())
	require.NotContains(t, attrs, attribute.Key("url.full"), "the URL may hold the receiver's tokens")
}

func spanNamed(t *testing.T, spans *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range spans.Ended() {
		if s.Name() == name {
			return s
		}
	}
	t.Fatalf("no span %q among %d", name, len(spans.Ended()))
	return nil
}
