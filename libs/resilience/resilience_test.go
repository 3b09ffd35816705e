package resilience_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// tgt is a subscription named name with a destination of its own.
func tgt(name string) resilience.Target {
	return resilience.Target{Subscription: name, Incarnation: 1, Destination: "https://" + name + ".example:443"}
}

func guard(rdb redis.UniversalClient, prefix string, mutate ...func(*resilience.Config)) *resilience.Guard {
	cfg := resilience.Config{Prefix: prefix, Registerer: prometheus.NewRegistry(), OpenFor: 300 * time.Millisecond}
	for _, m := range mutate {
		m(&cfg)
	}
	return resilience.New(rdb, cfg)
}

// waitOnRedis waits d of real time. Redis times the shared state by its
// own clock (TIME inside each script, so that every worker agrees), which
// a test cannot move: the tests of the Redis path wait for it, each for a
// span the guard itself reported or a limit the test set, here and nowhere
// else. The in-process fallback's timing is tested on a fake clock.
func waitOnRedis(d time.Duration) { time.Sleep(d) }

// bookSecond lets a guard book turns up to 900 ms ahead, so that one
// batch reaches a whole window's limit: the tests of order and fallback
// count admissions against the window as they did before pacing.
func bookSecond(c *resilience.Config) { c.Ahead = 900 * time.Millisecond }

// TestRateLimitPacesRequests: a destination's requests are spaced a
// second over its limit apart, each admitted with the delay until its
// turn when the turn is within Ahead, refused until then otherwise.
func TestRateLimitPacesRequests(t *testing.T) {
	t.Parallel()
	rdb, prefix := testkit.Redis(t)
	g := guard(rdb, prefix)
	ctx := context.Background()
	limits := resilience.Limits{RatePerSecond: 5} // a turn every 200 ms
	// Turns are measured on Redis's clock from the first admission; each
	// delay is bounded by the time the test saw pass around the calls, so
	// that a slow machine cannot fail it.
	start := time.Now()
	first := g.Admit(ctx, tgt("s"), limits, time.Second)
	firstDone := time.Now()
	require.True(t, first.Allowed)
	require.Zero(t, first.Delay, "an idle destination: at once")
	second := g.Admit(ctx, tgt("s"), limits, time.Second)
	requireWithin(t, second.Delay, 200*time.Millisecond-time.Since(start), 200*time.Millisecond, "the next turn, 200 ms on")
	require.True(t, second.Allowed)
	third := g.Admit(ctx, tgt("s"), limits, time.Second)
	require.False(t, third.Allowed, "its turn, 400 ms on, is further than Ahead")
	require.Equal(t, resilience.RateLimited, third.Reason)
	requireWithin(t, third.RetryAfter, 150*time.Millisecond-time.Since(start), 150*time.Millisecond, "until its turn is within Ahead")
	other := g.Admit(ctx, tgt("other"), limits, time.Second)
	require.True(t, other.Allowed, "turns are per destination")
	require.Zero(t, other.Delay)

	waitOnRedis(third.RetryAfter + 10*time.Millisecond) // until the turn is within Ahead
	againStart := time.Now()
	again := g.Admit(ctx, tgt("s"), limits, time.Second)
	require.True(t, again.Allowed)
	requireWithin(t, again.Delay, 400*time.Millisecond-time.Since(start), 400*time.Millisecond-againStart.Sub(firstDone), "the turn 400 ms after the first")
	for _, a := range []resilience.Admission{first, second, other, again} {
		g.Done(ctx, a, true)
	}
}

// requireWithin fails unless lo-1ms <= d <= hi+1ms (the millisecond is
// the clocks' rounding).
func requireWithin(t *testing.T, d, lo, hi time.Duration, msg string) {
	t.Helper()
	require.GreaterOrEqual(t, d, lo-time.Millisecond, msg)
	require.LessOrEqual(t, d, hi+time.Millisecond, msg)
}

