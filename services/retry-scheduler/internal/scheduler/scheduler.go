// Package scheduler is the retry scheduler's loop: it claims open deliveries
// that need a Kafka record (due retries, deliveries stranded by a lost
// publish or a dead worker) in batches and publishes them, waking when the
// earliest waiting delivery comes due and at least every poll interval.
package scheduler

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// Store is the part of the data layer the scheduler uses.
type Store interface {
	ClaimDue(ctx context.Context, limit int, stale time.Duration) ([]store.DueDelivery, error)
	MarkUnpublished(ctx context.Context, ids ...int64) error
	// UntilNextDue is how long until the earliest waiting delivery due
	// less than since ago or later comes due (zero or less: due already);
	// ok is false when none is waiting.
	UntilNextDue(ctx context.Context, since time.Duration) (wait time.Duration, ok bool, err error)
}

// Publisher publishes messages and waits for Kafka to have them.
type Publisher interface {
	PublishSync(ctx context.Context, msgs ...queue.Message) error
}

// Config tunes a Scheduler.
type Config struct {
	// PollInterval is the longest wait between passes; the scheduler wakes
	// sooner when a delivery comes due sooner.
	PollInterval time.Duration
	// BatchSize is how many deliveries one claim takes.
	BatchSize int
	// StrandedAfter is how long a published record may wait unclaimed
	// before it counts as lost and is published again.
	StrandedAfter time.Duration
	// PublishTimeout bounds one batch's publish (default 10 s).
	PublishTimeout time.Duration
	// Clock times Run's passes and sleeps, so tests can move time instead
	// of waiting for it (default clock.Real()).
	Clock  clock.Clock
	Logger *slog.Logger
	// Registerer receives the metrics; nil means the default registry.
	Registerer prometheus.Registerer
}

// Scheduler republishes due and stranded deliveries. Any number may run at
// once: claims use FOR UPDATE SKIP LOCKED, so no row is claimed twice.
type Scheduler struct {
	cfg       Config
	store     Store
	publisher Publisher
	log       *slog.Logger
	claimed   *prometheus.CounterVec
	published prometheus.Counter
	failures  prometheus.Counter
}

// New returns a Scheduler.
func New(st Store, pub Publisher, cfg Config) *Scheduler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.DefaultRegisterer
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	s := &Scheduler{
		cfg: cfg, store: st, publisher: pub, log: cfg.Logger,
		claimed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatch_scheduler_claimed_total",
			Help: "Deliveries claimed for publishing, by kind: retry (due retries) or stranded (every other open delivery needing a record: lost or failed publishes, lapsed claims, redeliveries, released first attempts).",
		}, []string{"kind"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatch_scheduler_republished_total", Help: "Deliveries the scheduler published to Kafka.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dispatch_scheduler_publish_failures_total", Help: "Claimed deliveries that could not be published; retried on the next pass.",
		}),
	}
	cfg.Registerer.MustRegister(s.claimed, s.published, s.failures)
	for _, kind := range []store.DueKind{store.DueRetry, store.DueStranded} {
		s.claimed.WithLabelValues(string(kind)) // export zeros before the first claim
	}
	return s
}

// minWait is the shortest sleep between passes, so that a delivery due in
// an instant (or many due in quick succession) does not make the loop spin.
const minWait = 50 * time.Millisecond

// recheck is how often a sleeping scheduler asks for the next due time, so
// that a retry scheduled while it sleeps (a worker recording a failure
// with a short backoff, a released claim) is not left for the full poll.
const recheck = time.Second

// Run passes over the database until ctx ends. Between passes it sleeps
// until the earliest waiting delivery comes due (at least minWait), at most
// PollInterval after the previous pass began; while asleep it looks for a
// sooner due time every second. So a due retry is republished within about
// a second, not up to a poll interval late. A failed pass waits the full
// interval. A pass in progress when ctx ends is finished first, so nothing
// claimed is dropped.
func (s *Scheduler) Run(ctx context.Context) error {
	clk := s.cfg.Clock
	for {
		began := clk.Now()
		if err := s.Pass(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("scheduler pass failed; trying again next interval", "err", err)
			if !clock.Sleep(ctx, clk, s.cfg.PollInterval) {
				return nil
			}
			continue
		}
		deadline := began.Add(s.cfg.PollInterval)
		for {
			wait := min(deadline.Sub(clk.Now()), recheck)
			if wait <= 0 {
				break
			}
			due := false
			if until, ok := s.untilNextDue(ctx, clk.Now().Sub(began)); ok && until < wait {
				wait, due = max(until, minWait), true
			}
			if !clock.Sleep(ctx, clk, wait) {
				return nil
			}
			if due {
				break
			}
		}
	}
}

// untilNextDue asks the store when the next delivery comes due; on an error
// it answers none, and the poll finds the work.
func (s *Scheduler) untilNextDue(ctx context.Context, since time.Duration) (time.Duration, bool) {
	until, ok, err := s.store.UntilNextDue(ctx, since)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("could not find the next due delivery; polling", "err", err)
		}
		return 0, false
	}
	return until, ok
}

// Pass claims and publishes batches until no delivery is due.
func (s *Scheduler) Pass(ctx context.Context) error {
	for {
		due, err := s.store.ClaimDue(ctx, s.cfg.BatchSize, s.cfg.StrandedAfter)
		if err != nil {
			return err
		}
		if len(due) == 0 {
			return nil
		}
		msgs := make([]queue.Message, len(due))
		ids := make([]int64, len(due))
		for i, d := range due {
			s.claimed.WithLabelValues(string(d.Kind)).Inc()
			msgs[i] = queue.Message{DeliveryID: d.ID, EventID: d.EventID, SubscriptionID: d.SubscriptionID, TraceParent: d.TraceParent}
			ids[i] = d.ID
		}
		pubCtx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
		err = s.publisher.PublishSync(pubCtx, msgs...)
		cancel()
		if err != nil {
			s.failures.Add(float64(len(msgs)))
			if uerr := s.store.MarkUnpublished(ctx, ids...); uerr != nil {
				s.log.Warn("could not unmark unpublished deliveries; they are republished once stale", "err", uerr)
			}
			return err
		}
		s.published.Add(float64(len(msgs)))
		s.log.Info("republished deliveries", "count", len(msgs))
		if len(due) < s.cfg.BatchSize {
			return nil
		}
	}
}
