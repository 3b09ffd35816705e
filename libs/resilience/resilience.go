// Package resilience protects each destination: a rate limit that paces
// its requests (each admitted with its turn, a second over the limit after
// the last, never more than the limit in any second ending at a turn) and
// a concurrency limit per destination (scheme, host and port,
// shared by every subscription that points there), a circuit breaker per
// subscription. (How many of one worker's slots a destination may hold is
// the worker's own business: see the delivery worker's slots.) The shared
// state is in Redis, so it holds across any number of workers; each check
// is one atomic Lua script on Redis' clock. When Redis cannot be reached,
// an in-process equivalent takes over (limits then hold per worker), the
// switch is logged once and shown by dispatch_resilience_fallback, and
// Redis is used again as soon as it answers.
package resilience

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/egress"
)

// Reason says why a delivery may not go now.
type Reason string

// Denial reasons, in the order they are checked.
const (
	RateLimited Reason = "rate_limited"
	// CircuitOpen: the circuit is open (RetryAfter: until it half-opens)
	// or half-open with every trial in flight (RetryAfter: a short poll,
	// 200-500 ms, so the delivery goes soon after the trials report).
	CircuitOpen        Reason = "circuit_open"
	ConcurrencyLimited Reason = "concurrency_limited"
	// DestinationBusy means the worker already has its share of slots in
	// flight to the destination; the worker decides it and counts it with
	// Throttled.
	DestinationBusy Reason = "destination_busy"
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
	// Ahead is how long before its turn in the destination's pace a
	// delivery may be admitted, told to wait for its turn (Admission.Delay)
	// [250ms]. Admitted ahead, its connection is ready when the turn comes.
	Ahead time.Duration
	// RetryRedisAfter is how long to stay on the local fallback after a
	// Redis error before trying Redis again [1s].
	RetryRedisAfter time.Duration
	// Clock times the in-process fallback (its rate window, circuit
	// periods and permit expiry) and the wait before Redis is tried again,
	// so tests can move time instead of sleeping [clock.Real()]. Redis'
	// own checks keep Redis' clock, shared by every worker.
	Clock  clock.Clock
	Logger *slog.Logger
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
	defDur(&c.Ahead, 250*time.Millisecond)
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.DefaultRegisterer
	}
}

// Limits are one subscription's own limits; zero fields take the defaults.
// They are compared with its destination's shared window and permits, so a
// destination never receives more than the largest limit among the
// subscriptions pointing at it, however many there are.
type Limits struct {
	RatePerSecond  int
	MaxConcurrency int
}

// Target is where a delivery goes: the subscription whose circuit it reports
// to and the destination whose limits it counts against.
type Target struct {
	Subscription string
	// Incarnation tells a subscription from a later one created under the
	// same id, so a deleted one's late outcomes never reach the new one's
	// circuit.
	Incarnation int64
	// Destination is the receiving server as egress.Destination names it.
	Destination string
}

// TargetOf is the target of a subscription created at createdAt whose
// deliveries go to url.
func TargetOf(subscriptionID, url string, createdAt time.Time) Target {
	return Target{Subscription: subscriptionID, Incarnation: createdAt.UnixMicro(), Destination: egress.Destination(url)}
}

func (t Target) circuit() string { return t.Subscription + ":" + strconv.FormatInt(t.Incarnation, 10) }

// Admission is the answer to "may this delivery go now?".
type Admission struct {
	Allowed bool
	// Delay is how long after the answer an allowed delivery's turn comes:
	// its request is to be written then, not before (zero: at once).
	Delay time.Duration
	// Reason and RetryAfter say why not and when to ask again.
	Reason     Reason
	RetryAfter time.Duration

	target Target
	permit string
	trial  bool
	local  bool
	ttl    time.Duration
	// trialsOut: refused because the half-open circuit's trials are all
	// in flight.
	trialsOut bool
}

// Guard admits deliveries and learns from their outcomes.
type Guard struct {
	rdb   redis.UniversalClient
	cfg   Config
	local *local

	mu        sync.Mutex
	downUntil time.Time
	down      bool
	observed  map[string]struct{} // subscriptions with metric series

	metrics *metrics
}