func TestCircuitBreakerStateMachine(t *testing.T) {
	t.Parallel()
	rdb, prefix := testkit.Redis(t)
	g := guard(rdb, prefix)
	ctx := context.Background()
	fail := func() {
		a := g.Admit(ctx, tgt("s"), resilience.Limits{}, time.Second)
		require.True(t, a.Allowed)
		g.Done(ctx, a, false)
	}
	for range 4 {
		fail()
	}
	st, err := g.CircuitState(ctx, tgt("s"))
	require.NoError(t, err)
	require.Equal(t, resilience.Closed, st, "4 failures do not open it")
	ok := g.Admit(ctx, tgt("s"), resilience.Limits{}, time.Second)
	g.Done(ctx, ok, true) // a success resets the count
	for range 4 {
		fail()
	}
	require.Equal(t, resilience.Closed, must(g.CircuitState(ctx, tgt("s"))))
	fail()
	require.Equal(t, resilience.Open, must(g.CircuitState(ctx, tgt("s"))), "5 consecutive failures open it")

	denied := g.Admit(ctx, tgt("s"), resilience.Limits{}, time.Second)
	require.False(t, denied.Allowed)
	require.Equal(t, resilience.CircuitOpen, denied.Reason)
	require.Greater(t, denied.RetryAfter, time.Duration(0))

	waitOnRedis(denied.RetryAfter + 10*time.Millisecond)
	require.Equal(t, resilience.HalfOpen, must(g.CircuitState(ctx, tgt("s"))))
	trial := g.Admit(ctx, tgt("s"), resilience.Limits{}, time.Second)
	require.True(t, trial.Allowed)
	g.Done(ctx, trial, false)
	require.Equal(t, resilience.Open, must(g.CircuitState(ctx, tgt("s"))), "a failed trial reopens it")

	waitOnRedis(g.Admit(ctx, tgt("s"), resilience.Limits{}, time.Second).RetryAfter + 10*time.Millisecond)
	var trials []resilience.Admission
	for range 3 {
		a := g.Admit(ctx, tgt("s"), resilience.Limits{}, time.Second)
		require.True(t, a.Allowed)
		trials = append(trials, a)
	}
	require.False(t, g.Admit(ctx, tgt("s"), resilience.Limits{}, time.Second).Allowed, "only 3 trials")
	for i, a := range trials {
		g.Done(ctx, a, true)
		want := resilience.HalfOpen
		if i == 2 {
			want = resilience.Closed
		}
		require.Equal(t, want, must(g.CircuitState(ctx, tgt("s"))), "after %d successful trials", i+1)
	}
}

func TestExactlyThreeTrialsUnderConcurrency(t *testing.T) {
	t.Parallel()
	rdb, prefix := testkit.Redis(t)
	// Three workers sharing one Redis.
	guards := []*resilience.Guard{guard(rdb, prefix), guard(rdb, prefix), guard(rdb, prefix)}
	ctx := context.Background()
	for range 5 {
		a := guards[0].Admit(ctx, tgt("s"), resilience.Limits{}, time.Second)
		guards[0].Done(ctx, a, false)
	}
	waitOnRedis(guards[0].Admit(ctx, tgt("s"), resilience.Limits{}, time.Second).RetryAfter + 10*time.Millisecond)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			if guards[i%3].Admit(ctx, tgt("s"), resilience.Limits{}, time.Second).Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 3, allowed.Load())
}

func TestSemaphoreHoldsAcrossWorkersAndFreesCrashedPermits(t *testing.T) {
	t.Parallel()
	rdb, prefix := testkit.Redis(t)
	guards := []*resilience.Guard{guard(rdb, prefix), guard(rdb, prefix), guard(rdb, prefix)}
	ctx := context.Background()
	limits := resilience.Limits{MaxConcurrency: 4, RatePerSecond: 10000}
	// Ninety deliveries, in rounds until every one has gone: in each
	// round all that are left ask at once, through the three workers,
	// while the admitted ones hold their permits; exactly the limit is
	// admitted, and the permits are given back before the next round.
	type held struct {
		g *resilience.Guard
		a resilience.Admission
	}
	for left, round := 90, 1; left > 0; round++ {
		var (
			mu      sync.Mutex
			wg      sync.WaitGroup
			granted []held
			refused []resilience.Reason
		)
		for i := range left {
			wg.Go(func() {
				g := guards[i%3]
				a := g.Admit(ctx, tgt("s"), limits, time.Second)
				mu.Lock()
				defer mu.Unlock()
				if a.Allowed {
					granted = append(granted, held{g, a})
					return
				}
				refused = append(refused, a.Reason)
			})
		}
		wg.Wait()
		require.Len(t, granted, min(4, left), "round %d: the limit, no more, at once", round)
		for _, r := range refused {
			require.Equal(t, resilience.ConcurrencyLimited, r)
		}
		for _, h := range granted {
			h.g.Done(ctx, h.a, true)
		}
		left -= len(granted)
	}

	// A worker that crashes holding permits: they expire with their TTL.
	crashed := guard(rdb, prefix, func(c *resilience.Config) { c.PermitTTL = 300 * time.Millisecond })
	for range 4 {
		require.True(t, crashed.Admit(ctx, tgt("t"), limits, 0).Allowed) // never released
	}
	require.False(t, guards[0].Admit(ctx, tgt("t"), limits, time.Second).Allowed)
	waitOnRedis(1100 * time.Millisecond) // a permit lives at least its attempt's timeout (0 here) + 1 s
	require.True(t, guards[0].Admit(ctx, tgt("t"), limits, time.Second).Allowed, "expired permits are freed")
}

