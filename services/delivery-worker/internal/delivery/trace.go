package delivery

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// instrumentation names the tracer of the delivery path.
const instrumentation = "github.com/dispatch-webhooks/dispatch/services/delivery-worker/internal/delivery"

// tracerOf is tp's tracer for the delivery path; nil means OpenTelemetry's
// global provider, a no-op unless the service turned tracing on.
func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(instrumentation)
}

// Span attributes of a delivery attempt.
const (
	attrEventID        = attribute.Key("dispatch.event_id")
	attrSubscriptionID = attribute.Key("dispatch.subscription_id")
	attrDeliveryID     = attribute.Key("dispatch.delivery_id")
	attrAttempt        = attribute.Key("dispatch.attempt")
	attrErrorClass     = attribute.Key("dispatch.error_class")
	attrStatus         = attribute.Key("dispatch.delivery_status")
)

// jobAttrs name a claimed delivery on its attempt span.
func jobAttrs(job store.Job) []attribute.KeyValue {
	return []attribute.KeyValue{
		attrEventID.String(job.Event.ID),
		attrSubscriptionID.String(job.SubscriptionID),
		attrDeliveryID.Int64(job.DeliveryID),
		attrAttempt.Int(job.Attempt),
	}
}

// endSpan describes an attempt's outcome on a span: the receiver's status
// code, and the error class and message when it was not a 2xx.
func endSpan(span trace.Span, a domain.Attempt) {
	if a.StatusCode != nil {
		span.SetAttributes(semconv.HTTPResponseStatusCode(*a.StatusCode))
	}
	if a.ErrorClass != domain.ErrorNone {
		span.SetAttributes(attrErrorClass.String(string(a.ErrorClass)), semconv.ErrorTypeKey.String(string(a.ErrorClass)))
		span.SetStatus(codes.Error, a.Error)
	}
}
