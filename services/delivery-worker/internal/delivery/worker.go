// Package delivery is the delivery worker's core. For each queued message
// it claims the delivery in PostgreSQL, takes one of this worker's slots
// for the destination, asks the destination's limits for admission, sends
// the signed POST, and stores the attempt with the delivery's next status,
// in that order, before the message's offset may be committed. Claims,
// admissions and outcomes of concurrent messages are grouped into one
// statement or one Redis round trip each (ADR 0025).
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/groupcommit"
	"github.com/dispatch-webhooks/dispatch/libs/queue"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/retry"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// Store is the part of the data layer the worker uses.
type Store interface {
	ClaimDeliveries(ctx context.Context, ids []int64, defaultTimeout, margin time.Duration) ([]store.Claim, error)
	ApplyOutcomes(ctx context.Context, outcomes []store.Outcome) ([]store.Applied, error)
	MarkUnpublished(ctx context.Context, ids ...int64) error
	ExistingSubscriptions(ctx context.Context, ids []string) ([]string, error)
}

// Guard admits deliveries under their destination's rate and concurrency
// limits and the subscription's circuit breaker (see libs/resilience).
type Guard interface {
	AdmitBatch(ctx context.Context, reqs []resilience.AdmitRequest) []resilience.Admission
	FinishBatch(ctx context.Context, fs []resilience.Finished)
	// Throttled counts a delivery postponed by the worker itself.
	Throttled(reason resilience.Reason)
	// Drop and Observed let the worker forget deleted subscriptions.
	Drop(subID string)
	Observed() []string
}

// Poster makes one attempt of a delivery: what the worker needs of a
// *Sender, so that the worker's own tests answer attempts without an HTTP
// server and the Sender's tests need no worker.
type Poster interface {
	// Send attempts job once within timeout, written within turn, and
	// describes what happened; every failure is an attempt outcome.
	Send(ctx context.Context, job store.Job, timeout time.Duration, turn Turn) Result
	// Now reads the clock turns are on.
	Now() time.Time
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
	// DestinationSlots bounds the deliveries this worker has in flight to
	// one destination; zero or less means no bound.
	DestinationSlots int
	// Retry is the default schedule; subscriptions may override parts of it.
	Retry retry.Policy
	// Instance names this worker in the attempts it records.
	Instance string
	// Clock tells the time and waits; nil means the system clock.
	Clock  clock.Clock
	Logger *slog.Logger
	// Registerer receives the worker's metrics; nil means the default registry.
	Registerer prometheus.Registerer
	// TracerProvider traces each attempt; nil means OpenTelemetry's global
	// provider, a no-op unless tracing is on.
	TracerProvider trace.TracerProvider
}

// Worker delivers queued messages.
type Worker struct {
	cfg     Config
	clock   clock.Clock
	sender  Poster
	store   Store
	guard   Guard
	slots   *slots
	log     *slog.Logger
	metrics *metrics
	tracer  trace.Tracer

	claims   *groupcommit.Group[int64, store.Job]
	outcomes *groupcommit.Group[store.Outcome, *store.DeliveryRef]
	admits   *groupcommit.Group[resilience.AdmitRequest, admission]
	finishes *groupcommit.Group[resilience.Finished, struct{}]
}

// Group sizes: one statement or pipeline serves up to groupSize calls,
// and up to this many groups run at once. One PostgreSQL statement at a
// time each for claims and outcomes gives larger groups and less
// contention than two (ADR 0025).
const (
	groupSize        = 64
	storeGroups      = 1
	redisGroups      = 2
	memoryWait       = time.Second
	shortWait        = 2 * time.Second
	recordBackoffMax = 2 * time.Second
)