// New returns a Guard on rdb; rdb may be nil to use only the in-process limits.
func New(rdb redis.UniversalClient, cfg Config) *Guard {
	cfg.defaults()
	return &Guard{rdb: rdb, cfg: cfg, local: newLocal(cfg), metrics: newMetrics(cfg.Registerer),
		observed: map[string]struct{}{}}
}

// Every key of a destination shares its hash tag, so one script may touch
// them all on Redis Cluster.
func (g *Guard) key(t Target, kind string) string {
	return g.cfg.Prefix + ":{" + t.Destination + "}:" + kind
}

func (g *Guard) circuitKey(t Target) string { return g.key(t, "circuit:"+t.circuit()) }

// goneKey marks a deleted subscription's circuit: outcomes that arrive
// after the deletion must not write it again.
func (g *Guard) goneKey(t Target) string { return g.key(t, "gone:"+t.circuit()) }

// failuresKey is a subscription's failure record: its last failure and
// its failures per minute, in 60 slots (field m<slot> the minute a slot
// counts, n<slot> its count), so that a busy failing subscription holds
// a fixed small hash. It expires a day after its last failure.
func (g *Guard) failuresKey(t Target) string { return g.key(t, "failures:"+t.circuit()) }

// goneTTL outlives any attempt in flight when its subscription is deleted:
// the longest timeout plus the time its outcome may take to be recorded.
const goneTTL = time.Hour

// useRedis reports whether to try Redis now.
func (g *Guard) useRedis() bool {
	if g.rdb == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.down || g.cfg.Clock.Now().After(g.downUntil)
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
		g.downUntil = g.cfg.Clock.Now().Add(g.cfg.RetryRedisAfter)
	}
}

// AdmitRequest asks admission for one delivery.
type AdmitRequest struct {
	Target Target
	Limits Limits
	// Timeout is the attempt's timeout; the permit outlives it, so that a
	// slow attempt keeps its slot.
	Timeout time.Duration
}

// AdmitBatch decides many admissions in one Redis round trip, so that a
// worker taking a batch of deliveries pays one network delay for all of
// them rather than one each: a pipeline of the admission script, one run
// per target (subscription) and limits, in the order of each run's first
// request, so a subscription's earlier requests are served first. Two
// subscriptions sharing a destination share its window and permits, and
// when the batch asks for more than is left, which of them gets the last
// of it follows that grouping rather than strict request order.
// Each admission checks the destination's rate limit, the subscription's
// circuit breaker and the destination's concurrency limit. It never blocks
// on a busy destination and never fails: answers are in request order, and
// when Redis fails the whole batch is decided in-process. A permit
// outlives its request's Timeout, so that a slow attempt keeps its slot;
// an allowed admission must be ended by FinishBatch.
func (g *Guard) AdmitBatch(ctx context.Context, reqs []AdmitRequest) []Admission {
	out := make([]Admission, len(reqs))
	asks := make([]ask, 0, len(reqs))
	for i, r := range reqs {
		a := &out[i]
		*a = Admission{target: r.Target, ttl: max(g.cfg.PermitTTL, r.Timeout+time.Second)}
		rate, conc := r.Limits.RatePerSecond, r.Limits.MaxConcurrency
		if rate <= 0 {
			rate = g.cfg.RatePerSecond
		}
		if conc <= 0 {
			conc = g.cfg.MaxConcurrency
		}
		asks = append(asks, ask{i: i, rate: rate, conc: conc})
	}
	decided := len(asks) == 0
	if !decided && g.useRedis() {
		err := g.admitRedis(ctx, out, asks)
		g.redisResult(err)
		decided = err == nil
	}
	if !decided {
		for _, k := range asks {
			a := &out[k.i]
			*a = Admission{target: a.target, ttl: a.ttl, local: true}
			g.local.admit(a, k.rate, k.conc)
		}
	}
	for _, a := range out {
		g.count(a)
	}
	return out
}

// ask is a request of a batch that awaits the shared limits' answer: its index and its limits with defaults applied.
type ask struct {
	i          int
	rate, conc int
}

