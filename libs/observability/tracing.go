package observability

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/dispatch-webhooks/dispatch/libs/observability/otlp"
)

// tracing is true once Tracing has installed an exporting tracer provider.
var tracing atomic.Bool

// Tracing sets up OpenTelemetry tracing for a service from the standard
// OTEL_* environment variables, as every OpenTelemetry SDK reads them, and
// returns the function that flushes and stops it on shutdown.
//
// Tracing is off unless an exporter is asked for: OTEL_TRACES_EXPORTER=otlp,
// or OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set
// (OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true keep it off). Off
// means the global tracer provider and propagator stay OpenTelemetry's
// no-ops: no exporter, no goroutine, no trace headers on Kafka records.
// On, spans go in batches to an OTLP/HTTP endpoint (http/protobuf, default
// http://localhost:4318) through package otlp; OTEL_SERVICE_NAME (default
// service), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and its argument
// (default parentbased_always_on), the OTEL_EXPORTER_OTLP_* endpoint,
// headers, timeout, compression and certificates, and the OTEL_BSP_* batch
// settings apply as the specification says; a value that cannot be used
// fails the start, naming its variable. The propagator is W3C
// Trace Context plus Baggage.
func Tracing(ctx context.Context, service, version string) (shutdown func(context.Context) error, err error) {
	on, err := TracingEnabled(os.Getenv)
	if err != nil || !on {
		return func(context.Context) error { return nil }, err
	}
	// The endpoint, headers, timeout, compression and TLS settings come
	// from the OTEL_EXPORTER_OTLP_* variables.
	cfg, err := otlp.ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	exporter := otlp.New(cfg)
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER, parentbased_always_on by default.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	tracing.Store(true)
	return tp.Shutdown, nil
}

// FlushTracing runs the shutdown function Tracing returned, giving spans
// still buffered up to 5 seconds to reach the collector; a failure is
// logged, as losing spans must not fail a shutdown. It runs after ctx,
// the service's, has ended, so it keeps only ctx's values.
func FlushTracing(ctx context.Context, shutdown func(context.Context) error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		log.Warn("could not flush traces", "err", err)
	}
}

// TracingEnabled reads the OTEL_* variables through getenv and reports
// whether they ask for spans to be exported; an exporter or protocol this
// build does not have is an error naming the variable.
func TracingEnabled(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	on := getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "":
	case "none":
		return false, nil
	case "otlp":
		on = true
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: only otlp and none are supported", exp)
	}
	if !on {
		return false, nil
	}
	// The traces-specific protocol wins over the general one.
	name := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	proto := getenv(name)
	if proto == "" {
		name = "OTEL_EXPORTER_OTLP_PROTOCOL"
		proto = getenv(name)
	}
	if proto != "" && proto != "http/protobuf" {
		return false, fmt.Errorf("%s=%s: only http/protobuf is supported (send OTLP to the collector's HTTP port, 4318)", name, proto)
	}
	return true, nil
}

// TracingOn reports whether Tracing has installed an exporting tracer
// provider in this process.
func TracingOn() bool { return tracing.Load() }

// TraceHTTP wraps an HTTP handler in a server span per request, continuing
// the trace of a caller that sent traceparent. Health checks and scrapes
// are not traced. Wrap the ServeMux itself, so that the span is named
// after the route it matched ("POST /events"). Without tracing, it returns
// h as it is.
func TraceHTTP(h http.Handler, operation string) http.Handler {
	if !TracingOn() {
		return h
	}
	return otelhttp.NewHandler(h, operation,
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return true
		}),
	)
}
