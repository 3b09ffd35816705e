// Package rollup keeps the per-minute activity that GET /stats adds up
// (ADR 18), and each subscription's attempts per hour that its activity
// adds up (ADR 35): every few seconds it rolls up the minutes that have
// closed, catching up in batches after a pause or on a fresh database.
package rollup

import (
	"context"
	"log/slog"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
)

// Store is the part of the data layer the roll-up uses.
type Store interface {
	RollUpActivity(ctx context.Context, limit int) (int64, error)
}

// Config tunes a Roller; zero fields take the defaults in brackets.
type Config struct {
	// Every is the wait between passes when caught up [15s].
	Every time.Duration
	// Batch is the most minutes one pass rolls up [720].
	Batch int
	// Clock times the waits, so tests can move time instead of waiting
	// [clock.Real()].
	Clock  clock.Clock
	Logger *slog.Logger
}

// Roller rolls up closed minutes until its context ends. Several may run
// at once (one per scheduler): each minute is rolled up once.
type Roller struct {
	store Store
	cfg   Config
}

// New returns a Roller.
func New(st Store, cfg Config) *Roller {
	if cfg.Every <= 0 {
		cfg.Every = 15 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 720
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Roller{store: st, cfg: cfg}
}

// Run rolls up until ctx ends. A full batch means more minutes are waiting,
// so the next pass follows at once.
func (r *Roller) Run(ctx context.Context) error {
	for {
		n, err := r.store.RollUpActivity(ctx, r.cfg.Batch)
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("activity roll-up failed; GET /stats counts the rows meanwhile", "err", err)
		}
		wait := r.cfg.Every
		if err == nil && n >= int64(r.cfg.Batch) {
			wait = 0
		}
		if !clock.Sleep(ctx, r.cfg.Clock, wait) {
			return nil
		}
	}
}