// Throttled counts a delivery the worker postponed for a reason of its
// own (DestinationBusy) in dispatch_events_throttled_total, beside those
// the limits refused.
func (g *Guard) Throttled(r Reason) {
	g.metrics.throttled.WithLabelValues(string(r)).Inc()
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
		st := Open
		if a.trialsOut {
			st = HalfOpen
		}
		g.setState(a.target.Subscription, st)
	}
}

// admitRedis asks Redis about every ask of out in one pipeline and, only
// if every answer came, writes them into out; on an error out is untouched
// and the caller decides in-process. Asks for the same target under the
// same limits share one run of the script (see admitScript), in request
// order; runs go in the order of their first ask. Permits Redis granted
// for a batch whose other answers were lost expire with their TTL, as a
// lost answer to a single admission would.
func (g *Guard) admitRedis(ctx context.Context, out []Admission, asks []ask) error {
	type key struct {
		t          Target
		rate, conc int
		ttl        time.Duration
	}
	permits := make([]string, len(asks))
	groups := grouped(asks, func(k ask) key { return key{out[k.i].target, k.rate, k.conc, out[k.i].ttl} })
	calls := make([]scriptCall, len(groups))
	for c, members := range groups {
		first := asks[members[0]]
		t := out[first.i].target
		args := []any{first.rate, 1000, g.cfg.OpenFor.Milliseconds(), g.cfg.HalfOpenTrials, circuitTTL.Milliseconds(),
			first.conc, out[first.i].ttl.Milliseconds(), g.cfg.Ahead.Milliseconds()}
		for _, j := range members {
			permits[j] = rand.Text()
			args = append(args, permits[j])
		}
		calls[c] = scriptCall{keys: []string{g.key(t, "rate"), g.circuitKey(t), g.key(t, "permits")}, args: args}
	}
	cmds, err := g.runScript(ctx, admitScript, calls)
	if err != nil {
		return fmt.Errorf("admission: %w", err)
	}
	results := make([][]int64, len(asks))
	for c, cmd := range cmds {
		res, err := cmd.Int64Slice()
		if err == nil && len(res) != 4*len(groups[c]) {
			err = fmt.Errorf("admission script answered %d numbers for %d admissions", len(res), len(groups[c]))
		}
		if err != nil {
			return fmt.Errorf("admission: %w", err)
		}
		for m, j := range groups[c] {
			results[j] = res[4*m : 4*m+4]
		}
	}
	for j, k := range asks {
		a, res := &out[k.i], results[j]
		if res[0] == admitted {
			a.Allowed, a.permit, a.trial, a.Delay = true, permits[j], res[2] == 1, time.Duration(res[3])*time.Microsecond
			if a.trial {
				g.setState(a.target.Subscription, HalfOpen)
			}
			continue
		}
		switch res[1] {
		case refusedRate:
			a.Reason, a.RetryAfter = RateLimited, time.Duration(res[2])*time.Millisecond
		case refusedOpen:
			a.Reason, a.RetryAfter = CircuitOpen, time.Duration(res[2])*time.Millisecond
		case refusedTrialsOut:
			a.Reason, a.RetryAfter, a.trialsOut = CircuitOpen, trialsWait(time.Duration(res[2])*time.Millisecond), true
		case refusedBusy:
			fallthrough
		default:
			a.Reason, a.RetryAfter = ConcurrencyLimited, jitter(100*time.Millisecond, 500*time.Millisecond)
		}
	}
	return nil
}

// maxPerCall bounds the admissions (or ends) one script run handles, so a
// run's arguments and answer stay small.
const maxPerCall = 256

// grouped returns the indexes of items in groups of equal key, at most
// maxPerCall each, in the order of each group's first item; within a group
// items keep their order.
func grouped[T any, K comparable](items []T, keyOf func(T) K) [][]int {
	var (
		groups [][]int
		open   = map[K]int{} // key → index of its group still taking items
	)
	for i, it := range items {
		k := keyOf(it)
		if g, ok := open[k]; ok && len(groups[g]) < maxPerCall {
			groups[g] = append(groups[g], i)
			continue
		}
		open[k] = len(groups)
		groups = append(groups, []int{i})
	}
	return groups
}

