// Command delivery-worker consumes queued deliveries from Kafka and delivers
// them as signed webhooks; see internal/delivery for the delivery path.
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

	"github.com/redis/go-redis/v9"

	libconfig "github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/libs/observability"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/retry"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/services/delivery-worker/internal/config"
	"github.com/dispatch-webhooks/dispatch/services/delivery-worker/internal/delivery"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "delivery-worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := config.Load(libconfig.FromEnv())
	if err != nil {
		return err
	}
	log := observability.NewLogger(cfg.LogFormat, cfg.LogLevel, "delivery-worker", cfg.InstanceID)

	pool, err := store.Connect(ctx, cfg.DatabaseURL, int32(cfg.DBMaxConns))
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	st := store.New(pool)

	consumer, err := queue.NewConsumer(queue.ConsumerConfig{
		Brokers:        cfg.KafkaBrokers,
		Topics:         []string{cfg.KafkaTopic},
		Group:          cfg.KafkaConsumerGroup,
		ClientID:       cfg.InstanceID,
		Concurrency:    cfg.Concurrency,
		DrainTimeout:   cfg.ShutdownTimeout,
		SessionTimeout: cfg.KafkaSessionTimeout,
		Logger:         log,
	})
	if err != nil {
		return fmt.Errorf("KAFKA_BROKERS: %w", err)
	}
	redisOpts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(redisOpts)
	defer rdb.Close()
	// Redis being down at start is not fatal: the guard falls back to
	// in-process limits until it answers.
	guard := resilience.New(rdb, resilience.Config{
		Prefix:           cfg.RedisKeyPrefix,
		RatePerSecond:    cfg.RateLimit,
		MaxConcurrency:   cfg.MaxConcurrency,
		FailureThreshold: cfg.CircuitThreshold,
		OpenFor:          cfg.CircuitOpenFor,
		HalfOpenTrials:   cfg.CircuitTrials,
		Logger:           log,
	})
	worker := delivery.NewWorker(st, delivery.NewSender(version), guard, delivery.Config{
		Timeout:     cfg.DeliveryTimeout,
		LeaseMargin: cfg.LeaseMargin,
		Retry:       retry.Policy{MaxAttempts: cfg.MaxAttempts, BaseDelay: cfg.RetryBaseDelay, MaxDelay: cfg.RetryMaxDelay},
		Instance:    cfg.InstanceID,
		Logger:      log,
	})

	mux := http.NewServeMux()
	observability.Register(mux, map[string]observability.Check{"database": st.Ping, "kafka": consumer.Ping})
	srv := &http.Server{Addr: cfg.Addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("ADDR %s: %w", cfg.Addr, err)
		}
	}()

	log.Info("delivery-worker consuming", "topic", cfg.KafkaTopic, "group", cfg.KafkaConsumerGroup, "concurrency", cfg.Concurrency, "addr", cfg.Addr)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- consumer.Run(runCtx, worker.Handle) }()

	var runErr error
	select {
	case runErr = <-errc:
		cancel()
		<-done
	case runErr = <-done:
	}
	worker.Close()
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	_ = srv.Shutdown(shutdownCtx)
	log.Info("stopped")
	return runErr
}
