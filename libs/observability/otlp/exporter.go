// Package otlp exports spans to an OpenTelemetry collector over OTLP/HTTP
// with protobuf bodies (http/protobuf), configured by the standard
// OTEL_EXPORTER_OTLP_* variables.
//
// It stands in for OpenTelemetry's own OTLP/HTTP exporter, whose generated
// OTLP types come with the collector's gRPC service and link gRPC and its
// gateway into every service that traces (13 MB of the worker's 34 MB
// binary); a trace export needs only a handful of messages, encoded here
// (ADR 44). Its output is checked against that exporter's in the tests.
package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
)

// Config is where and how spans are sent.
type Config struct {
	// URL receives the export requests.
	URL string
	// Headers go with every request (authentication, tenancy).
	Headers http.Header
	// Gzip compresses the bodies.
	Gzip bool
	// Timeout bounds each request.
	Timeout time.Duration
	// TLS is the client's TLS configuration for an https URL, nil for the
	// system's roots.
	TLS *tls.Config
	// Clock times the waits between retries; nil is the system's.
	Clock clock.Clock
}

// DefaultURL is where spans go when no endpoint is set.
const DefaultURL = "http://localhost:4318/v1/traces"

// ConfigFromEnv reads the OTEL_EXPORTER_OTLP_* variables through getenv as
// the OpenTelemetry specification defines them for OTLP/HTTP: the
// traces-specific variable wins over the general one; a general endpoint
// is a base to which /v1/traces is added, a traces endpoint is used as it
// is; headers are comma-separated key=value pairs with URL-encoded values;
// the timeout is in milliseconds (10 s by default); compression is gzip
// or none; certificate variables name PEM files. A value that cannot be
// used is an error naming its variable, where OpenTelemetry's exporter
// would log it and go on without it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	get := func(name string) (string, string) {
		if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_" + name)); v != "" {
			return "OTEL_EXPORTER_OTLP_TRACES_" + name, v
		}
		return "OTEL_EXPORTER_OTLP_" + name, strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_" + name))
	}
	cfg := Config{URL: DefaultURL, Timeout: 10 * time.Second, Headers: http.Header{}}

	if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")); v != "" {
		u, err := endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v)
		if err != nil {
			return Config{}, err
		}
		if u.Path == "" {
			u.Path = "/"
		}
		cfg.URL = u.String()
	} else if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")); v != "" {
		u, err := endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", v)
		if err != nil {
			return Config{}, err
		}
		u.Path = path.Join("/", u.Path, "v1/traces")
		cfg.URL = u.String()
	}

	if name, v := get("HEADERS"); v != "" {
		for pair := range strings.SplitSeq(v, ",") {
			k, val, ok := strings.Cut(pair, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" || strings.ContainsAny(k, " \t\r\n:") {
				return Config{}, fmt.Errorf("%s: %q is not a key=value pair", name, pair)
			}
			val, err := url.PathUnescape(val)
			if err != nil {
				return Config{}, fmt.Errorf("%s: the value of %s: %w", name, k, err)
			}
			cfg.Headers.Set(k, strings.TrimSpace(val))
		}
	}

	if name, v := get("TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return Config{}, fmt.Errorf("%s=%s: want a positive number of milliseconds", name, v)
		}
		cfg.Timeout = time.Duration(ms) * time.Millisecond
	}

	switch name, v := get("COMPRESSION"); v {
	case "", "none":
	case "gzip":
		cfg.Gzip = true
	default:
		return Config{}, fmt.Errorf("%s=%s: want gzip or none", name, v)
	}

	var tlsConf tls.Config
	custom := false
	if name, v := get("CERTIFICATE"); v != "" {
		pem, err := os.ReadFile(v) //nolint:gosec // G304: the operator names the CA file
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", name, err)
		}
		tlsConf.RootCAs = x509.NewCertPool()
		if !tlsConf.RootCAs.AppendCertsFromPEM(pem) {
			return Config{}, fmt.Errorf("%s: %s holds no PEM certificate", name, v)
		}
		custom = true
	}
	certName, certFile := get("CLIENT_CERTIFICATE")
	keyName, keyFile := get("CLIENT_KEY")
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return Config{}, fmt.Errorf("%s and %s go together", certName, keyName)
		}
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return Config{}, fmt.Errorf("%s, %s: %w", certName, keyName, err)
		}
		tlsConf.Certificates = []tls.Certificate{pair}
		custom = true
	}
	if custom {
		tlsConf.MinVersion = tls.VersionTLS12
		cfg.TLS = &tlsConf
	}
	return cfg, nil
}

