// Package delivery is the delivery worker's core: for each queued message it
// asks the destination's limits for admission (postponing the delivery
// without an attempt if refused), claims the delivery in PostgreSQL, sends
// the signed POST, and stores the attempt with the delivery's next status,
// in that order, before the message's offset may be committed.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/retry"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// Store is the part of the data layer the worker uses.
type Store interface {
	ClaimDelivery(ctx context.Context, deliveryID int64, defaultTimeout, margin time.Duration) (store.Job, error)
	RecordAttempt(ctx context.Context, o store.Outcome) error
	ReleaseDelivery(ctx context.Context, deliveryID int64, attempt int, at time.Time) error
	DisableSubscription(ctx context.Context, id, reason string) error
	ExistingSubscriptions(ctx context.Context, ids []string) ([]string, error)
}

// Guard admits deliveries under their destination's rate and concurrency
// limits, this worker's share of slots per destination and the
// subscription's circuit breaker (see libs/resilience).
type Guard interface {
	Admit(ctx context.Context, t resilience.Target, limits resilience.Limits, timeout time.Duration) resilience.Admission
	Done(ctx context.Context, a resilience.Admission, success bool)
	Release(ctx context.Context, a resilience.Admission)
	// Drop and Observed let the worker forget deleted subscriptions.
	Drop(subID string)
	Observed() []string
}

// goneReason is recorded on a subscription its endpoint retired.
const goneReason = "endpoint answered 410 Gone"

// Config tunes a Worker.
type Config struct {
	// Timeout bounds one HTTP attempt unless the subscription sets its own.
	Timeout time.Duration
	// LeaseMargin is added to the timeout for the claim's lease, so a claim
	// lapses only once its worker must be dead or stuck.
	LeaseMargin time.Duration
	// Retry is the default schedule; subscriptions may override parts of it.
	Retry retry.Policy
	// Instance names this worker in the attempts it records.
	Instance string
	Logger   *slog.Logger
	// Registerer receives the worker's metrics; nil means the default registry.
	Registerer prometheus.Registerer
	// TracerProvider traces each attempt; nil means OpenTelemetry's global
	// provider, a no-op unless tracing is on.
	TracerProvider trace.TracerProvider
}

// Worker delivers queued messages.
type Worker struct {
	cfg      Config
	store    Store
	sender   *Sender
	guard    Guard
	deferred *deferrals
	log      *slog.Logger
	metrics  *metrics
	tracer   trace.Tracer
}

// NewWorker returns a Worker. Its Handle method is a queue.Handler; Close
// it after the consumer stops.
func NewWorker(st Store, sender *Sender, guard Guard, cfg Config) *Worker {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.DefaultRegisterer
	}
	w := &Worker{cfg: cfg, store: st, sender: sender, guard: guard, log: cfg.Logger, metrics: newMetrics(cfg.Registerer), tracer: tracerOf(cfg.TracerProvider)}
	w.deferred = newDeferrals(maxDeferred)
	return w
}

