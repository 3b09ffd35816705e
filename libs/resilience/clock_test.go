package resilience_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/resilience"
)

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// localGuard is a Guard without Redis, so the in-process limits decide,
// timed by a fake clock.
func localGuard(mutate ...func(*resilience.Config)) (*resilience.Guard, *clock.Fake) {
	fake := clock.NewFake(epoch)
	return guard(nil, "unused", append([]func(*resilience.Config){func(c *resilience.Config) { c.Clock = fake }}, mutate...)...), fake
}

// TestLocalRateWindowMovesWithTheClock: the in-process pace gives each
// request its turn (Delay) a spacing after the last, refuses a turn beyond
// Ahead (250 ms) until it comes within it (RetryAfter), and holds a lower
// limit's request until the second ending at its turn has room.
func TestLocalRateWindowMovesWithTheClock(t *testing.T) {
	t.Parallel()
	type step struct {
		advance time.Duration // before asking
		rate    int
		allowed bool
		wait    time.Duration // Delay when allowed, RetryAfter when refused
	}
	ms := time.Millisecond
	tests := []struct {
		name  string
		steps []step
	}{
		{"turns a spacing apart", []step{
			{0, 4, true, 0}, {0, 4, true, 250 * ms},
			{0, 4, false, 250 * ms}, // its turn, 500 ms on, comes within Ahead in 250 ms
			{249 * ms, 4, false, ms},
			{ms, 4, true, 250 * ms},
			{time.Second, 4, true, 0}, // an idle destination: at once
		}},
		{"a lower limit waits for room in its second", []step{
			{0, 10, true, 0}, {0, 10, true, 100 * ms}, {0, 10, true, 200 * ms},
			// Its turn would be 700 ms on, but (-300 ms, 700 ms] holds three
			// sends; at 1100 ms the second has left.
			{0, 2, false, 850 * ms},
			{50 * ms, 10, true, 250 * ms}, // a higher limit goes on
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, fake := localGuard()
			ctx := context.Background()
			for i, s := range tt.steps {
				fake.Advance(s.advance)
				a := g.Admit(ctx, tgt("s"), resilience.Limits{RatePerSecond: s.rate}, time.Second)
				require.Equal(t, s.allowed, a.Allowed, "step %d", i)
				if a.Allowed {
					require.Equal(t, s.wait, a.Delay, "step %d", i)
					g.Done(ctx, a, true)
					continue
				}
				require.Equal(t, resilience.RateLimited, a.Reason, "step %d", i)
				require.Equal(t, s.wait, a.RetryAfter, "step %d", i)
			}
		})
	}
}

// TestLocalCircuitFollowsTheClock walks the in-process circuit through a
// real 30-second open period without sleeping.
func TestLocalCircuitFollowsTheClock(t *testing.T) {
	t.Parallel()
	const openFor = 30 * time.Second
	g, fake := localGuard(func(c *resilience.Config) { c.OpenFor = openFor })
	ctx := context.Background()
	sub := tgt("s")
	admit := func() resilience.Admission { return g.Admit(ctx, sub, resilience.Limits{}, time.Second) }
	state := func() resilience.State { return must(g.CircuitState(ctx, sub)) }

	for range 5 {
		a := admit()
		require.True(t, a.Allowed)
		g.Done(ctx, a, false)
	}
	require.Equal(t, resilience.Open, state())
	denied := admit()
	require.Equal(t, resilience.CircuitOpen, denied.Reason)
	require.Equal(t, openFor, denied.RetryAfter, "open: until it half-opens")

	fake.Advance(openFor - time.Millisecond)
	require.Equal(t, resilience.Open, state())
	require.Equal(t, time.Millisecond, admit().RetryAfter)

	fake.Advance(time.Millisecond)
	require.Equal(t, resilience.HalfOpen, state(), "half-open once OpenFor has passed")
	var trials []resilience.Admission
	for range 3 {
		a := admit()
		require.True(t, a.Allowed)
		trials = append(trials, a)
	}
	held := admit()
	require.Equal(t, resilience.CircuitOpen, held.Reason, "only 3 trials")
	require.GreaterOrEqual(t, held.RetryAfter, 200*time.Millisecond)
	require.LessOrEqual(t, held.RetryAfter, 500*time.Millisecond)

	// Trials that never report (their worker died): after OpenFor a new
	// set goes.
	fake.Advance(openFor)
	for range 3 {
		a := admit()
		require.True(t, a.Allowed, "a new set of trials")
		trials = append(trials, a)
	}
	require.False(t, admit().Allowed)
	g.Done(ctx, trials[3], false)
	require.Equal(t, resilience.Open, state(), "a failed trial reopens it")
	require.Equal(t, openFor, admit().RetryAfter, "for a whole OpenFor from now")

	fake.Advance(openFor)
	for range 3 {
		a := admit()
		require.True(t, a.Allowed)
		g.Done(ctx, a, true)
	}
	require.Equal(t, resilience.Closed, state(), "3 successful trials close it")
	require.True(t, admit().Allowed)
}