func TestRedisOutageFallsBackAndRecovers(t *testing.T) {
	t.Parallel()
	srv := testkit.StartRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	reg := prometheus.NewRegistry()
	fake := clock.NewFake(epoch)
	g := resilience.New(rdb, resilience.Config{Prefix: "p", Registerer: reg, Clock: fake, RetryRedisAfter: 50 * time.Millisecond, Ahead: 900 * time.Millisecond})
	ctx := context.Background()
	limits := resilience.Limits{RatePerSecond: 3}

	a := g.Admit(ctx, tgt("s"), limits, time.Second)
	require.True(t, a.Allowed)
	g.Done(ctx, a, true)
	require.EqualValues(t, 1, rdb.ZCard(ctx, "p:{"+tgt("s").Destination+"}:rate").Val(), "state is in Redis")
	require.Zero(t, gauge(t, reg, "dispatch_resilience_fallback"))

	srv.Stop()
	var allowed int
	for range 5 {
		a := g.Admit(ctx, tgt("s"), limits, time.Second)
		if a.Allowed {
			allowed++
			g.Done(ctx, a, true)
		}
	}
	require.Equal(t, 3, allowed, "the local limiter still enforces the limit")
	require.EqualValues(t, 1, gauge(t, reg, "dispatch_resilience_fallback"))

	srv.Start()
	fake.Advance(1100 * time.Millisecond) // the local window empties, and RetryRedisAfter has passed
	// The client may first spend a try on a connection the outage broke;
	// each failed try puts the guard back on the fallback for
	// RetryRedisAfter, which the test then moves past.
	for try := 0; gauge(t, reg, "dispatch_resilience_fallback") != 0; try++ {
		require.Less(t, try, 5, "Redis is not used again")
		a := g.Admit(ctx, tgt("s"), limits, time.Second)
		g.Done(ctx, a, true)
		fake.Advance(50 * time.Millisecond)
	}
	require.Positive(t, rdb.ZCard(ctx, "p:{"+tgt("s").Destination+"}:rate").Val(), "shared state resumes in Redis")
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not registered", name)
	return 0
}

func must(st resilience.State, err error) resilience.State {
	if err != nil {
		panic(err)
	}
	return st
}

