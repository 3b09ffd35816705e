// Command retry-scheduler publishes due retries and recovers stranded
// deliveries; see internal/scheduler.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	libconfig "github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/libs/observability"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/config"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/scheduler"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "retry-scheduler:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := config.Load(libconfig.FromEnv())
	if err != nil {
		return err
	}
	log := observability.NewLogger(cfg.LogFormat, cfg.LogLevel, "retry-scheduler", cfg.InstanceID)

	pool, err := store.Connect(ctx, cfg.DatabaseURL, int32(cfg.DBMaxConns))
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	st := store.New(pool)
	producer, err := queue.NewProducer(queue.ProducerConfig{Brokers: cfg.KafkaBrokers, Topic: cfg.KafkaTopic})
	if err != nil {
		return fmt.Errorf("KAFKA_BROKERS: %w", err)
	}
	sched := scheduler.New(st, producer, scheduler.Config{
		PollInterval: cfg.PollInterval, BatchSize: cfg.BatchSize, StrandedAfter: cfg.StrandedAfter, Logger: log,
	})

	mux := http.NewServeMux()
	observability.Register(mux, map[string]observability.Check{"database": st.Ping, "kafka": producer.Ping})
	srv := &http.Server{Addr: cfg.Addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("ADDR %s: %w", cfg.Addr, err)
		}
	}()

	log.Info("retry-scheduler polling", "interval", cfg.PollInterval, "batch", cfg.BatchSize, "stranded_after", cfg.StrandedAfter, "addr", cfg.Addr)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sched.Run(runCtx) }()
	var runErr error
	select {
	case runErr = <-errc:
		cancel()
		<-done
	case runErr = <-done:
	}
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelShutdown()
	_ = srv.Shutdown(shutdownCtx)
	if err := producer.Close(shutdownCtx); err != nil {
		log.Warn("closing producer", "err", err)
	}
	log.Info("stopped")
	return runErr
}