// TestLocalPermitsExpireWithTheClock: a permit never given back (its
// attempt hung) frees its concurrency slot after its TTL.
func TestLocalPermitsExpireWithTheClock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		timeout time.Duration
		ttl     time.Duration // the permit's expected life
	}{
		{"PermitTTL when the attempt is short", time.Second, 30 * time.Second},
		{"the attempt's timeout and a second when longer", time.Minute, time.Minute + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, fake := localGuard(func(c *resilience.Config) { c.PermitTTL = 30 * time.Second })
			ctx := context.Background()
			one := resilience.Limits{MaxConcurrency: 1}
			require.True(t, g.Admit(ctx, tgt("s"), one, tt.timeout).Allowed) // never given back
			fake.Advance(tt.ttl)
			require.Equal(t, resilience.ConcurrencyLimited, g.Admit(ctx, tgt("s"), one, tt.timeout).Reason, "alive until its TTL has passed")
			fake.Advance(time.Nanosecond)
			require.True(t, g.Admit(ctx, tgt("s"), one, tt.timeout).Allowed, "expired")
		})
	}
}

// calls counts the script runs a Redis client sends: trips counts round
// trips (a command or a pipeline), cmds the scripts in them. The
// commands that set up a connection are not counted.
type calls struct{ trips, cmds atomic.Int64 }

func isScript(cmd redis.Cmder) bool { return cmd.Name() == "evalsha" || cmd.Name() == "eval" }

func (c *calls) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *calls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if isScript(cmd) {
			c.trips.Add(1)
			c.cmds.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *calls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && isScript(cmds[0]) {
			c.trips.Add(1)
			c.cmds.Add(int64(len(cmds)))
		}
		return next(ctx, cmds)
	}
}

// unreachable is a client for a port nothing listens on, counting what it
// tries to send.
func unreachable(t *testing.T) (*redis.Client, *calls) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	c := &calls{}
	rdb.AddHook(c)
	return rdb, c
}

// TestRedisIsTriedAgainAfterRetryRedisAfter: after a Redis error the Guard
// decides in-process without asking Redis until RetryRedisAfter has
// passed on its clock.
func TestRedisIsTriedAgainAfterRetryRedisAfter(t *testing.T) {
	t.Parallel()
	rdb, sent := unreachable(t)
	fake := clock.NewFake(epoch)
	reg := prometheus.NewRegistry()
	g := resilience.New(rdb, resilience.Config{Prefix: "p", Registerer: reg, Clock: fake, RetryRedisAfter: 5 * time.Second})
	ctx := context.Background()
	admit := func() {
		a := g.Admit(ctx, tgt("s"), resilience.Limits{}, time.Second)
		require.True(t, a.Allowed, "the local fallback admits")
		g.Release(ctx, a)
	}

	admit()
	require.EqualValues(t, 1, sent.trips.Load(), "Redis was asked")
	require.EqualValues(t, 1, gauge(t, reg, "dispatch_resilience_fallback"))
	admit()
	fake.Advance(5 * time.Second)
	admit()
	require.EqualValues(t, 1, sent.trips.Load(), "not asked again until RetryRedisAfter has passed")
	fake.Advance(time.Nanosecond)
	admit()
	require.EqualValues(t, 2, sent.trips.Load(), "asked again once RetryRedisAfter has passed")
}

// TestLocalFailuresCountTheLastHour: the in-process record counts the
// failures of the current minute and the 59 before it; older ones fall
// out, and a slot reused an hour later starts afresh. The last failure's
// time stays.
func TestLocalFailuresCountTheLastHour(t *testing.T) {
	t.Parallel()
	g, fake := localGuard(func(c *resilience.Config) { c.FailureThreshold = 100 })
	ctx := context.Background()
	sub := tgt("s")
	failAt := func(n int) {
		for range n {
			a := g.Admit(ctx, sub, resilience.Limits{RatePerSecond: 1000}, time.Second)
			require.True(t, a.Allowed)
			g.Done(ctx, a, false)
		}
	}
	failures := func() (int, time.Time) {
		cs, err := g.Circuits(ctx, []resilience.Target{sub})
		require.NoError(t, err)
		return cs[0].FailuresLastHour, cs[0].LastFailureAt
	}
	failAt(2)
	first := fake.Now()
	fake.Advance(30 * time.Minute)
	failAt(3)
	n, last := failures()
	require.Equal(t, 5, n)
	require.Equal(t, fake.Now(), last)
	fake.Advance(31 * time.Minute)
	n, _ = failures()
	require.Equal(t, 3, n, "the first two are more than an hour old")
	fake.Advance(first.Add(2 * time.Hour).Sub(fake.Now()))
	failAt(1)
	n, last = failures()
	require.Equal(t, 1, n, "the first two's slot starts afresh")
	require.Equal(t, fake.Now(), last)
}