// scriptCall is one run of a script: its keys and arguments.
type scriptCall struct {
	keys []string
	args []any
}

// runScript runs script once per call in one pipeline, in call order, by
// its SHA. Calls that find the script missing from Redis' cache (NOSCRIPT:
// Redis restarted or its cache was flushed) are sent once more, in order,
// in a second pipeline with the script's source, which caches it again.
// The commands are returned even on an error, so that the caller may use
// the answers that did come; the error is the first that remained.
//
// A flush (or another client loading the script) in the middle of the
// pipeline can let a later call of the batch run before an earlier one
// that is sent again; this only changes which of one batch's requests to a
// destination get its last free slots.
func (g *Guard) runScript(ctx context.Context, script *redis.Script, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	_, err := g.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = script.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	var missing []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return cmds, err
	}
	_, _ = g.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range missing {
			cmds[i] = script.Eval(ctx, p, calls[i].keys, calls[i].args...)
		}
		return nil
	})
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return cmds, err
		}
	}
	return cmds, nil
}

// circuitTTL lets a circuit untouched for a day (its subscription gone
// quiet or deleted) disappear from Redis.
const circuitTTL = 24 * time.Hour

// Finished is an allowed admission's end: Report says whether to tell the
// circuit breaker (false: the attempt was not made, the permit is only
// given back), Success what to tell it.
type Finished struct {
	Admission       Admission
	Report, Success bool
}

// FinishBatch ends many admissions in one Redis round trip, in order:
// each releases its permit and, with Report, tells the circuit breaker
// its outcome. Admissions that were refused are ignored. It goes on after
// ctx is cancelled, since a permit not released holds its slot until it
// expires.
func (g *Guard) FinishBatch(ctx context.Context, fs []Finished) {
	var remote []Finished
	for _, f := range fs {
		a := f.Admission
		switch {
		case !a.Allowed:
		case a.local:
			if st, changed := g.local.done(a, f.Report, f.Success); changed {
				g.observeState(a.target.Subscription, st)
			}
		default:
			remote = append(remote, f)
		}
	}
	if len(remote) == 0 {
		return
	}
	groups := grouped(remote, func(f Finished) Target { return f.Admission.target })
	calls := make([]scriptCall, len(groups))
	for c, members := range groups {
		t := remote[members[0]].Admission.target
		args := []any{g.cfg.FailureThreshold, g.cfg.HalfOpenTrials, circuitTTL.Milliseconds()}
		for _, j := range members {
			f := remote[j]
			args = append(args, f.Admission.permit, boolArg(f.Report), boolArg(f.Success), boolArg(f.Admission.trial))
		}
		calls[c] = scriptCall{keys: []string{g.key(t, "permits"), g.circuitKey(t), g.goneKey(t), g.failuresKey(t)}, args: args}
	}
	cmds, err := g.runScript(context.WithoutCancel(ctx), doneScript, calls)
	for c, cmd := range cmds {
		res, _ := cmd.Int64Slice()
		sub := remote[groups[c][0]].Admission.target.Subscription
		for _, r := range res {
			switch r {
			case doneOpened:
				g.observeState(sub, Open)
			case doneClosed:
				g.observeState(sub, Closed)
			}
		}
	}
	// A permit that could not be released expires with its TTL.
	g.redisResult(err)
}

func (g *Guard) observeState(subID string, st State) {
	g.setState(subID, st)
	if st == Open {
		g.metrics.trips.WithLabelValues(subID).Inc()
		g.cfg.Logger.Warn("circuit opened", "subscription_id", subID, "open_for", g.cfg.OpenFor)
	}
}

func (g *Guard) setState(subID string, st State) {
	g.mu.Lock()
	g.observed[subID] = struct{}{}
	g.mu.Unlock()
	g.metrics.state.WithLabelValues(subID).Set(st.gauge())
}

// Circuit is what a subscription's circuit breaker knows: its state and
// its recent failures.
type Circuit struct {
	State State
	// OpenedAt is when the circuit last opened from closed; it stays while
	// the circuit goes between open and half-open. Zero while closed.
	OpenedAt time.Time
	// LastFailureAt is when the subscription's last failed attempt was
	// reported, within the last day (the record expires a day after its
	// last failure); zero when none was.
	LastFailureAt time.Time
	// FailuresLastHour counts the failed attempts reported in the last
	// hour, to the minute: this minute and the 59 before it.
	FailuresLastHour int
}