// NewWorker returns a Worker. Its Handle method is a queue.Handler.
func NewWorker(st Store, sender Poster, guard Guard, cfg Config) *Worker {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.DefaultRegisterer
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	w := &Worker{cfg: cfg, clock: cfg.Clock, store: st, sender: sender, guard: guard, log: cfg.Logger,
		metrics: newMetrics(cfg.Registerer), tracer: tracerOf(cfg.TracerProvider),
		slots: newSlots(cfg.Clock, cfg.DestinationSlots, memoryWait, shortWait)}
	w.claims = groupcommit.New(groupSize, storeGroups, func(ctx context.Context, ids []int64) []groupcommit.Result[store.Job] {
		claims, err := st.ClaimDeliveries(ctx, ids, cfg.Timeout, cfg.LeaseMargin)
		if err != nil {
			return groupcommit.Each[store.Job](len(ids), err)
		}
		res := make([]groupcommit.Result[store.Job], len(claims))
		for i, c := range claims {
			res[i] = groupcommit.Result[store.Job]{Value: c.Job, Err: c.Err}
		}
		return res
	})
	w.outcomes = groupcommit.New(groupSize, storeGroups, func(ctx context.Context, os []store.Outcome) []groupcommit.Result[*store.DeliveryRef] {
		applied, err := st.ApplyOutcomes(ctx, os)
		if err != nil {
			return groupcommit.Each[*store.DeliveryRef](len(os), err)
		}
		res := make([]groupcommit.Result[*store.DeliveryRef], len(applied))
		for i, a := range applied {
			res[i] = groupcommit.Result[*store.DeliveryRef]{Value: a.Next, Err: a.Err}
		}
		return res
	})
	w.admits = groupcommit.New(groupSize, redisGroups, func(ctx context.Context, reqs []resilience.AdmitRequest) []groupcommit.Result[admission] {
		res := make([]groupcommit.Result[admission], len(reqs))
		// The turns count from the call, not from when each handler wakes
		// to read its answer: those wakes are spread over the group.
		asked := sender.Now()
		adms := guard.AdmitBatch(ctx, reqs)
		answered := sender.Now()
		for i, a := range adms {
			res[i].Value = admission{Admission: a, turn: turnOf(asked, answered, a.Delay)}
		}
		return res
	})
	w.finishes = groupcommit.New(groupSize, redisGroups, func(ctx context.Context, fs []resilience.Finished) []groupcommit.Result[struct{}] {
		guard.FinishBatch(ctx, fs)
		return make([]groupcommit.Result[struct{}], len(fs))
	})
	return w
}

// Handle claims, admits, attempts and records one delivery. It returns an
// error only when the database could not be reached before anything was
// claimed, so the queue offers the message again. Everything a delivery
// waits for in memory (a slot, a short refusal) it waits for inside
// Handle, so it counts against the consumer's DELIVERY_CONCURRENCY and a
// stopping consumer waits for it.
func (w *Worker) Handle(ctx context.Context, m queue.Message) error {
	job, err := w.claims.Do(ctx, m.DeliveryID)
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
	case err != nil:
		return err
	}
	next, reported := w.attempt(ctx, job)
	w.follow(ctx, next, reported)
	return nil
}

// follow claims and attempts, one after another, the deliveries that
// attempts released: the next event of an ordering key goes from the
// handler that finished the one before it, without a round through Kafka
// (ADR 43). It ends at a delivery that is not final yet (its retry waits),
// or at the end of the key. reported closes once the destination's limits
// have the report of the attempt that released next.
func (w *Worker) follow(ctx context.Context, next *store.DeliveryRef, reported <-chan struct{}) {
	for next != nil {
		if ctx.Err() != nil {
			// Stopping: the retry scheduler publishes it on its next pass.
			if err := w.store.MarkUnpublished(context.WithoutCancel(ctx), next.ID); err != nil {
				w.log.Warn("could not hand a released delivery back; it is published once it looks stranded",
					"event_id", next.EventID, "subscription_id", next.SubscriptionID, "err", err)
			}
			return
		}
		job, err := w.claims.Do(ctx, next.ID)
		// The next admission waits for the report before it: a limit of
		// one request at a time must see the last one finished.
		<-reported
		if err != nil {
			// Taken by another worker, its subscription paused, or the
			// database out of reach: the delivery is due and marked
			// published, so the retry scheduler's sweep finds it if no
			// one else does.
			w.log.Debug("released delivery not claimed", "event_id", next.EventID, "subscription_id", next.SubscriptionID, "err", err)
			return
		}
		next, reported = w.attempt(ctx, job)
	}
}

