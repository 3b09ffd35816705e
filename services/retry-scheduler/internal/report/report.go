// Package report tells operators what happens to destinations (ADR 0037):
// on each pass it reads the subscriptions that may have something to
// report, emits dispatch.subscription.failing at each threshold of
// AUTO_DISABLE_AFTER, disables a subscription that has failed for all of
// it, emits dispatch.subscription.disabled and .recovered, and reports
// each delivery that failed for good as dispatch.delivery.exhausted. The
// events are stored as ordinary events whose deliveries the scheduler's
// own pass publishes, so reporting never waits on Kafka nor on a worker.
package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// Store is the part of the data layer the reporter uses.
type Store interface {
	SubscriptionsToReport(ctx context.Context, after string, limit int) ([]store.SubscriptionHealth, error)
	ReportHealth(ctx context.Context, seen store.SubscriptionHealth, r store.HealthReport) error
	ReportExhausted(ctx context.Context, limit int, bySubscriptionTenant bool, now time.Time) (int, error)
}

// Config tunes a Reporter; zero fields take the defaults in brackets.
type Config struct {
	// AutoDisableAfter is how long every attempt of a subscription may
	// fail before it is disabled; the failing thresholds are shares of it.
	// Zero reports no failing subscription and disables none.
	AutoDisableAfter time.Duration
	// BySubscriptionTenant stores each event in the tenant of the
	// subscription it is about instead of the default tenant.
	BySubscriptionTenant bool
	// Every is the wait between passes [5s].
	Every time.Duration
	// Batch is how many subscriptions, or failed deliveries, one read
	// takes [100].
	Batch int
	// Clock tells the time of the thresholds and times the waits
	// [clock.Real()].
	Clock  clock.Clock
	Logger *slog.Logger
	// Registerer receives the metrics; nil means the default registry.
	Registerer prometheus.Registerer
}

// Reporter emits operational events. Several may run at once: each report
// is made in a transaction that first checks the subscription is still as
// read, and each event's id is a function of what it reports.
type Reporter struct {
	store  Store
	cfg    Config
	events *prometheus.CounterVec
}

// New returns a Reporter.
func New(st Store, cfg Config) *Reporter {
	if cfg.Every <= 0 {
		cfg.Every = 5 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
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
	r := &Reporter{store: st, cfg: cfg, events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dispatch_operational_events_total",
		Help: "Operational events stored by this scheduler, by type (dispatch.subscription.failing, .disabled, .recovered, dispatch.delivery.exhausted).",
	}, []string{"type"})}
	cfg.Registerer.MustRegister(r.events)
	for _, typ := range domain.OperationalTypes {
		r.events.WithLabelValues(typ)
	}
	return r
}

// Run makes a pass every Every until ctx ends.
func (r *Reporter) Run(ctx context.Context) error {
	for {
		if err := r.Pass(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("operational events pass failed; trying again next pass", "err", err)
		}
		if !clock.Sleep(ctx, r.cfg.Clock, r.cfg.Every) {
			return nil
		}
	}
}

// Pass reports every subscription with something to report, then every
// delivery that failed for good.
func (r *Reporter) Pass(ctx context.Context) error {
	after := ""
	for {
		subs, err := r.store.SubscriptionsToReport(ctx, after, r.cfg.Batch)
		if err != nil {
			return err
		}
		for _, h := range subs {
			if err := r.reportOne(ctx, h); err != nil {
				return err
			}
		}
		if len(subs) < r.cfg.Batch {
			break
		}
		after = subs[len(subs)-1].ID
	}
	for {
		n, err := r.store.ReportExhausted(ctx, r.cfg.Batch, r.cfg.BySubscriptionTenant, r.cfg.Clock.Now())
		if err != nil {
			return err
		}
		r.events.WithLabelValues(domain.OpDeliveryExhausted).Add(float64(n))
		if n < r.cfg.Batch {
			return nil
		}
	}
}

// reportOne reports what assess finds about h.
func (r *Reporter) reportOne(ctx context.Context, h store.SubscriptionHealth) error {
	now := r.cfg.Clock.Now()
	p := assess(h, now, r.cfg.AutoDisableAfter)
	if p.empty() {
		return nil
	}
	var emitted []string
	err := r.store.ReportHealth(ctx, h, store.HealthReport{
		AlertSince: p.since, AlertLevel: p.level, Disable: p.disable, DisableReason: p.reason,
		Events: func(open int64) ([]domain.Event, error) {
			events, err := r.build(h, p, now, open)
			emitted = emitted[:0]
			for _, e := range events {
				emitted = append(emitted, e.Type)
			}
			return events, err
		},
	})
	if errors.Is(err, store.ErrHealthChanged) {
		// Changed since it was read; the next pass reads it again.
		return nil
	}
	if err != nil {
		return err
	}
	for _, typ := range emitted {
		r.events.WithLabelValues(typ).Inc()
	}
	if p.disable {
		r.cfg.Logger.Warn("subscription disabled: every attempt failed for AUTO_DISABLE_AFTER",
			"subscription_id", h.ID, "failing_since", h.FailingSince, "auto_disable_after", r.cfg.AutoDisableAfter)
	}
	return nil
}