// Handle claims, admits, attempts and records one delivery. It returns an
// error only when the database could not be reached before anything was
// claimed, so the queue offers the message again.
func (w *Worker) Handle(ctx context.Context, m queue.Message) error {
	job, err := w.store.ClaimDelivery(ctx, m.DeliveryID, w.cfg.Timeout, w.cfg.LeaseMargin)
	switch {
	case errors.Is(err, domain.ErrNotClaimable):
		// Already delivered or failed, not yet due, held by another worker,
		// or its subscription is not active: a duplicate message, nothing to do.
		trace.SpanFromContext(ctx).AddEvent("delivery not claimable")
		w.log.Debug("delivery not claimable; skipping", "event_id", m.EventID, "subscription_id", m.SubscriptionID, "delivery_id", m.DeliveryID)
		return nil
	case errors.Is(err, domain.ErrSecretUnavailable):
		// Given back, due again in a while; holding the message would block
		// its partition until the keys are mended.
		w.log.Error("cannot sign: the subscription's secret does not open with SECRETS_ENCRYPTION_KEY or SECRETS_ENCRYPTION_PREVIOUS_KEYS",
			"event_id", m.EventID, "subscription_id", m.SubscriptionID, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	w.attempt(ctx, job, time.Now())
	return nil
}

// attempt asks the destination's limits for admission right before
// sending, so that what the destination receives follows the limits as
// closely as possible, then sends and records the attempt. claimed is when
// the claim was taken: its lease bounds how long it may be held.
func (w *Worker) attempt(ctx context.Context, job store.Job, claimed time.Time) {
	log := w.log.With("event_id", job.Event.ID, "subscription_id", job.SubscriptionID, "attempt", job.Attempt)
	timeout := w.cfg.Timeout
	if job.Settings.Timeout > 0 {
		timeout = job.Settings.Timeout
	}
	target := resilience.TargetOf(job.SubscriptionID, job.URL, job.SubscriptionCreatedAt)
	adm := w.guard.Admit(ctx, target, resilience.Limits{RatePerSecond: job.Settings.RatePerSecond, MaxConcurrency: job.Settings.MaxConcurrency}, timeout)
	if !adm.Allowed {
		w.postpone(ctx, job, claimed, adm)
		return
	}

	ctx, span := w.tracer.Start(ctx, "delivery attempt", trace.WithAttributes(jobAttrs(job)...))
	defer span.End()
	res := w.sender.Send(ctx, job, timeout)
	if ctx.Err() != nil {
		span.SetStatus(codes.Error, "cut short: the worker is stopping; the attempt is not spent")
		// Stopping: the attempt was cut short, so it is not spent. The
		// delivery is due again at once and the scheduler republishes it.
		releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		w.release(releaseCtx, job, time.Now())
		w.guard.Release(releaseCtx, adm)
		return
	}
	res.Attempt.Instance = w.cfg.Instance
	outcome := w.decide(job, res)
	attempt := outcome.Attempt()
	w.metrics.observe(attempt, outcome.Status())
	if span.IsRecording() {
		span.SetAttributes(attrStatus.String(string(outcome.Status())))
		endSpan(span, attempt)
	}

	err := w.record(ctx, outcome)
	if errors.Is(err, domain.ErrNotFound) {
		// Deleted while the attempt was in flight: its circuit and metric
		// series go with it, and this outcome must not bring them back.
		w.guard.Release(ctx, adm)
		w.guard.Drop(job.SubscriptionID)
		log.Info("attempt made for a deleted subscription", "result", describe(attempt))
		return
	}
	w.guard.Done(ctx, adm, res.Attempt.Succeeded())
	if err != nil {
		// The claim's lease runs out and the delivery is picked up again:
		// at-least-once, never lost.
		log.Error("attempt made but not recorded", "result", describe(attempt), "err", err)
		return
	}
	log.Info("attempt recorded", "result", describe(attempt), "status", outcome.Status(), "duration_ms", attempt.Duration.Milliseconds())
	if gone(attempt) {
		// The receiver says the endpoint is retired for good: stop sending.
		if err := w.store.DisableSubscription(context.WithoutCancel(ctx), job.SubscriptionID, goneReason); err != nil {
			log.Error("could not disable subscription after 410 Gone", "err", err)
		} else {
			log.Warn("subscription disabled", "reason", goneReason)
		}
	}
}

// maxDeferred bounds the claimed deliveries a worker keeps waiting in
// memory for their destination's limits; past it, they wait in the database.
const maxDeferred = 10_000

// shortWait is the longest a refused delivery waits in memory; longer waits
// (an open circuit) go through the database and the retry scheduler.
const shortWait = 2 * time.Second

// postpone handles a claimed delivery its destination's limits refused: no
// attempt is spent and no consumer slot is held. A short wait keeps the
// claim in memory and tries again when it ends (if the worker dies
// meanwhile, the claim's lease lapses and the delivery is taken over); a long
// one gives the claim back, due when the wait ends.
//
// A claim is held in memory for at most half the lease margin in all, so
// that holding it plus one attempt's timeout ends before the lease does: a
// lapsed lease lets another worker take the delivery, and two holders would
// both send it.
func (w *Worker) postpone(ctx context.Context, job store.Job, claimed time.Time, adm resilience.Admission) {
	wait := adm.RetryAfter + spread(adm.RetryAfter)
	held := time.Since(claimed) + wait
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		span.AddEvent("postponed", trace.WithAttributes(attribute.String("dispatch.reason", string(adm.Reason)), attribute.String("dispatch.wait", wait.String())))
	}
	// The attempt after a short wait stays in this message's trace.
	later := trace.ContextWithSpanContext(context.Background(), span.SpanContext())
	if wait <= shortWait && held <= w.cfg.LeaseMargin/2 &&
		w.deferred.add(job, wait, func() { w.attempt(later, job, claimed) }) {
		return
	}
	w.release(ctx, job, time.Now().Add(wait))
}

// release gives a claim back without spending its attempt.
func (w *Worker) release(ctx context.Context, job store.Job, at time.Time) {
	if err := w.store.ReleaseDelivery(context.WithoutCancel(ctx), job.DeliveryID, job.Attempt, at); err != nil {
		w.log.Warn("could not give back a claim; its lease will lapse", "event_id", job.Event.ID, "subscription_id", job.SubscriptionID, "err", err)
	}
}

// spread adds up to half the wait again, at least 50 ms, so deliveries
// refused together do not all come back in the same instant.
func spread(wait time.Duration) time.Duration {
	return mrand.N(max(wait/2, 50*time.Millisecond))
}

// Close gives back the claims still waiting in memory, due at once, so the
// retry scheduler republishes them.
func (w *Worker) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, job := range w.deferred.stop() {
		w.release(ctx, job, time.Now())
	}
}