// attempt takes a slot, waits for admission, sends and records one claimed
// delivery, and returns the delivery its outcome released (the next of
// its ordering key), if any, with a channel that closes once the
// destination's limits have the attempt's report (report). A claim is
// held in memory for at most half the lease margin, so that holding it
// plus one attempt's timeout ends before the lease does: a lapsed lease
// lets another worker take the delivery, and two holders would both send
// it.
func (w *Worker) attempt(ctx context.Context, job store.Job) (*store.DeliveryRef, <-chan struct{}) {
	claimed := w.clock.Now()
	timeout := w.cfg.Timeout
	if job.Settings.Timeout > 0 {
		timeout = job.Settings.Timeout
	}
	target := resilience.TargetOf(job.SubscriptionID, job.URL, job.SubscriptionCreatedAt)

	sl, at, ok, err := w.slots.acquire(ctx, target.Destination)
	if err != nil {
		w.giveBack(ctx, job, w.clock.Now(), "stopping")
		return nil, nil
	}
	if !ok {
		w.guard.Throttled(resilience.DestinationBusy)
		w.giveBack(ctx, job, at, string(resilience.DestinationBusy))
		return nil, nil
	}
	// The slot is the destination's, so it is given back as soon as the
	// request is done, not after the outcome is stored.
	var slotDone bool
	releaseSlot := func() {
		if !slotDone {
			slotDone = true
			w.slots.release(sl)
		}
	}
	defer releaseSlot()

	req := resilience.AdmitRequest{Target: target, Limits: resilience.Limits{RatePerSecond: job.Settings.RatePerSecond, MaxConcurrency: job.Settings.MaxConcurrency}, Timeout: timeout}
	var (
		adm     admission
		res     Result
		sendCtx context.Context
	)
	for {
		adm, _ = w.admits.Do(context.WithoutCancel(ctx), req)
		if adm.Allowed {
			sendCtx, res = w.send(ctx, job, timeout, sl, adm)
			if !res.Late {
				break
			}
			// Missed its turn, so nothing was written: like a refusal, it
			// spends no attempt, and it asks at once for a new turn, the
			// wait being the pace's (ADR 29).
			w.finish(ctx, adm.Admission, false, false)
			w.guard.Throttled(resilience.RateLimited)
			if now := w.clock.Now(); now.Sub(claimed) > w.cfg.LeaseMargin/2 {
				w.giveBack(ctx, job, now, string(resilience.RateLimited))
				return nil, nil
			}
			continue
		}
		if adm.Reason != resilience.RateLimited {
			w.slots.waitsOnDest(sl, w.clock.Now())
		}
		wait := adm.RetryAfter + spread(adm.RetryAfter)
		span := trace.SpanFromContext(ctx)
		if span.IsRecording() {
			span.AddEvent("postponed", trace.WithAttributes(attribute.String("dispatch.reason", string(adm.Reason)), attribute.String("dispatch.wait", wait.String())))
		}
		now := w.clock.Now()
		if wait > shortWait || now.Sub(claimed)+wait > w.cfg.LeaseMargin/2 {
			w.giveBack(ctx, job, now.Add(wait), string(adm.Reason))
			return nil, nil
		}
		select {
		case <-w.clock.After(wait):
		case <-ctx.Done():
			w.giveBack(ctx, job, w.clock.Now(), "stopping")
			return nil, nil
		}
	}

	ctx = sendCtx
	span := trace.SpanFromContext(ctx)
	defer span.End()
	releaseSlot()
	if ctx.Err() != nil {
		// Stopping: the attempt was cut short, so it is not spent. The
		// delivery is due again at once and the scheduler republishes it.
		span.SetStatus(codes.Error, "cut short: the worker is stopping; the attempt is not spent")
		w.giveBack(ctx, job, w.clock.Now(), "stopping")
		w.finish(ctx, adm.Admission, false, false)
		return nil, nil
	}
	res.Attempt.Instance = w.cfg.Instance
	policy := policyFor(w.cfg.Retry, job.Settings)
	outcome := decide(policy, res.Attempt, res.RetryAfter, w.clock.Now(), policy.Delay(res.Attempt.Number))
	if domain.IsOperationalType(job.Event.Type) {
		// An operator's endpoint that fails to take operational events
		// must not be reported failing through them (ADR 0037).
		outcome = outcome.Operational()
	}
	if job.Ordered {
		outcome = outcome.InOrder()
	}
	attempt := outcome.Attempt()
	w.metrics.observe(attempt, outcome.Status())
	if span.IsRecording() {
		span.SetAttributes(attrStatus.String(string(outcome.Status())))
		endSpan(span, attempt)
	}

	next, err := w.apply(ctx, outcome)
	if errors.Is(err, domain.ErrNotFound) {
		// Deleted while the attempt was in flight: its circuit and metric
		// series go with it, and this outcome must not bring them back.
		w.finish(ctx, adm.Admission, false, false)
		w.guard.Drop(job.SubscriptionID)
		w.logJob(ctx, slog.LevelInfo, job, "attempt made for a deleted subscription", "result", describe(attempt))
		return nil, nil
	}
	reported := w.report(ctx, adm.Admission, attempt.Succeeded(), next != nil)
	if err != nil {
		// The claim's lease runs out and the delivery is picked up again:
		// at-least-once, never lost.
		w.logJob(ctx, slog.LevelError, job, "attempt made but not recorded", "result", describe(attempt), "err", err)
		return nil, nil
	}
	// A delivered attempt is a debug line: the attempt is stored and
	// counted, and a line each costs the worker about a tenth of its
	// throughput (ADR 27). Anything else is worth an operator's eye.
	level := slog.LevelInfo
	if outcome.Kind() == store.OutcomeDelivered {
		level = slog.LevelDebug
	}
	if w.log.Enabled(ctx, level) {
		w.logJob(ctx, level, job, "attempt recorded", "result", describe(attempt), "status", outcome.Status(), "duration_ms", float64(attempt.Duration.Microseconds())/1000)
	}
	if outcome.Kind() == store.OutcomeGone {
		w.logJob(ctx, slog.LevelWarn, job, "subscription disabled", "reason", goneReason)
	}
	return next, reported
}