// TestRateLimitExactAcrossWorkers hammers one subscription from three
// guards (three workers) and checks the turns they were given: never more
// than the limit in any one-second window.
func TestRateLimitExactAcrossWorkers(t *testing.T) {
	t.Parallel()
	rdb, prefix := testkit.Redis(t)
	guards := []*resilience.Guard{guard(rdb, prefix), guard(rdb, prefix), guard(rdb, prefix)}
	const limit = 25
	ctx := context.Background()
	var (
		mu       sync.Mutex
		admitted []time.Time
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(2500 * time.Millisecond)
	for i := range 6 {
		wg.Go(func() {
			g := guards[i%3]
			for time.Now().Before(deadline) {
				a := g.Admit(ctx, tgt("s"), resilience.Limits{RatePerSecond: limit}, time.Second)
				at := time.Now().Add(a.Delay) // its turn
				if !a.Allowed {
					waitOnRedis(min(a.RetryAfter, 20*time.Millisecond))
					continue
				}
				mu.Lock()
				admitted = append(admitted, at)
				mu.Unlock()
				g.Done(ctx, a, true)
			}
		})
	}
	wg.Wait()
	slices.SortFunc(admitted, func(a, b time.Time) int { return a.Compare(b) })
	require.GreaterOrEqual(t, len(admitted), 2*limit, "the limit admits a full window each second")
	// Turns are timed on Redis' clock; the client notes each from its
	// answer, a moment later (longer under -race on two cores), so allow
	// up to 40 ms of skew either way: a second less 80 ms holds at most 24
	// turns 40 ms apart, and with that skew at most 25.
	window := time.Second - 80*time.Millisecond
	for i := range admitted {
		j := i
		for j < len(admitted) && admitted[j].Sub(admitted[i]) < window {
			j++
		}
		require.LessOrEqual(t, j-i, limit, "admissions in the window starting at %v", admitted[i])
	}
}

func TestForgetStartsASubscriptionAfresh(t *testing.T) {
	t.Parallel()
	rdb, prefix := testkit.Redis(t)
	g := guard(rdb, prefix)
	ctx := context.Background()
	old := tgt("s")
	for range 5 {
		a := g.Admit(ctx, old, resilience.Limits{}, time.Second)
		g.Done(ctx, a, false)
	}
	require.Equal(t, resilience.Open, must(g.CircuitState(ctx, old)))
	fresh := tgt("s")
	fresh.Incarnation = 2 // created again under the same id
	require.NoError(t, g.Forget(ctx, old))
	require.Equal(t, resilience.Closed, must(g.CircuitState(ctx, fresh)))
	// Attempts of the deleted subscription that were still in flight.
	var late []resilience.Admission
	for range 5 {
		a := g.Admit(ctx, old, resilience.Limits{}, time.Second)
		require.True(t, a.Allowed, "a forgotten circuit admits")
		late = append(late, a)
	}
	for _, a := range late {
		g.Done(ctx, a, false) // late failures of the deleted subscription
	}
	require.Equal(t, resilience.Closed, must(g.CircuitState(ctx, old)), "late outcomes wrote the deleted circuit")
	require.Equal(t, resilience.Closed, must(g.CircuitState(ctx, fresh)))
	keys := rdb.Keys(ctx, prefix+":*circuit*").Val()
	require.Empty(t, keys, "late outcomes left circuit state behind")
	require.True(t, g.Admit(ctx, fresh, resilience.Limits{}, time.Second).Allowed)
}

// TestLimitsHoldPerDestination: subscriptions that point at one
// destination share its window and permits, each compared with the asking
// subscription's own limits.
func TestLimitsHoldPerDestination(t *testing.T) {
	t.Parallel()
	rdb, prefix := testkit.Redis(t)
	g := guard(rdb, prefix)
	ctx := context.Background()
	sub := func(i int) resilience.Target {
		return resilience.Target{Subscription: fmt.Sprintf("s%d", i), Incarnation: 1, Destination: "https://receiver.example:443"}
	}
	admitted := 0
	for i := range 100 {
		if g.Admit(ctx, sub(i), resilience.Limits{RatePerSecond: 1}, time.Second).Allowed {
			admitted++
		}
	}
	require.Equal(t, 1, admitted, "100 subscriptions at 1/s to one destination")
	other := resilience.Target{Subscription: "x", Incarnation: 1, Destination: "https://other.example:443"}
	require.True(t, g.Admit(ctx, other, resilience.Limits{RatePerSecond: 1}, time.Second).Allowed, "another destination is not affected")

	// A higher limit admits up to itself; a lower one only within its own.
	conc := resilience.Target{Subscription: "c1", Incarnation: 1, Destination: "https://conc.example:443"}
	for range 3 {
		require.True(t, g.Admit(ctx, conc, resilience.Limits{MaxConcurrency: 3, RatePerSecond: 1000}, time.Second).Allowed)
	}
	low := resilience.Target{Subscription: "c2", Incarnation: 1, Destination: conc.Destination}
	a := g.Admit(ctx, low, resilience.Limits{MaxConcurrency: 2, RatePerSecond: 1000}, time.Second)
	require.Equal(t, resilience.ConcurrencyLimited, a.Reason, "three in flight to the destination exceed the second subscription's 2")
}

func TestDropRemovesMetricSeries(t *testing.T) {
	t.Parallel()
	rdb, prefix := testkit.Redis(t)
	reg := prometheus.NewRegistry()
	g := guard(rdb, prefix, func(c *resilience.Config) { c.Registerer = reg })
	ctx := context.Background()
	for range 5 {
		g.Done(ctx, g.Admit(ctx, tgt("gone"), resilience.Limits{}, time.Second), false)
	}
	require.Equal(t, []string{"gone"}, g.Observed())
	require.Equal(t, 2, seriesFor(t, reg, "gone"), "state and trips series")
	g.Drop("gone")
	require.Zero(t, seriesFor(t, reg, "gone"))
	require.Empty(t, g.Observed())
}

func seriesFor(t *testing.T, reg *prometheus.Registry, sub string) int {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	n := 0
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "subscription_id" && l.GetValue() == sub {
					n++
				}
			}
		}
	}
	return n
}

