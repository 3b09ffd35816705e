package observability

import (
	"context"
	"log/slog"
	"os"
)

// Service names a running service in its logs and traces.
type Service struct {
	Name, Version, Instance string
	// LogFormat is "json" or "text"; LogLevel a slog level name.
	LogFormat, LogLevel string
}

// Start is how every service begins once its configuration is loaded: its
// logger, and its tracing when the OTEL_* variables ask for it. The
// function it returns flushes the spans still buffered; defer it.
func Start(ctx context.Context, s Service) (*slog.Logger, func(), error) {
	log := NewLogger(s.LogFormat, s.LogLevel, s.Name, s.Instance)
	stop, err := Tracing(ctx, s.Name, s.Version)
	if err != nil {
		return nil, nil, err
	}
	return log, func() { FlushTracing(ctx, stop, log) }, nil
}

// AnswerHealthcheck runs the "healthcheck" command when the process was
// started as `<service> healthcheck`, for container health checks: it asks
// the service running at addr (its ADDR) whether it is ready and exits 0
// when it is, 1 when not. Otherwise it returns at once.
func AnswerHealthcheck(addr string) {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(HealthcheckCommand(addr))
	}
}
