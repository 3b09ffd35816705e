package queue

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// instrumentation names the tracer of this package.
const instrumentation = "github.com/dispatch-webhooks/dispatch/libs/queue"

// Tracing is how producers and consumers trace messages: a producer span
// per message whose context travels in the record's headers (W3C Trace
// Context: traceparent, tracestate), and a consumer span per message that
// continues that trace around the handler. The zero value uses
// OpenTelemetry's global tracer provider and propagator, which are no-ops
// (no spans, no headers) until a service turns tracing on.
type Tracing struct {
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

// tracer is Tracing with its defaults filled in.
type tracer struct {
	trace.Tracer
	propagator propagation.TextMapPropagator
}

func (t Tracing) tracer() tracer {
	tp, prop := t.TracerProvider, t.Propagator
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if prop == nil {
		prop = otel.GetTextMapPropagator()
	}
	return tracer{Tracer: tp.Tracer(instrumentation), propagator: prop}
}

// messageAttrs describe a message on its spans.
func messageAttrs(m Message) []attribute.KeyValue {
	return []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingKafkaMessageKey(m.EventID),
		attribute.Int64("dispatch.delivery_id", m.DeliveryID),
		attribute.String("dispatch.event_id", m.EventID),
		attribute.String("dispatch.subscription_id", m.SubscriptionID),
	}
}

// startPublish starts the producer span of m, in the trace of ctx or else
// of m.TraceParent, and returns m's record with the span's context in its
// headers. end finishes the span with the
// outcome of the produce.
func (t tracer) startPublish(ctx context.Context, topic string, m Message) (rec *kgo.Record, end func(*kgo.Record, error)) {
	if m.TraceParent != "" && !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = t.propagator.Extract(ctx, propagation.MapCarrier{"traceparent": m.TraceParent})
	}
	ctx, span := t.Start(ctx, topic+" publish", trace.WithSpanKind(trace.SpanKindProducer))
	rec = m.record()
	if !span.IsRecording() {
		// Tracing is off (or this trace is not sampled): nothing to
		// describe, and only a sampled-out parent's context to pass on.
		t.propagator.Inject(ctx, headers{rec})
		return rec, func(*kgo.Record, error) { span.End() }
	}
	span.SetAttributes(append(messageAttrs(m), semconv.MessagingOperationTypeSend, semconv.MessagingDestinationName(topic))...)
	t.propagator.Inject(ctx, headers{rec})
	return rec, func(r *kgo.Record, err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		} else if r != nil {
			span.SetAttributes(semconv.MessagingDestinationPartitionID(strconv.Itoa(int(r.Partition))), semconv.MessagingKafkaOffset(int(r.Offset)))
		}
		span.End()
	}
}

// startProcess continues the trace in r's headers with the consumer span
// of m, in which the handler runs.
func (t tracer) startProcess(ctx context.Context, r *kgo.Record, m Message, group string) (context.Context, trace.Span) {
	if len(r.Headers) > 0 {
		ctx = t.propagator.Extract(ctx, headers{r})
	}
	ctx, span := t.Start(ctx, r.Topic+" process", trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(append(messageAttrs(m), semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(r.Topic), semconv.MessagingConsumerGroupName(group),
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(r.Partition))), semconv.MessagingKafkaOffset(int(r.Offset)))...)
	}
	return ctx, span
}

// headers carries trace context in a record's headers.
type headers struct{ r *kgo.Record }

var _ propagation.TextMapCarrier = headers{}

// Get returns the value of the first header named key.
func (h headers) Get(key string) string {
	for _, hd := range h.r.Headers {
		if hd.Key == key {
			return string(hd.Value)
		}
	}
	return ""
}

// Set replaces the headers named key with one of value.
func (h headers) Set(key, value string) {
	kept := h.r.Headers[:0]
	for _, hd := range h.r.Headers {
		if hd.Key != key {
			kept = append(kept, hd)
		}
	}
	h.r.Headers = append(kept, kgo.RecordHeader{Key: key, Value: []byte(value)}) //nolint:gocritic // appendAssign: kept is h.r.Headers filtered in place
}

// Keys lists the header names.
func (h headers) Keys() []string {
	keys := make([]string, len(h.r.Headers))
	for i, hd := range h.r.Headers {
		keys[i] = hd.Key
	}
	return keys
}
