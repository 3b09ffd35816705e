package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// TestTraceTravelsInRecordHeaders: the producer puts the publishing span's
// context in the record's traceparent header and the consumer runs the
// handler in a span of the same trace, the publishing span's child.
func TestTraceTravelsInRecordHeaders(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tracing := queue.Tracing{
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)),
		Propagator:     propagation.TraceContext{},
	}
	cluster := testkit.Kafka(t, 2, topic)
	brokers := cluster.ListenAddrs()

	p, err := queue.NewProducer(queue.ProducerConfig{Brokers: brokers, Topic: topic, Tracing: tracing})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx, root := tracing.TracerProvider.Tracer("test").Start(ctx, "create-event")
	p.Publish(ctx, queue.Message{DeliveryID: 1, EventID: "evt_1", SubscriptionID: "sub"})
	require.NoError(t, p.PublishSync(ctx, queue.Message{DeliveryID: 2, EventID: "evt_2", SubscriptionID: "sub"}))
	root.End()
	require.NoError(t, p.Close(ctx))

	// The records carry traceparent of the root's trace.
	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer raw.Close()
	var recs []*kgo.Record
	for len(recs) < 2 {
		fetches := raw.PollFetches(ctx)
		require.NoError(t, fetches.Err())
		recs = append(recs, fetches.Records()...)
	}
	for _, r := range recs {
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), headerCarrier(r.Headers)))
		require.True(t, sc.IsValid(), "record %s has a traceparent", r.Key)
		require.Equal(t, root.SpanContext().TraceID(), sc.TraceID())
	}

	handled := make(chan trace.SpanContext, 2)
	c, err := queue.NewConsumer(queue.ConsumerConfig{Brokers: brokers, Topics: []string{topic}, Group: "g", Tracing: tracing})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, func(ctx context.Context, _ queue.Message) error {
			handled <- trace.SpanContextFromContext(ctx)
			return nil
		})
	}()
	for range 2 {
		select {
		case sc := <-handled:
			require.Equal(t, root.SpanContext().TraceID(), sc.TraceID(), "the handler runs in the publisher's trace")
		case <-ctx.Done():
			t.Fatal("messages not handled")
		}
	}
	stop()
	require.NoError(t, <-done)

	byName := map[string][]sdktrace.ReadOnlySpan{}
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		byName[s.Name()] = append(byName[s.Name()], s)
		byID[s.SpanContext().SpanID()] = s
	}
	require.Len(t, byName[topic+" publish"], 2)
	require.Len(t, byName[topic+" process"], 2)
	for _, s := range byName[topic+" process"] {
		require.Equal(t, trace.SpanKindConsumer, s.SpanKind())
		parent := byID[s.Parent().SpanID()]
		require.NotNil(t, parent, "the process span's parent was recorded")
		require.Equal(t, topic+" publish", parent.Name())
		require.Equal(t, trace.SpanKindProducer, parent.SpanKind())
		require.Equal(t, root.SpanContext().SpanID(), parent.Parent().SpanID(), "published within create-event")
	}
}

// TestMessagePublishedInItsStoredTrace: a message published without a
// span in its context (the retry scheduler's) but with a TraceParent is
// published in that trace, as the child of the span it names; a span in
// the context wins, and a message without either starts a trace of its
// own.
func TestMessagePublishedInItsStoredTrace(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tracing := queue.Tracing{
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)),
		Propagator:     propagation.TraceContext{},
	}
	p, err := queue.NewProducer(queue.ProducerConfig{Brokers: testkit.Kafka(t, 1, topic).ListenAddrs(), Topic: topic, Tracing: tracing})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const stored = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	require.NoError(t, p.PublishSync(ctx,
		queue.Message{DeliveryID: 1, EventID: "retried", SubscriptionID: "sub", TraceParent: stored},
		queue.Message{DeliveryID: 2, EventID: "untraced", SubscriptionID: "sub"}))
	inSpan, root := tracing.TracerProvider.Tracer("test").Start(ctx, "redeliver")
	require.NoError(t, p.PublishSync(inSpan, queue.Message{DeliveryID: 3, EventID: "in-span", SubscriptionID: "sub", TraceParent: stored}))
	root.End()
	require.NoError(t, p.Close(ctx))

	parents := map[string]trace.SpanContext{}
	traces := map[string]trace.TraceID{}
	for _, s := range spans.Ended() {
		if s.Name() != topic+" publish" {
			continue
		}
		for _, a := range s.Attributes() {
			if a.Key == "dispatch.event_id" {
				parents[a.Value.AsString()], traces[a.Value.AsString()] = s.Parent(), s.SpanContext().TraceID()
			}
		}
	}
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", traces["retried"].String(), "published in the stored trace")
	require.Equal(t, "b7ad6b7169203331", parents["retried"].SpanID().String(), "as the child of the stored span")
	require.True(t, parents["retried"].IsRemote())
	require.False(t, parents["untraced"].IsValid(), "without one, a trace of its own")
	require.Equal(t, root.SpanContext().TraceID(), traces["in-span"], "a span in the context wins")
}

// TestNoTraceHeadersWithoutTracing: with OpenTelemetry's defaults (tracing
// off), records carry no headers at all.
func TestNoTraceHeadersWithoutTracing(t *testing.T) {
	t.Parallel()
	cluster := testkit.Kafka(t, 1, topic)
	brokers := cluster.ListenAddrs()
	p, err := queue.NewProducer(queue.ProducerConfig{Brokers: brokers, Topic: topic})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.PublishSync(ctx, queue.Message{DeliveryID: 1, EventID: "evt_1", SubscriptionID: "sub"}))
	require.NoError(t, p.Close(ctx))

	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer raw.Close()
	fetches := raw.PollFetches(ctx)
	require.NoError(t, fetches.Err())
	require.Len(t, fetches.Records(), 1)
	require.Empty(t, fetches.Records()[0].Headers)
}

// headerCarrier reads record headers for a propagator.
type headerCarrier []kgo.RecordHeader

func (h headerCarrier) Get(key string) string {
	for _, hd := range h {
		if hd.Key == key {
			return string(hd.Value)
		}
	}
	return ""
}

func (h headerCarrier) Set(string, string) {}

func (h headerCarrier) Keys() []string {
	keys := make([]string, len(h))
	for i, hd := range h {
		keys[i] = hd.Key
	}
	return keys
}
