// Command retry-scheduler publishes due retries and recovers stranded
// deliveries (internal/scheduler), rolls activity up per minute for
// GET /stats (internal/rollup), exports the backlog (internal/backlog),
// deletes events older than the retention period (internal/retention) and
// emits operational events, disabling subscriptions that failed for
// AUTO_DISABLE_AFTER (internal/report).
package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	libconfig "github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/libs/lifecycle"
	"github.com/dispatch-webhooks/dispatch/libs/observability"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/backlog"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/config"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/report"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/retention"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/rollup"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/scheduler"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	observability.AnswerHealthcheck(libconfig.FromEnv().String("ADDR", libconfig.DefaultAddr))
	libconfig.AnswerConfigcheck(config.Load)
	lifecycle.Main("retry-scheduler", run)
}

func run(ctx context.Context) error {
	cfg, err := config.Load(libconfig.FromEnv())
	if err != nil {
		return err
	}
	log, flush, err := observability.Start(ctx, observability.Service{
		Name: "retry-scheduler", Version: version, Instance: cfg.InstanceID, LogFormat: cfg.LogFormat, LogLevel: cfg.LogLevel,
	})
	if err != nil {
		return err
	}
	defer flush()

	pool, err := store.Connect(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	st := store.New(pool)
	producer, err := queue.NewProducer(queue.ProducerConfig{Brokers: cfg.KafkaBrokers, Topic: cfg.KafkaTopic})
	if err != nil {
		return fmt.Errorf("KAFKA_BROKERS: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		if err := producer.Close(closeCtx); err != nil {
			log.Warn("closing producer", "err", err)
		}
	}()
	// One clock for every part that tells the time or waits.
	clk := clock.Real()
	sched := scheduler.New(st, producer, scheduler.Config{
		PollInterval: cfg.PollInterval, BatchSize: cfg.BatchSize, StrandedAfter: cfg.StrandedAfter, Clock: clk, Logger: log,
	})

	mux := http.NewServeMux()
	observability.Register(mux, map[string]observability.Check{"database": st.Ping, "kafka": producer.Ping})
	health := observability.NewServer(cfg.Addr, mux)

	log.Info("retry-scheduler polling", "interval", cfg.PollInterval, "batch", cfg.BatchSize, "stranded_after", cfg.StrandedAfter, "addr", cfg.Addr)
	roller := rollup.New(st, rollup.Config{Clock: clk, Logger: log})
	gauges := backlog.New(st, 15*time.Second, clk, log, nil)
	reporter := report.New(st, report.Config{
		AutoDisableAfter: cfg.AutoDisableAfter, BySubscriptionTenant: cfg.OperationalEventsBySubscriptionTenant,
		Every: cfg.OperationalCheckInterval, Clock: clk, Logger: log,
	})
	log.Info("operational events", "auto_disable_after", cfg.AutoDisableAfter, "by_subscription_tenant", cfg.OperationalEventsBySubscriptionTenant)
	parts := []lifecycle.Part{lifecycle.HTTP(health, 5*time.Second), sched.Run, roller.Run, gauges.Run, reporter.Run}
	if cfg.RetentionPeriod > 0 {
		pruner := retention.New(st, retention.Config{Period: cfg.RetentionPeriod, BatchSize: cfg.RetentionBatchSize, Clock: clk, Logger: log})
		parts = append(parts, pruner.Run)
		log.Info("deleting events older than the retention period", "retention_period", cfg.RetentionPeriod, "batch", cfg.RetentionBatchSize)
	} else {
		log.Info("retention off: events are kept for ever")
	}
	err = lifecycle.Run(ctx, parts...)
	log.Info("stopped")
	return err
}
