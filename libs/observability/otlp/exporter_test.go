package otlp_test

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/observability/otlp"
)

// collector is an OTLP/HTTP endpoint that keeps each request it decodes
// and answers with the statuses it is given, then 200.
type collector struct {
	*httptest.Server
	requests chan *coltracepb.ExportTraceServiceRequest
	headers  chan http.Header
	answers  chan func(http.ResponseWriter)
	posts    atomic.Int32
}

func newCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{
		requests: make(chan *coltracepb.ExportTraceServiceRequest, 16),
		headers:  make(chan http.Header, 16),
		answers:  make(chan func(http.ResponseWriter), 16),
	}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.posts.Add(1)
		select {
		case answer := <-c.answers:
			answer(w)
			return
		default:
		}
		body := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.headers <- r.Header.Clone()
		c.requests <- &req
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(c.Close)
	return c
}

// spans records spans that use every part of the OTLP span: each kind of
// attribute value, events, links, statuses, a remote parent, a trace
// state, two instrumentation scopes and a resource with a schema URL.
func spans(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	res, err := resource.Merge(resource.Empty(), resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
		attribute.String("service.name", "delivery-worker"), attribute.Int("service.instance", 3)))
	require.NoError(t, err)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(res))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	ts, err := trace.ParseTraceState("vendor=value,other=1")
	require.NoError(t, err)
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:  trace.SpanID{8, 7, 6, 5, 4, 3, 2, 1}, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
	start := time.Date(2026, 12, 8, 1, 2, 3, 456789, time.UTC)

	api := tp.Tracer("dispatch/api", trace.WithInstrumentationVersion("1.2.3"), trace.WithSchemaURL("https://opentelemetry.io/schemas/1.26.0"),
		trace.WithInstrumentationAttributes(attribute.Bool("scope.flag", true)))
	ctx, server := api.Start(ctx, "POST /events", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
		trace.WithAttributes(
			attribute.String("http.route", "/events"), attribute.String("empty", ""),
			attribute.Int64("n", -42), attribute.Int64("zero", 0), attribute.Float64("ratio", 0.25),
			attribute.Bool("ok", false), attribute.BoolSlice("bools", []bool{true, false}),
			attribute.Int64Slice("ints", []int64{1, -2}), attribute.Float64Slice("floats", []float64{1.5}),
			attribute.StringSlice("strings", []string{"a", ""}),
		))
	server.AddEvent("accepted", trace.WithTimestamp(start.Add(time.Millisecond)), trace.WithAttributes(attribute.Int("count", 100)))
	server.AddLink(trace.Link{SpanContext: remote, Attributes: []attribute.KeyValue{attribute.String("why", "batch")}})
	server.SetStatus(codes.Ok, "")

	worker := tp.Tracer("dispatch/worker")
	_, client := worker.Start(ctx, "deliver", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start.Add(2*time.Millisecond)))
	client.SetStatus(codes.Error, "502 from the destination")
	client.End(trace.WithTimestamp(start.Add(300 * time.Millisecond)))
	_, producer := worker.Start(ctx, "publish", trace.WithSpanKind(trace.SpanKindProducer))
	producer.End()
	_, internal := api.Start(ctx, "validate")
	internal.End()
	server.End(trace.WithTimestamp(start.Add(time.Second)))

	_, unnamed := tp.Tracer("").Start(context.Background(), "background", trace.WithSpanKind(trace.SpanKindConsumer))
	unnamed.End()
	ended := rec.Ended()
	require.Len(t, ended, 5)
	return ended
}

// TestEncodingMatchesOpenTelemetrysExporter: the same spans, exported by
// this package and by OpenTelemetry's OTLP/HTTP exporter, reach a
// collector as the same ExportTraceServiceRequest.
func TestEncodingMatchesOpenTelemetrysExporter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	recorded := spans(t)

	theirs := newCollector(t)
	reference, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(theirs.URL+"/v1/traces"))
	require.NoError(t, err)
	require.NoError(t, reference.ExportSpans(ctx, recorded))
	require.NoError(t, reference.Shutdown(ctx))

	ours := newCollector(t)
	cfg, err := otlp.ConfigFromEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ours.URL}))
	require.NoError(t, err)
	exp := otlp.New(cfg)
	require.NoError(t, exp.ExportSpans(ctx, recorded))

	want, got := <-theirs.requests, <-ours.requests
	require.Len(t, got.ResourceSpans, 1)
	require.Len(t, got.ResourceSpans[0].ScopeSpans, 3)
	// OpenTelemetry's exporter leaves out a link's trace state, which OTLP
	// has a field for; this one sends it.
	link := got.ResourceSpans[0].ScopeSpans[1].Spans[1].Links[0]
	require.Equal(t, "vendor=value,other=1", link.TraceState)
	link.TraceState = ""
	require.True(t, proto.Equal(want, got), "ours:\n%v\ntheirs:\n%v", got, want)
	require.Equal(t, "application/x-protobuf", (<-ours.headers).Get("Content-Type"))
}

func TestExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	recorded := spans(t)

	t.Run("gzip and headers", func(t *testing.T) {
		t.Parallel()
		c := newCollector(t)
		cfg, err := otlp.ConfigFromEnv(env(map[string]string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": c.URL + "/v1/traces",
			"OTEL_EXPORTER_OTLP_COMPRESSION":     "gzip",
			"OTEL_EXPORTER_OTLP_HEADERS":         "authorization=Bearer%20abc, x-scope-orgid = tenant-1",
		}))
		require.NoError(t, err)
		require.NoError(t, otlp.New(cfg).ExportSpans(ctx, recorded))
		req, h := <-c.requests, <-c.headers
		var n int
		for _, ss := range req.ResourceSpans[0].ScopeSpans {
			n += len(ss.Spans)
		}
		require.Equal(t, len(recorded), n)
		require.Equal(t, "gzip", h.Get("Content-Encoding"))
		require.Equal(t, "Bearer abc", h.Get("Authorization"))
		require.Equal(t, "tenant-1", h.Get("X-Scope-Orgid"))
	})

	t.Run("retries what the collector cannot take now", func(t *testing.T) {
		t.Parallel()
		c := newCollector(t)
		c.answers <- func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }
		c.answers <- func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		}
		fake := clock.NewFake(time.Now())
		exp := otlp.New(otlp.Config{URL: c.URL, Timeout: 5 * time.Second, Clock: fake})
		done := make(chan error, 1)
		go func() { done <- exp.ExportSpans(ctx, recorded) }()
		require.NoError(t, fake.BlockUntilWaiting(ctx, 1))
		fake.Advance(5 * time.Second) // the first wait
		require.NoError(t, fake.BlockUntilWaiting(ctx, 1))
		fake.Advance(6 * time.Second)
		select {
		case err := <-done:
			t.Fatalf("exported before the collector's Retry-After: %v", err)
		default:
		}
		fake.Advance(time.Second) // Retry-After: 7
		require.NoError(t, <-done)
		require.Len(t, (<-c.requests).ResourceSpans, 1)
		require.Equal(t, int32(3), c.posts.Load())
	})

	t.Run("a request the collector refuses is not sent again", func(t *testing.T) {
		t.Parallel()
		c := newCollector(t)
		c.answers <- func(w http.ResponseWriter) { http.Error(w, "bad trace", http.StatusBadRequest) }
		err := otlp.New(otlp.Config{URL: c.URL, Timeout: 5 * time.Second}).ExportSpans(ctx, recorded)
		require.ErrorContains(t, err, "400 Bad Request")
		require.ErrorContains(t, err, "bad trace")
		require.Equal(t, int32(1), c.posts.Load())
	})

	t.Run("gives up when the export's time is up", func(t *testing.T) {
		t.Parallel()
		c := newCollector(t)
		c.answers <- func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) }
		fake := clock.NewFake(time.Now())
		exp := otlp.New(otlp.Config{URL: c.URL, Timeout: 5 * time.Second, Clock: fake})
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- exp.ExportSpans(ctx, recorded) }()
		require.NoError(t, fake.BlockUntilWaiting(context.Background(), 1))
		cancel()
		err := <-done
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "502 Bad Gateway")
	})

	t.Run("a collector that is down", func(t *testing.T) {
		t.Parallel()
		c := newCollector(t)
		c.Close()
		fake := clock.NewFake(time.Now())
		exp := otlp.New(otlp.Config{URL: c.URL, Timeout: 5 * time.Second, Clock: fake})
		done := make(chan error, 1)
		go func() { done <- exp.ExportSpans(ctx, recorded) }()
		for _, wait := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second} {
			require.NoError(t, fake.BlockUntilWaiting(ctx, 1))
			fake.Advance(wait)
		}
		err := <-done // a fourth wait, 30 s, would end past the minute
		require.ErrorContains(t, err, "gave up")
		require.ErrorContains(t, err, "connection refused")
	})

	t.Run("after shutdown", func(t *testing.T) {
		t.Parallel()
		c := newCollector(t)
		exp := otlp.New(otlp.Config{URL: c.URL, Timeout: 5 * time.Second})
		require.NoError(t, exp.Shutdown(ctx))
		require.ErrorIs(t, exp.ExportSpans(ctx, recorded), otlp.ErrStopped)
		require.Zero(t, c.posts.Load())
	})
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		url  string
		err  string
	}{
		{name: "default", url: otlp.DefaultURL},
		{name: "base endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}, url: "http://jaeger:4318/v1/traces"},
		{name: "base endpoint with a path", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example/prefix/"}, url: "https://otel.example/prefix/v1/traces"},
		{name: "traces endpoint as it is", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom"}, url: "http://c:4318/custom"},
		{name: "traces endpoint without a path", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318"}, url: "http://c:4318/"},
		{name: "traces endpoint wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/v1/traces"}, url: "http://b:4318/v1/traces"},
		{name: "grpc endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "jaeger:4317"}, err: "OTEL_EXPORTER_OTLP_ENDPOINT=jaeger:4317"},
		{name: "bad header", env: map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1,novalue"}, err: "OTEL_EXPORTER_OTLP_HEADERS"},
		{name: "bad escape", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "a=%zz"}, err: "OTEL_EXPORTER_OTLP_TRACES_HEADERS"},
		{name: "bad timeout", env: map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, err: "OTEL_EXPORTER_OTLP_TIMEOUT=10s"},
		{name: "bad compression", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd"}, err: "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=zstd"},
		{name: "missing certificate", env: map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent.pem"}, err: "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{name: "client key alone", env: map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_KEY": "/k.pem"}, err: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := otlp.ConfigFromEnv(env(tc.env))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.url, cfg.URL)
			require.Equal(t, 10*time.Second, cfg.Timeout)
		})
	}

	cfg, err := otlp.ConfigFromEnv(env(map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "500"}))
	require.NoError(t, err)
	require.Equal(t, 500*time.Millisecond, cfg.Timeout, "the traces-specific variable wins")
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var _ sdktrace.SpanExporter = (*otlp.Exporter)(nil)
