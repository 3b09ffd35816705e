// Command delivery-worker consumes queued deliveries from Kafka and delivers
// them as signed webhooks; see internal/delivery for the delivery path.
package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	libconfig "github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/libs/egress"
	"github.com/dispatch-webhooks/dispatch/libs/lifecycle"
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
	observability.AnswerHealthcheck(libconfig.FromEnv().String("ADDR", libconfig.DefaultAddr))
	libconfig.AnswerConfigcheck(config.Load)
	lifecycle.Main("delivery-worker", run)
}

func run(ctx context.Context) error {
	cfg, err := config.Load(libconfig.FromEnv())
	if err != nil {
		return err
	}
	log, flush, err := observability.Start(ctx, observability.Service{
		Name: "delivery-worker", Version: version, Instance: cfg.InstanceID, LogFormat: cfg.LogFormat, LogLevel: cfg.LogLevel,
	})
	if err != nil {
		return err
	}
	defer flush()

	// Every write the worker makes is one a lapsed lease redoes, so it
	// need not wait for the disk (ADR 0025).
	pool, err := store.Connect(ctx, cfg.DatabaseURL, cfg.DBMaxConns, store.AsynchronousCommit(), store.KeyedReads())
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	keys, err := cfg.Keyring()
	if err != nil {
		return fmt.Errorf("SECRETS_ENCRYPTION_KEY: %w", err)
	}
	st := store.New(pool, store.WithSecretKeys(keys))

	// One clock for every part that tells the time or waits.
	clk := clock.Real()
	consumer, err := queue.NewConsumer(queue.ConsumerConfig{
		Clock:          clk,
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
		Clock:            clk,
		Prefix:           cfg.RedisKeyPrefix,
		RatePerSecond:    cfg.RateLimit,
		MaxConcurrency:   cfg.MaxConcurrency,
		FailureThreshold: cfg.CircuitThreshold,
		OpenFor:          cfg.CircuitOpenFor,
		HalfOpenTrials:   cfg.CircuitTrials,
		Logger:           log,
	})
	if cfg.ProxyIgnored {
		log.Warn("HTTP_PROXY/HTTPS_PROXY is set, but deliveries never use it: only DELIVERY_PROXY_URL sends them through a proxy (see docs/adr/0013)")
	}
	if cfg.Proxy != nil {
		log.Info("deliveries go through an egress proxy", "proxy", cfg.Proxy.Redacted())
	}
	worker := delivery.NewWorker(st, delivery.NewSender(delivery.SenderConfig{Version: version, Policy: egress.NewPolicy(cfg.AllowCIDRs), MaxResponseHeaderBytes: cfg.MaxResponseHeaderBytes, Traceparent: cfg.Traceparent, Proxy: cfg.Proxy, Clock: clk}), guard, delivery.Config{
		Timeout:          cfg.DeliveryTimeout,
		LeaseMargin:      cfg.LeaseMargin,
		DestinationSlots: cfg.DestinationSlots,
		Retry:            retry.Policy{MaxAttempts: cfg.MaxAttempts, BaseDelay: cfg.RetryBaseDelay, MaxDelay: cfg.RetryMaxDelay},
		Instance:         cfg.InstanceID,
		Clock:            clk,
		Logger:           log,
	})

	mux := http.NewServeMux()
	observability.Register(mux, map[string]observability.Check{"database": st.Ping, "kafka": consumer.Ping})
	health := observability.NewServer(cfg.Addr, mux)

	log.Info("delivery-worker consuming", "topic", cfg.KafkaTopic, "group", cfg.KafkaConsumerGroup, "concurrency", cfg.Concurrency, "addr", cfg.Addr)
	// The consumer drains in-flight deliveries, those waiting in memory for
	// their destination included, within SHUTDOWN_TIMEOUT and commits; what
	// is still waiting then is given back.
	err = lifecycle.Run(ctx, lifecycle.HTTP(health, 5*time.Second), worker.ForgetDeleted, func(ctx context.Context) error {
		return consumer.Run(ctx, worker.Handle)
	})
	log.Info("stopped")
	return err
}