func TestRefusalTakesNothingFromEarlierChecks(t *testing.T) {
	t.Parallel()
	rdb, prefix := testkit.Redis(t)
	g := guard(rdb, prefix, bookSecond)
	ctx := context.Background()
	limits := resilience.Limits{RatePerSecond: 6}
	for range 5 {
		a := g.Admit(ctx, tgt("s"), limits, time.Second)
		require.True(t, a.Allowed)
		g.Done(ctx, a, false)
	}
	for range 10 { // refused by the open circuit: no rate slot taken
		require.Equal(t, resilience.CircuitOpen, g.Admit(ctx, tgt("s"), limits, time.Second).Reason)
	}
	require.EqualValues(t, 5, rdb.ZCard(ctx, prefix+":{"+tgt("s").Destination+"}:rate").Val())
}

// TestLocalFallbackBehavesLikeRedis runs the same checks without Redis.
func TestLocalFallbackBehavesLikeRedis(t *testing.T) {
	t.Parallel()
	g, fake := localGuard()
	ctx := context.Background()
	conc := resilience.Limits{MaxConcurrency: 2}
	a1, a2 := g.Admit(ctx, tgt("c"), conc, time.Second), g.Admit(ctx, tgt("c"), conc, time.Second)
	require.True(t, a1.Allowed && a2.Allowed)
	require.Equal(t, resilience.ConcurrencyLimited, g.Admit(ctx, tgt("c"), conc, time.Second).Reason)
	g.Release(ctx, a1)
	require.True(t, g.Admit(ctx, tgt("c"), conc, time.Second).Allowed)

	for range 5 {
		a := g.Admit(ctx, tgt("s"), resilience.Limits{}, time.Second)
		require.True(t, a.Allowed)
		g.Done(ctx, a, false)
	}
	require.Equal(t, resilience.Open, must(g.CircuitState(ctx, tgt("s"))))
	require.Equal(t, resilience.CircuitOpen, g.Admit(ctx, tgt("s"), resilience.Limits{}, time.Second).Reason)
	fake.Advance(300 * time.Millisecond)
	var trials []resilience.Admission
	for range 5 {
		if a := g.Admit(ctx, tgt("s"), resilience.Limits{}, time.Second); a.Allowed {
			trials = append(trials, a)
		}
	}
	require.Len(t, trials, 3, "exactly 3 trials when half-open")
	for _, a := range trials {
		g.Done(ctx, a, true)
	}
	require.Equal(t, resilience.Closed, must(g.CircuitState(ctx, tgt("s"))))
}

// While a half-open circuit's trials are in flight, a refused delivery asks
// again within half a second, not after the rest of the open period, and
// goes once the trials have closed the circuit.
func TestRefusedWhileTrialsInFlightWaitsOnlyBriefly(t *testing.T) {
	t.Parallel()
	rdb, prefix := testkit.Redis(t)
	openFor := func(c *resilience.Config) { c.OpenFor = 1500 * time.Millisecond }
	local, fake := localGuard(openFor)
	tests := []struct {
		name string
		g    *resilience.Guard
		wait func(time.Duration) // until the circuit half-opens
	}{
		{"redis", guard(rdb, prefix, openFor), waitOnRedis},
		{"local", local, fake.Advance},
	}
	for _, tt := range tests {
		g := tt.g
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			sub := tgt("s")
			for range 5 {
				a := g.Admit(ctx, sub, resilience.Limits{}, time.Second)
				require.True(t, a.Allowed)
				g.Done(ctx, a, false)
			}
			open := g.Admit(ctx, sub, resilience.Limits{}, time.Second)
			require.Equal(t, resilience.CircuitOpen, open.Reason)
			require.Greater(t, open.RetryAfter, time.Second, "open: wait until it half-opens")

			tt.wait(open.RetryAfter + 10*time.Millisecond)
			var trials []resilience.Admission
			for range 3 {
				a := g.Admit(ctx, sub, resilience.Limits{}, time.Second)
				require.True(t, a.Allowed)
				trials = append(trials, a)
			}
			for range 20 {
				held := g.Admit(ctx, sub, resilience.Limits{}, time.Second)
				require.False(t, held.Allowed)
				require.Equal(t, resilience.CircuitOpen, held.Reason)
				require.GreaterOrEqual(t, held.RetryAfter, 200*time.Millisecond)
				require.LessOrEqual(t, held.RetryAfter, 500*time.Millisecond, "trials in flight: a short poll, not the rest of the open period")
			}
			for _, a := range trials {
				g.Done(ctx, a, true)
			}
			require.True(t, g.Admit(ctx, sub, resilience.Limits{}, time.Second).Allowed, "closed once the trials succeeded")
		})
	}
}
