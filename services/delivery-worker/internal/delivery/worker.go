// Package delivery is the delivery worker's core: for each queued message it
// claims the delivery in PostgreSQL, sends the signed POST, and stores the
// attempt with the delivery's next status, in that order, before the
// message's offset may be committed.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// Store is the part of the data layer the worker uses.
type Store interface {
	ClaimDelivery(ctx context.Context, deliveryID int64, lease time.Duration) (store.Job, error)
	RecordAttempt(ctx context.Context, o store.Outcome) error
}

// Config tunes a Worker.
type Config struct {
	// Timeout bounds one HTTP attempt.
	Timeout time.Duration
	// LeaseMargin is added to Timeout for the claim's lease, so a claim
	// lapses only once its worker must be dead or stuck.
	LeaseMargin time.Duration
	Retry       RetryPolicy
	// Instance names this worker in the attempts it records.
	Instance string
	Logger   *slog.Logger
	// Registerer receives the worker's metrics; nil means the default registry.
	Registerer prometheus.Registerer
}

// Worker delivers queued messages.
type Worker struct {
	cfg     Config
	store   Store
	sender  *Sender
	log     *slog.Logger
	metrics *metrics
}

// NewWorker returns a Worker. Its Handle method is a queue.Handler.
func NewWorker(st Store, sender *Sender, cfg Config) *Worker {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.DefaultRegisterer
	}
	return &Worker{cfg: cfg, store: st, sender: sender, log: cfg.Logger, metrics: newMetrics(cfg.Registerer)}
}

// Handle claims, attempts and records one delivery. It returns an error
// only when nothing was claimed (the database could not be reached), so
// the queue offers the message again.
func (w *Worker) Handle(ctx context.Context, m queue.Message) error {
	job, err := w.store.ClaimDelivery(ctx, m.DeliveryID, w.cfg.Timeout+w.cfg.LeaseMargin)
	if errors.Is(err, domain.ErrNotClaimable) {
		// Already delivered or failed, not yet due, held by another worker,
		// or its subscription is not active: a duplicate message, nothing to do.
		w.log.Debug("delivery not claimable; skipping", "event_id", m.EventID, "subscription_id", m.SubscriptionID, "delivery_id", m.DeliveryID)
		return nil
	}
	if err != nil {
		return err
	}
	log := w.log.With("event_id", job.Event.ID, "subscription_id", job.SubscriptionID, "attempt", job.Attempt)

	attempt := w.sender.Send(ctx, job, w.cfg.Timeout)
	attempt.Instance = w.cfg.Instance
	outcome := w.decide(attempt)
	w.metrics.observe(attempt, outcome.Status)

	if err := w.record(ctx, outcome); err != nil {
		// The claim's lease runs out and the delivery is picked up again:
		// at-least-once, never lost.
		log.Error("attempt made but not recorded", "result", describe(attempt), "err", err)
		return nil
	}
	log.Info("attempt recorded", "result", describe(attempt), "status", outcome.Status, "duration_ms", attempt.Duration.Milliseconds())
	return nil
}

// decide turns an attempt into the delivery's next status.
func (w *Worker) decide(a domain.Attempt) store.Outcome {
	switch {
	case a.Succeeded():
		return store.Outcome{Attempt: a, Status: domain.DeliveryDelivered}
	case a.Number >= w.cfg.Retry.MaxAttempts:
		return store.Outcome{Attempt: a, Status: domain.DeliveryFailed}
	default:
		return store.Outcome{Attempt: a, Status: domain.DeliveryRetrying, NextAttemptAt: time.Now().Add(w.cfg.Retry.Delay(a.Number))}
	}
}

// record stores the outcome, retrying while the database is unreachable
// for as long as the claim's lease lasts.
func (w *Worker) record(ctx context.Context, o store.Outcome) error {
	deadline := time.Now().Add(w.cfg.LeaseMargin)
	backoff := 50 * time.Millisecond
	for {
		err := w.store.RecordAttempt(ctx, o)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, domain.ErrNotClaimable), errors.Is(err, domain.ErrNotFound):
			// Another worker took over a lapsed claim, or the subscription
			// was deleted: the attempt is as recorded as it can be.
			return nil
		case time.Now().After(deadline) || ctx.Err() != nil:
			return fmt.Errorf("record attempt: %w", err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}