// CircuitState returns a subscription's live circuit state as Redis holds
// it. Without Redis there is no shared state to report: this process's own
// view is returned when it has no Redis at all, an error when Redis fails.
func (g *Guard) CircuitState(ctx context.Context, t Target) (State, error) {
	cs, err := g.Circuits(ctx, []Target{t})
	if err != nil {
		return "", err
	}
	return cs[0].State, nil
}

// Circuits returns the circuits of ts, in their order, in one round trip
// to Redis, for a listing that shows many at once. Errors as
// CircuitState's.
func (g *Guard) Circuits(ctx context.Context, ts []Target) ([]Circuit, error) {
	out := make([]Circuit, len(ts))
	if g.rdb == nil {
		for i, t := range ts {
			out[i] = g.local.circuit(t.circuit())
		}
		return out, nil
	}
	if len(ts) == 0 {
		return out, nil
	}
	pipe := g.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(ts))
	for i, t := range ts {
		cmds[i] = circuitScript.Eval(ctx, pipe, []string{g.circuitKey(t), g.failuresKey(t)}, g.cfg.OpenFor.Milliseconds())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("circuits: %w", err)
	}
	for i, t := range ts {
		res, err := cmds[i].Slice()
		if err != nil {
			return nil, fmt.Errorf("circuit of %q: %w", t.Subscription, err)
		}
		if len(res) != 4 {
			return nil, fmt.Errorf("circuit of %q: %d values, want 4", t.Subscription, len(res))
		}
		st, _ := res[0].(string)
		opened, _ := res[1].(int64)
		last, _ := res[2].(int64)
		failures, _ := res[3].(int64)
		out[i] = Circuit{State: State(st), OpenedAt: msTime(opened), LastFailureAt: msTime(last), FailuresLastHour: int(failures)}
	}
	return out, nil
}

// msTime is Unix milliseconds as a time, 0 as the zero time.
func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// Forget drops a deleted subscription's circuit and marks it gone, so that
// outcomes of its attempts still in flight change nothing and a
// subscription created later under the same id starts afresh. The
// destination's rate window and permits are shared with other
// subscriptions and stay.
func (g *Guard) Forget(ctx context.Context, t Target) error {
	g.Drop(t.Subscription)
	if g.rdb == nil {
		return nil
	}
	_, err := g.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, g.circuitKey(t), g.failuresKey(t))
		p.Set(ctx, g.goneKey(t), 1, goneTTL)
		return nil
	})
	g.redisResult(err)
	if err != nil {
		return fmt.Errorf("forget circuit of %q: %w", t.Subscription, err)
	}
	return nil
}

// Drop forgets what this process holds about a subscription that no longer
// exists: its in-process circuit and its metric series.
func (g *Guard) Drop(subID string) {
	g.local.forget(subID)
	g.mu.Lock()
	delete(g.observed, subID)
	g.mu.Unlock()
	g.metrics.state.DeleteLabelValues(subID)
	g.metrics.trips.DeleteLabelValues(subID)
}

// Observed lists the subscriptions this process has metric series for,
// so its owner can Drop those that were deleted.
func (g *Guard) Observed() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := make([]string, 0, len(g.observed))
	for id := range g.observed {
		ids = append(ids, id)
	}
	return ids
}

func boolArg(b bool) int {
	if b {
		return 1
	}
	return 0
}

func jitter(lo, hi time.Duration) time.Duration { return lo + mrand.N(hi-lo) } //nolint:gosec // G404: jitter needs spread, not secrecy

// trialsWait is how long a delivery refused while a half-open circuit's
// trials are in flight waits before asking again: a short, jittered poll,
// so that it goes within a second of the circuit closing rather than a
// whole open period later. rest (when the trials' time ends and a new set
// is let through) bounds it.
func trialsWait(rest time.Duration) time.Duration {
	return max(min(jitter(200*time.Millisecond, 500*time.Millisecond), rest), time.Millisecond)
}
