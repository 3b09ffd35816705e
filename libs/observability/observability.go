// Package observability gives every Dispatch service the same logger,
// health endpoints and Prometheus metrics endpoint.
package observability

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewLogger returns a slog logger writing JSON (production) or text (dev)
// to stderr, tagged with the service name and instance id.
func NewLogger(format, level, service, instance string) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(os.Stderr, opts)
	} else {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(h).With("service", service, "instance", instance)
}

// Timeouts of the servers NewServer returns. Health checks and scrapes are
// small and quick; anything slower is a stuck or hostile client.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = time.Minute
)

// NewServer returns the HTTP server for a service's health and metrics
// port, with read, write and idle timeouts so that clients that connect and
// stay silent, trickle a request or keep idle connections cannot hold the
// port's connections forever.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h,
		ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout}
}

// Check reports whether one dependency is usable.
type Check func(ctx context.Context) error

// Register adds /healthz (the process is alive), /readyz (every check
// passes within two seconds) and /metrics (Prometheus) to mux.
func Register(mux *http.ServeMux, checks map[string]Check) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, results := http.StatusOK, make(map[string]string, len(checks))
		for name, check := range checks {
			if err := check(ctx); err != nil {
				status, results[name] = http.StatusServiceUnavailable, err.Error()
				continue
			}
			results[name] = "ok"
		}
		writeJSON(w, status, results)
	})
	mux.Handle("GET /metrics", promhttp.Handler())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
