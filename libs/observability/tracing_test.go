package observability_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch-webhooks/dispatch/libs/observability"
)

func TestTracingEnabled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		on   bool
		err  string
	}{
		{name: "nothing set", env: nil},
		{name: "exporter otlp", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}, on: true},
		{name: "traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://jaeger:4318/v1/traces"}, on: true},
		{name: "none wins over an endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}},
		{name: "service name alone", env: map[string]string{"OTEL_SERVICE_NAME": "api"}},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: "OTEL_TRACES_EXPORTER=zipkin"},
		{name: "grpc", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, err: "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"},
		{name: "traces protocol wins", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, on: true},
		{name: "grpc while off is ignored", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			on, err := observability.TracingEnabled(func(k string) string { return tc.env[k] })
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.on, on)
		})
	}
}

// TestTracingOffByDefault: nothing set leaves OpenTelemetry's no-ops in
// place and handlers unwrapped. It runs before
// TestTracingExportsOverOTLP, which turns tracing on for the process.
func TestTracingOffByDefault(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Setenv(k, "")
	}
	shutdown, err := observability.Tracing(context.Background(), "test-service", "v1")
	require.NoError(t, err)
	require.NoError(t, shutdown(context.Background()))
	require.False(t, observability.TracingOn())
	_, sdk := otel.GetTracerProvider().(*sdktrace.TracerProvider)
	require.False(t, sdk)
	h := http.NewServeMux()
	require.Same(t, h, observability.TraceHTTP(h, "test"))
}

// TestTracingExportsOverOTLP: with an endpoint set, spans reach it over
// OTLP/HTTP by the time shutdown returns. It sets the process's global
// tracer provider, so it is the only test here that calls Tracing.
func TestTracingExportsOverOTLP(t *testing.T) {
	var posts atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			_, _ = io.Copy(io.Discard, r.Body)
			posts.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(collector.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)

	require.False(t, observability.TracingOn())
	shutdown, err := observability.Tracing(context.Background(), "test-service", "v1")
	require.NoError(t, err)
	require.True(t, observability.TracingOn())
	_, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider)
	require.True(t, ok, "the SDK's provider is installed")

	// The server span of a traced handler continues the caller's trace.
	var traced bool
	h := observability.TraceHTTP(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		traced = otelSpanValid(r.Context())
	}), "test")
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/events", nil))
	require.True(t, traced)

	require.NoError(t, shutdown(context.Background()))
	require.Positive(t, posts.Load(), "the batch was flushed to the collector on shutdown")
}

func otelSpanValid(ctx context.Context) bool { return trace.SpanContextFromContext(ctx).IsValid() }
