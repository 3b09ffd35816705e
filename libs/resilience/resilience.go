// Package resilience protects each destination: a sliding-window rate
// limit, a circuit breaker and a concurrency limit per subscription, held
// in Redis so they hold across any number of workers. Each check is one
// atomic Lua script on Redis' clock. When Redis cannot be reached, an
// in-process equivalent takes over (limits then hold per worker), the
// switch is logged once and shown by dispatch_resilience_fallback, and
// Redis is used again as soon as it answers.
package resilience

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Reason says why a delivery may not go now.
type Reason string

// Denial reasons, in the order they are checked.
const (
	RateLimited        Reason = "rate_limited"
	CircuitOpen        Reason = "circuit_open"
	ConcurrencyLimited Reason = "concurrency_limited"
)

// State is a circuit breaker's state.
type State string

// Circuit states; the gauge dispatch_circuit_breaker_state shows them as 0, 1, 2.
const (
	Closed   State = "closed"
	HalfOpen State = "half_open"
	Open     State = "open"
)

func (s State) gauge() float64 {
	switch s {
	case HalfOpen:
		return 1
	case Open:
		return 2
	default:
		return 0
	}
}

// Config tunes a Guard. Zero fields take the defaults in brackets.
type Config struct {
	// Prefix starts every Redis key ["dispatch"].
	Prefix string
	// RatePerSecond is the default rate limit [100].
	RatePerSecond int
	// MaxConcurrency is the default concurrency limit [100].
	MaxConcurrency int
	// FailureThreshold consecutive failures open the circuit [5].
	FailureThreshold int
	// OpenFor is how long an open circuit refuses before half-opening [30s].
	OpenFor time.Duration
	// HalfOpenTrials requests are let through half-open; as many successes
	// close it, one failure reopens it [3].
	HalfOpenTrials int
	// PermitTTL is the least time a concurrency permit lives if never
	// released (its worker crashed) [30s].
	PermitTTL time.Duration
	// RetryRedisAfter is how long to stay on the local fallback after a
	// Redis error before trying Redis again [1s].
	RetryRedisAfter time.Duration
	Logger          *slog.Logger
	// Registerer receives the metrics; nil means the default registry.
	Registerer prometheus.Registerer
}

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.Prefix == "" {
		c.Prefix = "dispatch"
	}
	def(&c.RatePerSecond, 100)
	def(&c.MaxConcurrency, 100)
	def(&c.FailureThreshold, 5)
	def(&c.HalfOpenTrials, 3)
	defDur(&c.OpenFor, 30*time.Second)
	defDur(&c.PermitTTL, 30*time.Second)
	defDur(&c.RetryRedisAfter, time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.DefaultRegisterer
	}
}

// Limits are one subscription's own limits; zero fields take the defaults.
type Limits struct {
	RatePerSecond  int
	MaxConcurrency int
}

// Admission is the answer to "may this delivery go now?".
type Admission struct {
	Allowed bool
	// Reason and RetryAfter say why not and when to ask again.
	Reason     Reason
	RetryAfter time.Duration

	subscriptionID string
	permit         string
	trial          bool
	local          bool
	ttl            time.Duration
}

// Guard admits deliveries and learns from their outcomes.
type Guard struct {
	rdb   redis.UniversalClient
	cfg   Config
	local *local

	mu        sync.Mutex
	downUntil time.Time
	down      bool

	metrics *metrics
}

// New returns a Guard on rdb; rdb may be nil to use only the in-process limits.
func New(rdb redis.UniversalClient, cfg Config) *Guard {
	cfg.defaults()
	return &Guard{rdb: rdb, cfg: cfg, local: newLocal(cfg), metrics: newMetrics(cfg.Registerer)}
}

func (g *Guard) key(subID, kind string) string {
	return fmt.Sprintf("%s:{%s}:%s", g.cfg.Prefix, subID, kind)
}

// useRedis reports whether to try Redis now.
func (g *Guard) useRedis() bool {
	if g.rdb == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.down || time.Now().After(g.downUntil)
}

// redisResult records whether a Redis call worked, switching to or from
// the fallback and saying so once per switch.
func (g *Guard) redisResult(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case err != nil && !g.down:
		g.down = true
		g.metrics.fallback.Set(1)
		g.cfg.Logger.Warn("redis unreachable: per-destination limits now hold per worker until it is back", "err", err)
	case err == nil && g.down:
		g.down = false
		g.metrics.fallback.Set(0)
		g.cfg.Logger.Info("redis reachable again: per-destination limits are shared again")
	}
	if err != nil {
		g.downUntil = time.Now().Add(g.cfg.RetryRedisAfter)
	}
}

// Admit checks rate limit, then circuit breaker, then concurrency for one
// delivery. It never blocks on a busy destination and never fails: without
// Redis it decides in-process. timeout is the attempt's timeout; a permit
// outlives it so that a slow attempt keeps its slot. An allowed admission
// must be passed to Done.
func (g *Guard) Admit(ctx context.Context, subID string, limits Limits, timeout time.Duration) Admission {
	rate, conc := limits.RatePerSecond, limits.MaxConcurrency
	if rate <= 0 {
		rate = g.cfg.RatePerSecond
	}
	if conc <= 0 {
		conc = g.cfg.MaxConcurrency
	}
	a := Admission{subscriptionID: subID, ttl: max(g.cfg.PermitTTL, timeout+time.Second)}
	if g.useRedis() {
		err := g.admitRedis(ctx, &a, rate, conc)
		g.redisResult(err)
		if err == nil {
			g.count(a)
			return a
		}
		a = Admission{subscriptionID: subID, ttl: a.ttl}
	}
	a.local = true
	g.local.admit(&a, rate, conc)
	g.count(a)
	return a
}