// plan is what to report about one subscription, and the report state it
// leaves behind.
type plan struct {
	// thresholds are the failing thresholds newly crossed, lowest first.
	thresholds []int
	// disable disables the subscription now (AUTO_DISABLE_AFTER passed).
	disable bool
	// disabled reports a subscription found disabled (by a 410 Gone).
	disabled bool
	// recovered reports that the failing period reported on ended.
	recovered bool
	// reason is why the subscription is disabled (disable, disabled).
	reason string
	// level and since are the report state to store.
	level int
	since *time.Time
}

func (p plan) empty() bool {
	return len(p.thresholds) == 0 && !p.disable && !p.disabled && !p.recovered
}

// sameTime reports whether a and b are both nil or the same instant.
func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// assess decides what to report about h at now, given AUTO_DISABLE_AFTER.
// It is a pure function of them, so every path is table-tested.
func assess(h store.SubscriptionHealth, now time.Time, after time.Duration) plan {
	switch h.State {
	case domain.SubscriptionDisabled:
		if h.AlertLevel < domain.OpDisabledLevel {
			return plan{disabled: true, reason: h.StateReason, level: domain.OpDisabledLevel, since: h.FailingSince}
		}
		return plan{}
	case domain.SubscriptionActive:
	default:
		// Paused: not attempted, so nothing happens to report.
		return plan{}
	}
	if h.AlertLevel > 0 && !sameTime(h.FailingSince, h.AlertSince) {
		// The period reported on ended with a success; a period that
		// began since is assessed on the next pass, from level 0.
		return plan{recovered: true, level: 0, since: nil}
	}
	if h.FailingSince == nil || after <= 0 {
		return plan{}
	}
	p := plan{level: h.AlertLevel, since: h.FailingSince}
	failed := now.Sub(*h.FailingSince)
	for _, th := range domain.OpThresholds {
		if th > h.AlertLevel && failed >= after*time.Duration(th)/100 {
			p.thresholds = append(p.thresholds, th)
			p.level = th
		}
	}
	if failed >= after {
		p.disable, p.level = true, domain.OpDisabledLevel
		p.reason = fmt.Sprintf("every attempt failed for %s since %s (AUTO_DISABLE_AFTER)", after, h.FailingSince.UTC().Format(time.RFC3339))
	}
	if p.empty() {
		return plan{}
	}
	return p
}

// build makes the events p reports about h; open is the number of its
// open deliveries, read when the report is stored.
func (r *Reporter) build(h store.SubscriptionHealth, p plan, now time.Time, open int64) ([]domain.Event, error) {
	base := domain.OperationalData{
		SubscriptionID: h.ID, TenantID: h.TenantID, URL: domain.RedactURL(h.URL),
		FailingSince: utc(h.FailingSince), OccurredAt: now.UTC(),
	}
	period := ""
	if h.FailingSince != nil {
		period = domain.PeriodKey(*h.FailingSince)
	}
	var (
		events []domain.Event
		datas  []domain.OperationalData
		kinds  [][]string // each event's type, then its id's parts
	)
	add := func(typ string, d domain.OperationalData, parts ...string) {
		datas = append(datas, d)
		kinds = append(kinds, append([]string{typ}, parts...))
	}
	for _, th := range p.thresholds {
		d := base
		d.ThresholdPercent = th
		d.AutoDisableAfterSeconds = int64(r.cfg.AutoDisableAfter / time.Second)
		at := h.FailingSince.Add(r.cfg.AutoDisableAfter).UTC()
		d.DisableAt = &at
		d.OpenDeliveries = &open
		d.Reason = fmt.Sprintf("every attempt failed since %s: %d%% of AUTO_DISABLE_AFTER (%s)", h.FailingSince.UTC().Format(time.RFC3339), th, r.cfg.AutoDisableAfter)
		add(domain.OpSubscriptionFailing, d, h.ID, strconv.Itoa(th), period)
	}
	if p.disable || p.disabled {
		d := base
		d.Reason = p.reason
		d.OpenDeliveries = &open
		if p.disable {
			d.AutoDisableAfterSeconds = int64(r.cfg.AutoDisableAfter / time.Second)
		}
		add(domain.OpSubscriptionDisabled, d, h.ID, period)
	}
	if p.recovered {
		d := base
		d.FailingSince = utc(h.AlertSince)
		d.Reason = "an attempt succeeded after the subscription was reported failing"
		recoveredPeriod := ""
		if h.AlertSince != nil {
			recoveredPeriod = domain.PeriodKey(*h.AlertSince)
		}
		add(domain.OpSubscriptionRecovered, d, h.ID, recoveredPeriod)
	}
	tenant := domain.DefaultTenant
	if r.cfg.BySubscriptionTenant {
		tenant = h.TenantID
	}
	for i, d := range datas {
		data, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("operational event data: %w", err)
		}
		typ := kinds[i][0]
		events = append(events, domain.Event{
			ID: domain.OperationalEventID(typ, kinds[i][1:]...), Type: typ, TenantID: tenant,
			Source: store.OperationalSource, Data: data,
		})
	}
	return events, nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
