// Package retention deletes events older than the retention period, with
// their deliveries and attempts, in small batches (ADR 21). Every minute a
// pass walks the expired events oldest first, one short transaction per
// batch with a pause between batches, so that pruning millions of rows
// never holds locks, connections or the disk for long. Events that still
// have an open delivery are kept and looked at again on the next pass.
package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// Store is the part of the data layer the pruner uses.
type Store interface {
	PruneEvents(ctx context.Context, olderThan time.Duration, after *store.Position, limit int) (store.Pruned, error)
	PruneActivityHours(ctx context.Context, olderThan time.Duration) (int64, error)
	PruneOrderingKeys(ctx context.Context, idle time.Duration, limit int) (int64, error)
}

// Config tunes a Pruner; zero fields take the defaults in brackets.
type Config struct {
	// Period is how long events are kept; it must be positive.
	Period time.Duration
	// BatchSize is the most events one batch looks at [1000].
	BatchSize int
	// Pause is the wait between batches of one pass, which leaves the
	// database to other work [50ms].
	Pause time.Duration
	// Every is the wait between passes [1m].
	Every time.Duration
	// BatchTimeout bounds one batch [30s].
	BatchTimeout time.Duration
	// Clock times the passes and the waits, so tests can move time
	// instead of waiting [clock.Real()].
	Clock  clock.Clock
	Logger *slog.Logger
	// Registerer receives the metrics; nil means the default registry.
	Registerer prometheus.Registerer
}

// Pruner deletes expired events until its context ends. Any number may run
// at once (one per scheduler): each event is examined by one of them.
type Pruner struct {
	store   Store
	cfg     Config
	log     *slog.Logger
	deleted *prometheus.CounterVec
}

// Tables are the values of the table label, in the order rows are deleted.
var Tables = []string{"attempts", "deliveries", "events"}

// New returns a Pruner and registers its counter.
func New(st Store, cfg Config) *Pruner {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 50 * time.Millisecond
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.DefaultRegisterer
	}
	p := &Pruner{
		store: st, cfg: cfg, log: cfg.Logger,
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatch_retention_deleted_total",
			Help: "Rows deleted because their event outlived RETENTION_PERIOD, by table: events, deliveries, attempts.",
		}, []string{"table"}),
	}
	cfg.Registerer.MustRegister(p.deleted)
	for _, t := range Tables {
		p.deleted.WithLabelValues(t) // export zeros before the first deletion
	}
	return p
}

// Totals is what one pass did.
type Totals struct {
	// Batches counts the batches run.
	Batches int
	// Examined counts the expired events looked at; Examined - Events were
	// kept (an open or locked delivery).
	Examined int
	// Events, Deliveries and Attempts count the rows deleted.
	Events, Deliveries, Attempts int64
	// ActivityHours counts the subscriptions' hours of activity deleted
	// (ADR 35): those that ended before the period.
	ActivityHours int64
	// OrderingKeys counts the ordering keys forgotten (ADR 43): those with
	// nothing open for longer than the period.
	OrderingKeys int64
}

// Run passes over the expired events every Every until ctx ends. A batch
// in progress when ctx ends is finished (it is one short transaction);
// none follows it.
func (p *Pruner) Run(ctx context.Context) error {
	for {
		start := p.cfg.Clock.Now()
		t, err := p.Pass(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			p.log.Warn("pruning expired events failed; trying again next pass", "err", err,
				"events", t.Events, "deliveries", t.Deliveries, "attempts", t.Attempts)
		case t.Examined > 0:
			p.log.Info("pruned expired events", "events", t.Events, "deliveries", t.Deliveries, "attempts", t.Attempts,
				"kept", t.Examined-int(t.Events), "activity_hours", t.ActivityHours, "ordering_keys", t.OrderingKeys, "batches", t.Batches, "took", p.cfg.Clock.Now().Sub(start).Round(time.Millisecond),
				"retention_period", p.cfg.Period)
		}
		if !clock.Sleep(ctx, p.cfg.Clock, p.cfg.Every) {
			return nil
		}
	}
}

// Pass deletes the subscriptions' hours of activity that ended before the
// period and the ordering keys idle for longer, then expired events batch
// by batch, from the oldest, until a batch finds fewer than BatchSize or
// ctx ends.
func (p *Pruner) Pass(ctx context.Context) (Totals, error) {
	var (
		t     Totals
		after *store.Position
	)
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.BatchTimeout)
	hours, err := p.store.PruneActivityHours(hctx, p.cfg.Period)
	cancel()
	if err != nil {
		return t, err
	}
	t.ActivityHours = hours
	for ctx.Err() == nil {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.BatchTimeout)
		n, err := p.store.PruneOrderingKeys(kctx, p.cfg.Period, p.cfg.BatchSize)
		cancel()
		if err != nil {
			return t, err
		}
		t.OrderingKeys += n
		if n < int64(p.cfg.BatchSize) {
			break
		}
	}
	for ctx.Err() == nil {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.BatchTimeout)
		b, err := p.store.PruneEvents(bctx, p.cfg.Period, after, p.cfg.BatchSize)
		cancel()
		if err != nil {
			return t, err
		}
		t.Batches++
		t.Examined += b.Examined
		t.Events += b.Events
		t.Deliveries += b.Deliveries
		t.Attempts += b.Attempts
		p.deleted.WithLabelValues("attempts").Add(float64(b.Attempts))
		p.deleted.WithLabelValues("deliveries").Add(float64(b.Deliveries))
		p.deleted.WithLabelValues("events").Add(float64(b.Events))
		if b.Examined < p.cfg.BatchSize {
			return t, nil
		}
		after = b.Last
		clock.Sleep(ctx, p.cfg.Clock, p.cfg.Pause) // the loop ends if ctx did
	}
	return t, nil
}