func gone(a domain.Attempt) bool { return a.StatusCode != nil && *a.StatusCode == http.StatusGone }

// decide turns an attempt into the delivery's next status.
func (w *Worker) decide(job store.Job, res Result) store.Outcome {
	a := res.Attempt
	if a.Succeeded() {
		return store.Delivered(a)
	}
	if gone(a) || a.ErrorClass == domain.ErrorBlocked {
		// Permanent: the endpoint is retired, or may never be reached.
		return store.Failed(a)
	}
	next := w.policy(job.Settings).After(a.Number, time.Now(), res.RetryAfter)
	if !next.Retry {
		return store.Failed(a)
	}
	return store.Retrying(a, next.At)
}

// policy is the worker's retry policy with the subscription's overrides.
func (w *Worker) policy(s domain.DeliverySettings) retry.Policy {
	p := w.cfg.Retry
	if s.MaxAttempts > 0 {
		p.MaxAttempts = s.MaxAttempts
	}
	if s.RetryBaseDelay > 0 {
		p.BaseDelay = s.RetryBaseDelay
	}
	if s.RetryMaxDelay > 0 {
		p.MaxDelay = s.RetryMaxDelay
	}
	p.MaxDelay = max(p.MaxDelay, p.BaseDelay)
	return p
}

// record stores the outcome, retrying while the database is unreachable
// for as long as the claim's lease lasts. It runs even while the worker is
// stopping: the attempt was made and must not be forgotten. A deleted
// delivery is domain.ErrNotFound.
func (w *Worker) record(ctx context.Context, o store.Outcome) error {
	ctx = context.WithoutCancel(ctx)
	deadline := time.Now().Add(w.cfg.LeaseMargin)
	backoff := 50 * time.Millisecond
	for {
		err := w.store.RecordAttempt(ctx, o)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, domain.ErrNotClaimable):
			// Another worker took over a lapsed claim: the attempt is as
			// recorded as it can be.
			return nil
		case errors.Is(err, domain.ErrNotFound):
			return err
		case time.Now().After(deadline):
			return fmt.Errorf("record attempt: %w", err)
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, 2*time.Second)
	}
}

// forgetInterval is how often the worker drops what it holds about
// subscriptions deleted through another process's API.
const forgetInterval = time.Minute

// ForgetDeleted runs until ctx ends, dropping the circuit state and metric
// series this worker holds for subscriptions that no longer exist. An
// attempt in flight at the deletion drops them at once; this catches the
// subscriptions deleted while none was.
func (w *Worker) ForgetDeleted(ctx context.Context) error {
	t := time.NewTicker(forgetInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.forgetDeleted(ctx)
		}
	}
}

func (w *Worker) forgetDeleted(ctx context.Context) {
	observed := w.guard.Observed()
	if len(observed) == 0 {
		return
	}
	existing, err := w.store.ExistingSubscriptions(ctx, observed)
	if err != nil {
		w.log.Warn("could not check for deleted subscriptions", "err", err)
		return
	}
	for _, id := range observed {
		if !slices.Contains(existing, id) {
			w.guard.Drop(id)
		}
	}
}
