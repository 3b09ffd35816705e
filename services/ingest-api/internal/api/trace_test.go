package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch-webhooks/dispatch/libs/queue"
)

// TestCreateEventIsTraced: with tracing on, POST /events makes a
// create-event span, and each delivery's record carries, in its
// traceparent header, the context of a publishing span that is the
// create-event span's child: the worker continues this trace.
func TestCreateEventIsTraced(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	b := newTracedBundle(t, queue.Tracing{TracerProvider: tp, Propagator: propagation.TraceContext{}})
	for _, id := range []string{"sub_a", "sub_b"} {
		r := b.do(t, "POST", "/subscriptions", `{"id":"`+id+`","url":"http://127.0.0.1:9/x","event_types":["order.*"]}`)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
	}
	r := b.do(t, "POST", "/events", `{"id":"evt_traced","type":"order.created","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < 2 {
		fetches := cl.PollRecords(ctx, 10)
		require.NoError(t, fetches.Err())
		recs = append(recs, fetches.Records()...)
	}

	// Publishing spans end when Kafka acknowledges; the records are there, so soon.
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	var create sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		clear(byID)
		for _, s := range spans.Ended() {
			byID[s.SpanContext().SpanID()] = s
			if s.Name() == "create-event" {
				create = s
			}
		}
		return len(byID) == 3
	}, 5*time.Second, 10*time.Millisecond, "create-event and two publishing spans")
	require.NotNil(t, create)
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range create.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	require.Equal(t, "evt_traced", attrs["dispatch.event_id"].AsString())
	require.Equal(t, int64(2), attrs["dispatch.deliveries"].AsInt64())

	for _, rec := range recs {
		var traceparent string
		for _, h := range rec.Headers {
			if h.Key == "traceparent" {
				traceparent = string(h.Value)
			}
		}
		require.NotEmpty(t, traceparent, "record of %s", rec.Value)
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent}))
		require.Equal(t, create.SpanContext().TraceID(), sc.TraceID(), "the record continues the request's trace")
		publish := byID[sc.SpanID()]
		require.NotNil(t, publish, "traceparent names the publishing span")
		require.Equal(t, topic+" publish", publish.Name())
		require.Equal(t, create.SpanContext().SpanID(), publish.Parent().SpanID())
	}

	// The event is stored with create-event's context, which its retries
	// are published in.
	var stored string
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT traceparent FROM events WHERE id = 'evt_traced'`).Scan(&stored))
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": stored}))
	require.Equal(t, create.SpanContext().TraceID(), sc.TraceID())
	require.Equal(t, create.SpanContext().SpanID(), sc.SpanID())
}

// TestEventsStoreTheirTraceOnlyWhenTraced: a batch's events are stored with
// the batch request's trace context; without tracing, with none.
func TestEventsStoreTheirTraceOnlyWhenTraced(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	traced := newTracedBundle(t, queue.Tracing{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)), Propagator: propagation.TraceContext{}})
	untraced := newBundle(t)
	for _, b := range []*bundle{traced, untraced} {
		r := b.do(t, "POST", "/events/batch", `{"events":[{"id":"b1","type":"t","data":{}},{"id":"b2","type":"t","data":{}}]}`)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		r = b.do(t, "POST", "/events", `{"id":"single","type":"t","data":{}}`)
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
	}
	read := func(b *bundle) map[string]string {
		rows, err := b.db.Pool.Query(context.Background(), `SELECT id, coalesce(traceparent, '') FROM events`)
		require.NoError(t, err)
		out := map[string]string{}
		for rows.Next() {
			var id, tp string
			require.NoError(t, rows.Scan(&id, &tp))
			out[id] = tp
		}
		require.NoError(t, rows.Err())
		return out
	}
	require.Equal(t, map[string]string{"b1": "", "b2": "", "single": ""}, read(untraced))
	byName := map[string]trace.SpanContext{}
	for _, s := range spans.Ended() {
		byName[s.Name()] = s.SpanContext()
	}
	got := read(traced)
	for id, span := range map[string]string{"b1": "create-events-batch", "b2": "create-events-batch", "single": "create-event"} {
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": got[id]}))
		require.Equal(t, byName[span].SpanID(), sc.SpanID(), "%s is stored with %s's context", id, span)
	}
}