func endpoint(name, v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s=%s: want an http:// or https:// URL (the collector's OTLP/HTTP port, 4318)", name, v)
	}
	return u, nil
}

// Exporter sends spans to a collector; it is an sdktrace.SpanExporter for
// the SDK's batch span processor.
type Exporter struct {
	cfg     Config
	client  *http.Client
	backoff backoff
	stopped atomic.Bool
}

// backoff is how long to wait before each retry and how long to keep
// trying, as OpenTelemetry's exporters do by default.
type backoff struct{ first, most, total time.Duration }

// New returns an exporter for cfg.
func New(cfg Config) *Exporter {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLS != nil {
		transport.TLSClientConfig = cfg.TLS
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	return &Exporter{
		cfg:     cfg,
		client:  &http.Client{Transport: transport},
		backoff: backoff{first: 5 * time.Second, most: 30 * time.Second, total: time.Minute},
	}
}

// ErrStopped is returned for spans exported after Shutdown.
var ErrStopped = errors.New("otlp: exporter stopped")

// retryable is a failure that may pass if tried again, with the wait the
// collector asked for, if any.
type retryable struct {
	err   error
	after time.Duration
}

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// ExportSpans sends spans in one request, trying again on what OTLP calls
// retryable (a connection that failed, 429, 502, 503, 504) with growing
// waits, or the wait the collector's Retry-After asks for, until ctx ends
// or a minute has passed.
func (e *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.stopped.Load() {
		return ErrStopped
	}
	if len(spans) == 0 {
		return nil
	}
	body := encodeRequest(spans)
	if e.cfg.Gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(body); err != nil {
			return fmt.Errorf("otlp: compress: %w", err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("otlp: compress: %w", err)
		}
		body = buf.Bytes()
	}
	c := e.cfg.Clock
	deadline := c.Now().Add(e.backoff.total)
	wait := e.backoff.first
	for {
		err := e.post(ctx, body)
		var again *retryable
		if !errors.As(err, &again) {
			return err
		}
		pause := wait
		if again.after > 0 {
			pause = again.after
		}
		if c.Now().Add(pause).After(deadline) {
			return fmt.Errorf("otlp: gave up: %w", again.err)
		}
		if !clock.Sleep(ctx, c, pause) {
			return fmt.Errorf("otlp: %w (last: %w)", ctx.Err(), again.err)
		}
		wait = min(2*wait, e.backoff.most)
	}
}

func (e *Exporter) post(ctx context.Context, body []byte) error {
	reqCtx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, e.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("otlp: %w", err)
	}
	for k, v := range e.cfg.Headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		if ctx.Err() != nil { // the export's own time is up, not the request's
			return fmt.Errorf("otlp: %w", err)
		}
		return &retryable{err: fmt.Errorf("otlp: %w", err)}
	}
	defer func() { _ = resp.Body.Close() }()
	// The answer's body is a status message at most; a few KB say enough.
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("otlp: the collector answered %s: %q", resp.Status, msg)
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		r := &retryable{err: err}
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			r.after = time.Duration(s) * time.Second
		}
		return r
	}
	return err
}

// Shutdown stops the exporter: later exports fail with ErrStopped.
func (e *Exporter) Shutdown(context.Context) error {
	e.stopped.Store(true)
	e.client.CloseIdleConnections()
	return nil
}
