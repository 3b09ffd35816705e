// Package backlog exports the work waiting for a worker as gauges, so that
// operators see a growing or ageing backlog before receivers do:
// dispatch_backlog_deliveries{status} and
// dispatch_backlog_oldest_due_seconds. Every retry scheduler exports the
// same numbers; aggregate with max().
package backlog

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// Store is the part of the data layer the gauges read.
type Store interface {
	Backlog(ctx context.Context) (store.Backlog, error)
}

// Gauges refreshes the backlog gauges every Every until its context ends.
type Gauges struct {
	store  Store
	every  time.Duration
	log    *slog.Logger
	due    *prometheus.GaugeVec
	oldest prometheus.Gauge
	clock  clock.Clock
}

// New registers the gauges on r (nil: the default registry); clk times
// the refreshes and the oldest delivery's age (nil: clock.Real()).
func New(st Store, every time.Duration, clk clock.Clock, log *slog.Logger, r prometheus.Registerer) *Gauges {
	if r == nil {
		r = prometheus.DefaultRegisterer
	}
	if clk == nil {
		clk = clock.Real()
	}
	g := &Gauges{
		store: st, every: every, log: log, clock: clk,
		due: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dispatch_backlog_deliveries",
			Help: "Open deliveries due now and not yet attempted, by status (pending, processing with a lapsed claim, retrying).",
		}, []string{"status"}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dispatch_backlog_oldest_due_seconds",
			Help: "How long the longest-waiting due delivery has been due; 0 without a backlog.",
		}),
	}
	r.MustRegister(g.due, g.oldest)
	for _, s := range []string{"pending", "processing", "retrying"} {
		g.due.WithLabelValues(s)
	}
	return g
}

// Run refreshes until ctx ends.
func (g *Gauges) Run(ctx context.Context) error {
	for {
		g.refresh(ctx)
		if !clock.Sleep(ctx, g.clock, g.every) {
			return nil
		}
	}
}

func (g *Gauges) refresh(ctx context.Context) {
	b, err := g.store.Backlog(ctx)
	if err != nil {
		if ctx.Err() == nil {
			g.log.Warn("could not read the backlog; its gauges keep their last values", "err", err)
		}
		return
	}
	for status, n := range b.Due {
		g.due.WithLabelValues(status).Set(float64(n))
	}
	age := 0.0
	if !b.OldestDue.IsZero() {
		age = max(0, g.clock.Now().Sub(b.OldestDue).Seconds())
	}
	g.oldest.Set(age)
}