// send makes the attempt of an admitted delivery in a span of its own,
// returned in the context; the caller ends it unless the request missed
// its turn.
func (w *Worker) send(ctx context.Context, job store.Job, timeout time.Duration, sl slot, adm admission) (context.Context, Result) {
	// The request goes at its turn in the destination's pace: until then
	// the slot waits on the pace, not on the destination.
	w.slots.waitsOnDest(sl, w.clock.Now().Add(adm.turn.At.Sub(w.sender.Now())))
	ctx, span := w.tracer.Start(ctx, "delivery attempt")
	if span.IsRecording() {
		span.SetAttributes(jobAttrs(job)...)
	}
	res := w.sender.Send(ctx, job, timeout, adm.turn)
	if res.Late {
		span.SetStatus(codes.Error, missedTurn)
		span.End()
	}
	return ctx, res
}

// missedTurn is the status of an attempt span whose request missed its
// turn: it ends without the request having been sent.
const missedTurn = "missed its turn; not sent, the delivery asks for a new one"

// admission is an answer of the destination's limits with its turn: when
// its request is to be written. The turn is on the sender's clock,
// whatever clock the worker waits on.
type admission struct {
	resilience.Admission
	turn Turn
}

// logJob writes a line about a claimed delivery, led by its stable keys.
// The keys are added per line rather than by a logger made per attempt,
// since most attempts write none.
func (w *Worker) logJob(ctx context.Context, level slog.Level, job store.Job, msg string, args ...any) {
	w.log.Log(ctx, level, msg, append([]any{"event_id", job.Event.ID, "subscription_id", job.SubscriptionID, "attempt", job.Attempt}, args...)...)
}

// giveBack returns a claim without spending its attempt, due at `at`.
func (w *Worker) giveBack(ctx context.Context, job store.Job, at time.Time, why string) {
	if _, err := w.apply(ctx, store.Released(job.DeliveryID, job.Attempt, at)); err != nil && !errors.Is(err, domain.ErrNotFound) {
		w.log.Warn("could not give back a claim; its lease will lapse", "event_id", job.Event.ID, "subscription_id", job.SubscriptionID, "reason", why, "err", err)
	}
}

// report tells the destination's limits how a recorded attempt went, and
// returns a channel that closes once they have it. When a released
// delivery follows (ADR 43) it reports in the background while the
// handler claims that one: a hot ordering key then waits for one round
// trip fewer per event.
func (w *Worker) report(ctx context.Context, adm resilience.Admission, success, background bool) <-chan struct{} {
	if !background {
		w.finish(ctx, adm, true, success)
		return reportedAlready
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.finish(ctx, adm, true, success)
	}()
	return done
}

// reportedAlready is report's answer when it reported before returning:
// closed once, shared, so the unordered path makes no channel per attempt.
var reportedAlready = func() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func (w *Worker) finish(ctx context.Context, adm resilience.Admission, report, success bool) {
	_, _ = w.finishes.Do(context.WithoutCancel(ctx), resilience.Finished{Admission: adm, Report: report, Success: success})
}

// spread adds up to half the wait again, at least 50 ms, so deliveries
// refused together do not all come back in the same instant.
func spread(wait time.Duration) time.Duration {
	return mrand.N(max(wait/2, 50*time.Millisecond)) //nolint:gosec // G404: jitter needs spread, not secrecy
}

// apply stores an outcome: the one place the worker writes a delivery's
// state. While the database is unreachable it tries again, backing off,
// for as long as the claim's lease lasts; it runs even while the worker is
// stopping, because an attempt that was made must not be forgotten. A
// claim another worker took over after its lease lapsed counts as applied
// (the attempt is stored all the same); a deleted delivery is
// domain.ErrNotFound. It returns the delivery the outcome released, if
// any (store.Applied).
func (w *Worker) apply(ctx context.Context, o store.Outcome) (*store.DeliveryRef, error) {
	ctx = context.WithoutCancel(ctx)
	deadline := w.clock.Now().Add(w.cfg.LeaseMargin)
	backoff := 50 * time.Millisecond
	for {
		next, err := w.outcomes.Do(ctx, o)
		switch {
		case err == nil, errors.Is(err, domain.ErrNotClaimable):
			return next, nil
		case errors.Is(err, domain.ErrNotFound):
			return nil, err
		case w.clock.Now().After(deadline):
			return nil, fmt.Errorf("store %s: %w", o, err)
		}
		<-w.clock.After(backoff)
		backoff = min(backoff*2, recordBackoffMax)
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
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.clock.After(forgetInterval):
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