func (g *Guard) count(a Admission) {
	if a.Allowed {
		return
	}
	g.metrics.throttled.WithLabelValues(string(a.Reason)).Inc()
	switch a.Reason {
	case RateLimited:
		g.metrics.rateRejections.Inc()
	case CircuitOpen:
		g.metrics.state.WithLabelValues(a.subscriptionID).Set(Open.gauge())
	}
}

func (g *Guard) admitRedis(ctx context.Context, a *Admission, rate, conc int) error {
	sub := a.subscriptionID
	permit := rand.Text()
	res, err := admitScript.Run(ctx, g.rdb,
		[]string{g.key(sub, "rate"), g.key(sub, "rate:seq"), g.key(sub, "circuit"), g.key(sub, "permits")},
		rate, 1000, g.cfg.OpenFor.Milliseconds(), g.cfg.HalfOpenTrials, circuitTTL.Milliseconds(),
		conc, a.ttl.Milliseconds(), permit).Int64Slice()
	if err != nil {
		return fmt.Errorf("admission: %w", err)
	}
	if res[0] == 1 {
		a.Allowed, a.permit, a.trial = true, permit, res[2] == 1
		if a.trial {
			g.metrics.state.WithLabelValues(sub).Set(HalfOpen.gauge())
		}
		return nil
	}
	switch res[1] {
	case 1:
		a.Reason, a.RetryAfter = RateLimited, time.Duration(res[2])*time.Millisecond
	case 2:
		a.Reason, a.RetryAfter = CircuitOpen, time.Duration(res[2])*time.Millisecond
	default:
		a.Reason, a.RetryAfter = ConcurrencyLimited, jitter(100*time.Millisecond, 500*time.Millisecond)
	}
	return nil
}

// circuitTTL lets a circuit untouched for a day (its subscription gone
// quiet or deleted) disappear from Redis.
const circuitTTL = 24 * time.Hour

// Done releases an allowed admission's permit and reports the attempt's
// outcome to the circuit breaker.
func (g *Guard) Done(ctx context.Context, a Admission, success bool) {
	g.finish(ctx, a, true, success)
}

// Release gives back an allowed admission that was not used (the worker is
// stopping): its permit is freed and nothing is reported to the circuit
// breaker.
func (g *Guard) Release(ctx context.Context, a Admission) {
	g.finish(ctx, a, false, false)
}

func (g *Guard) finish(ctx context.Context, a Admission, report, success bool) {
	if !a.Allowed {
		return
	}
	if a.local {
		if st, changed := g.local.done(a, report, success); changed {
			g.observeState(a.subscriptionID, st)
		}
		return
	}
	res, err := doneScript.Run(context.WithoutCancel(ctx), g.rdb,
		[]string{g.key(a.subscriptionID, "permits"), g.key(a.subscriptionID, "circuit")},
		a.permit, boolArg(report), boolArg(success), boolArg(a.trial),
		g.cfg.FailureThreshold, g.cfg.HalfOpenTrials, circuitTTL.Milliseconds()).Int64()
	switch res {
	case 1:
		g.observeState(a.subscriptionID, Open)
	case 2:
		g.observeState(a.subscriptionID, Closed)
	}
	// A permit that could not be released expires with its TTL.
	g.redisResult(err)
}

func (g *Guard) observeState(subID string, st State) {
	g.metrics.state.WithLabelValues(subID).Set(st.gauge())
	if st == Open {
		g.metrics.trips.WithLabelValues(subID).Inc()
		g.cfg.Logger.Warn("circuit opened", "subscription_id", subID, "open_for", g.cfg.OpenFor)
	}
}

// CircuitState returns a subscription's live circuit state as Redis holds
// it. Without Redis there is no shared state to report: this process's own
// view is returned when it has no Redis at all, an error when Redis fails.
func (g *Guard) CircuitState(ctx context.Context, subID string) (State, error) {
	if g.rdb == nil {
		return g.local.state(subID), nil
	}
	st, err := breakerStateScript.Run(ctx, g.rdb, []string{g.key(subID, "circuit")}, g.cfg.OpenFor.Milliseconds()).Text()
	if err != nil {
		return "", fmt.Errorf("circuit state of %q: %w", subID, err)
	}
	return State(st), nil
}

// Forget drops a subscription's shared state (rate window, circuit, permits),
// so that a subscription created later under the same id starts afresh.
func (g *Guard) Forget(ctx context.Context, subID string) error {
	g.local.forget(subID)
	if g.rdb == nil {
		return nil
	}
	err := g.rdb.Del(ctx, g.key(subID, "rate"), g.key(subID, "rate:seq"), g.key(subID, "circuit"), g.key(subID, "permits")).Err()
	g.redisResult(err)
	if err != nil {
		return fmt.Errorf("forget limits of %q: %w", subID, err)
	}
	return nil
}

func boolArg(b bool) int {
	if b {
		return 1
	}
	return 0
}

func jitter(lo, hi time.Duration) time.Duration { return lo + mrand.N(hi-lo) }
