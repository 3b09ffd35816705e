package resilience_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// reqs asks n admissions for t with limits.
func reqs(n int, t resilience.Target, limits resilience.Limits) []resilience.AdmitRequest {
	out := make([]resilience.AdmitRequest, n)
	for i := range out {
		out[i] = resilience.AdmitRequest{Target: t, Limits: limits, Timeout: time.Second}
	}
	return out
}

// outcome is an admission's answer as a test compares it: "ok" or the
// refusal's reason.
func outcome(a resilience.Admission) string {
	if a.Allowed {
		return "ok"
	}
	return string(a.Reason)
}

func outcomes(as []resilience.Admission) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = outcome(a)
	}
	return out
}

const (
	ok   = "ok"
	rate = string(resilience.RateLimited)
	conc = string(resilience.ConcurrencyLimited)
)

func TestAdmitBatchServesRequestsInOrder(t *testing.T) {
	t.Parallel()
	a, b := tgt("a"), tgt("b")
	shared := resilience.Target{Subscription: "a2", Incarnation: 1, Destination: a.Destination}
	tests := []struct {
		name string
		reqs []resilience.AdmitRequest
		want []string
	}{
		{
			name: "ten to one destination at 5/s",
			reqs: reqs(10, a, resilience.Limits{RatePerSecond: 5}),
			want: []string{ok, ok, ok, ok, ok, rate, rate, rate, rate, rate},
		},
		{
			name: "two destinations, interleaved, 3/s each",
			reqs: func() []resilience.AdmitRequest {
				var out []resilience.AdmitRequest
				for range 5 {
					out = append(out, reqs(1, a, resilience.Limits{RatePerSecond: 3})...)
					out = append(out, reqs(1, b, resilience.Limits{RatePerSecond: 3})...)
				}
				return out
			}(),
			want: []string{ok, ok, ok, ok, ok, ok, rate, rate, rate, rate},
		},
		{
			name: "concurrency limit",
			reqs: reqs(4, a, resilience.Limits{MaxConcurrency: 2, RatePerSecond: 1000}),
			want: []string{ok, ok, conc, conc},
		},
		{
			name: "each request against its own limits",
			reqs: []resilience.AdmitRequest{
				{Target: a, Limits: resilience.Limits{RatePerSecond: 2}},
				{Target: shared, Limits: resilience.Limits{RatePerSecond: 2}},
				{Target: shared, Limits: resilience.Limits{RatePerSecond: 3}}, // the window holds 2 < 3
				{Target: a, Limits: resilience.Limits{RatePerSecond: 3}},      // it holds 3
			},
			want: []string{ok, ok, ok, rate},
		},
		{
			name: "empty",
			want: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb, prefix := testkit.Redis(t)
			reg := prometheus.NewRegistry()
			g := guard(rdb, prefix, bookSecond, func(c *resilience.Config) { c.Registerer = reg })
			got := g.AdmitBatch(context.Background(), tt.reqs)
			require.Equal(t, tt.want, outcomes(got))
			require.Zero(t, gauge(t, reg, "dispatch_resilience_fallback"), "Redis decided")
			for i, a := range got {
				if !a.Allowed {
					require.Positive(t, a.RetryAfter, "request %d", i)
				}
			}
		})
	}
}

func TestAdmitBatchFallsBackWhenRedisIsUnreachable(t *testing.T) {
	t.Parallel()
	rdb, sent := unreachable(t)
	reg := prometheus.NewRegistry()
	g := resilience.New(rdb, resilience.Config{Prefix: "p", Registerer: reg, RetryRedisAfter: time.Hour, Ahead: 900 * time.Millisecond})
	ctx := context.Background()

	got := g.AdmitBatch(ctx, reqs(10, tgt("s"), resilience.Limits{RatePerSecond: 5}))
	require.Equal(t, []string{ok, ok, ok, ok, ok, rate, rate, rate, rate, rate}, outcomes(got),
		"the in-process limits decide, in order")
	require.EqualValues(t, 1, sent.trips.Load(), "one attempt for the whole batch")
	require.EqualValues(t, 1, gauge(t, reg, "dispatch_resilience_fallback"))
	require.Equal(t, 5.0, counter(t, reg, "dispatch_rate_limiter_rejections_total", ""))
	require.Equal(t, 5.0, counter(t, reg, "dispatch_events_throttled_total", rate))

	fs := make([]resilience.Finished, len(got))
	for i, a := range got {
		fs[i] = resilience.Finished{Admission: a, Report: true}
	}
	g.FinishBatch(ctx, fs) // five failures, decided in-process
	require.EqualValues(t, 1, sent.trips.Load(), "in-process admissions end in-process")
	require.Equal(t, resilience.CircuitOpen, g.Admit(ctx, tgt("s"), resilience.Limits{}, time.Second).Reason, "the local circuit opened")
}

// counter returns a counter's value; label, when not empty, picks the
// series whose only label has that value, and a series not yet created
// counts zero.
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	if label == "" {
		t.Fatalf("%s not registered", name)
	}
	return 0
}

func TestFinishBatch(t *testing.T) {
	t.Parallel()
	fail := func(as []resilience.Admission) []resilience.Finished {
		fs := make([]resilience.Finished, len(as))
		for i, a := range as {
			fs[i] = resilience.Finished{Admission: a, Report: true, Success: false}
		}
		return fs
	}
	release := func(as []resilience.Admission) []resilience.Finished {
		fs := make([]resilience.Finished, len(as))
		for i, a := range as {
			fs[i] = resilience.Finished{Admission: a, Report: false, Success: false}
		}
		return fs
	}
	tests := []struct {
		name   string
		finish func([]resilience.Admission) []resilience.Finished
		state  resilience.State
		trips  float64
	}{
		{"five failures in one batch open the circuit", fail, resilience.Open, 1},
		{"releases report nothing", release, resilience.Closed, 0},
		{"four failures and a success keep it closed", func(as []resilience.Admission) []resilience.Finished {
			fs := fail(as)
			fs[3].Success = true // resets the count: then one failure
			return fs
		}, resilience.Closed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb, prefix := testkit.Redis(t)
			reg := prometheus.NewRegistry()
			g := guard(rdb, prefix, func(c *resilience.Config) { c.Registerer = reg })
			ctx := context.Background()
			limits := resilience.Limits{MaxConcurrency: 5, RatePerSecond: 1000}
			got := g.AdmitBatch(ctx, reqs(6, tgt("s"), limits))
			require.Equal(t, []string{ok, ok, ok, ok, ok, conc}, outcomes(got))
			permits := prefix + ":{" + tgt("s").Destination + "}:permits"
			require.EqualValues(t, 5, rdb.ZCard(ctx, permits).Val())

			g.FinishBatch(ctx, tt.finish(got)) // the refused sixth is ignored
			require.Zero(t, rdb.ZCard(ctx, permits).Val(), "every permit released")
			require.Equal(t, tt.state, must(g.CircuitState(ctx, tgt("s"))))
			require.Equal(t, tt.trips, counter(t, reg, "dispatch_circuit_breaker_trips_total", "s"))
			if tt.state == resilience.Closed {
				require.Equal(t, []string{ok, ok, ok, ok, ok}, outcomes(g.AdmitBatch(ctx, reqs(5, tgt("s"), limits))), "concurrency freed")
			}
		})
	}
}

// TestBatchesSurviveAFlushedScriptCache: a Redis whose script cache is
// empty (restarted, or flushed) answers EVALSHA with NOSCRIPT; the batch
// is then sent once more with the scripts' source, and Redis keeps
// deciding. SCRIPT FLUSH empties the cache of the whole server, so the
// test runs a redis-server of its own rather than flush the one other
// tests share.
func TestBatchesSurviveAFlushedScriptCache(t *testing.T) {
	t.Parallel()
	srv := testkit.StartRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	sent := &calls{}
	rdb.AddHook(sent)
	reg := prometheus.NewRegistry()
	g := resilience.New(rdb, resilience.Config{Prefix: "p", Registerer: reg, Ahead: 900 * time.Millisecond})
	ctx := context.Background()
	limits := resilience.Limits{RatePerSecond: 4}

	trips := func(f func()) int64 {
		before := sent.trips.Load()
		f()
		return sent.trips.Load() - before
	}
	var got []resilience.Admission
	require.EqualValues(t, 2, trips(func() { got = g.AdmitBatch(ctx, reqs(3, tgt("s"), limits)) }),
		"a fresh server: NOSCRIPT, then the source")
	require.Equal(t, []string{ok, ok, ok}, outcomes(got))
	require.EqualValues(t, 2, trips(func() { g.FinishBatch(ctx, fail(got)) }))
	require.EqualValues(t, 1, trips(func() { got = g.AdmitBatch(ctx, reqs(3, tgt("s"), limits)) }), "cached now: one round trip")
	require.Equal(t, []string{ok, rate, rate}, outcomes(got), "the window saw the first batch")
	require.EqualValues(t, 1, trips(func() { g.FinishBatch(ctx, fail(got)) }))

	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	require.EqualValues(t, 2, trips(func() { got = g.AdmitBatch(ctx, reqs(2, tgt("t"), limits)) }))
	require.Equal(t, []string{ok, ok}, outcomes(got))
	require.EqualValues(t, 2, trips(func() { g.FinishBatch(ctx, fail(got)) }))
	require.Zero(t, gauge(t, reg, "dispatch_resilience_fallback"), "NOSCRIPT is not an outage")
	require.Equal(t, resilience.Closed, must(g.CircuitState(ctx, tgt("t"))))
	require.EqualValues(t, 4, rdb.ZCard(ctx, "p:{"+tgt("s").Destination+"}:rate").Val(), "decided in Redis")
	require.Zero(t, rdb.ZCard(ctx, "p:{"+tgt("s").Destination+"}:permits").Val(), "released in Redis")
}

func fail(as []resilience.Admission) []resilience.Finished {
	fs := make([]resilience.Finished, len(as))
	for i, a := range as {
		fs[i] = resilience.Finished{Admission: a, Report: true}
	}
	return fs
}

// A batch at a half-open circuit: one script run serves the whole batch,
// and it lets exactly the trials through, as that many single admissions
// would; the trials' outcomes, ended together, decide the circuit.
func TestBatchAtAHalfOpenCircuit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fail  int // the trials (of three) that fail
		state resilience.State
	}{
		{"three good trials close it", 0, resilience.Closed},
		{"one failed trial reopens it", 1, resilience.Open},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb, prefix := testkit.Redis(t)
			g := guard(rdb, prefix)
			ctx := context.Background()
			limits := resilience.Limits{RatePerSecond: 1000}
			g.FinishBatch(ctx, fail(g.AdmitBatch(ctx, reqs(5, tgt("s"), limits))))
			require.Equal(t, resilience.Open, must(g.CircuitState(ctx, tgt("s"))))
			require.Equal(t, []string{string(resilience.CircuitOpen)}, outcomes(g.AdmitBatch(ctx, reqs(1, tgt("s"), limits))))

			require.Eventually(t, func() bool { return must(g.CircuitState(ctx, tgt("s"))) == resilience.HalfOpen },
				5*time.Second, 10*time.Millisecond)
			got := g.AdmitBatch(ctx, reqs(6, tgt("s"), limits))
			open := string(resilience.CircuitOpen)
			require.Equal(t, []string{ok, ok, ok, open, open, open}, outcomes(got))
			for _, a := range got[3:] {
				require.Less(t, a.RetryAfter, time.Second, "refused while the trials are out: asks again soon")
			}
			fs := make([]resilience.Finished, 3)
			for i, a := range got[:3] {
				fs[i] = resilience.Finished{Admission: a, Report: true, Success: i >= tt.fail}
			}
			g.FinishBatch(ctx, fs)
			require.Equal(t, tt.state, must(g.CircuitState(ctx, tgt("s"))))
		})
	}
}

// A batch pays Redis one script run per target and limits, not one per
// delivery: that is what lets one destination take thousands of
// deliveries a second from a worker (ADR 25). Runs are capped at 256.
func TestOneScriptRunPerTarget(t *testing.T) {
	t.Parallel()
	rdb, prefix := testkit.Redis(t)
	g := guard(rdb, prefix)
	ctx := context.Background()
	limits := resilience.Limits{RatePerSecond: 10000, MaxConcurrency: 10000}
	// Load the scripts first: on a new server the first runs are sent twice.
	g.FinishBatch(ctx, fail(g.AdmitBatch(ctx, reqs(1, tgt("warm"), limits))))
	sent := &calls{}
	rdb.AddHook(sent)
	var rs []resilience.AdmitRequest
	for range 150 {
		rs = append(rs, reqs(1, tgt("a"), limits)...)
		rs = append(rs, reqs(1, tgt("b"), limits)...)
	}
	rs = append(rs, reqs(300, tgt("c"), limits)...)

	got := g.AdmitBatch(ctx, rs)
	for i, a := range got {
		require.True(t, a.Allowed, "request %d", i)
	}
	require.EqualValues(t, 1, sent.trips.Load(), "one round trip")
	require.EqualValues(t, 4, sent.cmds.Load(), "a, b, and c in two runs of 256 and 44")

	g.FinishBatch(ctx, fail(got))
	require.EqualValues(t, 2, sent.trips.Load())
	require.EqualValues(t, 8, sent.cmds.Load())
	for _, d := range []string{"a", "b", "c"} {
		require.Zero(t, rdb.ZCard(ctx, prefix+":{"+tgt(d).Destination+"}:permits").Val(), "every permit of %s released", d)
	}
	require.Equal(t, resilience.Open, must(g.CircuitState(ctx, tgt("a"))), "the failures were counted")
}

// TestCircuitsInOneCall: the circuits of many subscriptions at once, in
// their order, each with its state (as CircuitState answers), when it
// opened (kept while it reopens from half-open, cleared when it closes),
// its last failure and its failures in the last hour, with Redis and
// without.
func TestCircuitsInOneCall(t *testing.T) {
	t.Parallel()
	rdb, prefix := testkit.Redis(t)
	for name, g := range map[string]*resilience.Guard{"redis": guard(rdb, prefix), "in process": guard(nil, prefix)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			limits := resilience.Limits{RatePerSecond: 1000}
			before := time.Now().Add(-time.Second)
			g.FinishBatch(ctx, fail(g.AdmitBatch(ctx, reqs(5, tgt("broken"), limits))))
			flaky := g.AdmitBatch(ctx, reqs(3, tgt("flaky"), limits))
			g.FinishBatch(ctx, []resilience.Finished{
				{Admission: flaky[0], Report: true}, {Admission: flaky[1], Report: true}, {Admission: flaky[2], Report: true, Success: true},
			})
			after := time.Now().Add(time.Second)

			cs, err := g.Circuits(ctx, []resilience.Target{tgt("flaky"), tgt("broken"), tgt("never")})
			require.NoError(t, err)
			require.Len(t, cs, 3)
			require.Equal(t, resilience.Closed, cs[0].State)
			require.True(t, cs[0].OpenedAt.IsZero(), "a closed circuit has no opening time")
			require.Equal(t, 2, cs[0].FailuresLastHour, "failures are counted though the circuit stayed closed")
			require.WithinRange(t, cs[0].LastFailureAt, before, after)
			require.Equal(t, resilience.Open, cs[1].State)
			require.Equal(t, must(g.CircuitState(ctx, tgt("broken"))), cs[1].State)
			require.WithinRange(t, cs[1].OpenedAt, before, after)
			require.Equal(t, 5, cs[1].FailuresLastHour)
			require.Equal(t, resilience.Circuit{State: resilience.Closed}, cs[2], "nothing known of a subscription without outcomes")
			none, err := g.Circuits(ctx, nil)
			require.NoError(t, err)
			require.Empty(t, none)

			// Half-open, a failed trial reopens it: it has been open since
			// it first opened. Good trials close it, and its failures stay.
			opened := cs[1].OpenedAt
			require.Eventually(t, func() bool { return must(g.CircuitState(ctx, tgt("broken"))) == resilience.HalfOpen },
				5*time.Second, 10*time.Millisecond)
			g.FinishBatch(ctx, fail(g.AdmitBatch(ctx, reqs(1, tgt("broken"), limits))))
			cs, err = g.Circuits(ctx, []resilience.Target{tgt("broken")})
			require.NoError(t, err)
			require.Equal(t, resilience.Open, cs[0].State)
			require.Equal(t, opened, cs[0].OpenedAt, "reopening keeps when it opened")
			require.Equal(t, 6, cs[0].FailuresLastHour)
			require.Eventually(t, func() bool { return must(g.CircuitState(ctx, tgt("broken"))) == resilience.HalfOpen },
				5*time.Second, 10*time.Millisecond)
			trials := g.AdmitBatch(ctx, reqs(3, tgt("broken"), limits))
			good := make([]resilience.Finished, len(trials))
			for i, a := range trials {
				good[i] = resilience.Finished{Admission: a, Report: true, Success: true}
			}
			g.FinishBatch(ctx, good)
			cs, err = g.Circuits(ctx, []resilience.Target{tgt("broken")})
			require.NoError(t, err)
			require.Equal(t, resilience.Closed, cs[0].State)
			require.True(t, cs[0].OpenedAt.IsZero())
			require.Equal(t, 6, cs[0].FailuresLastHour, "closing the circuit keeps the failures")
		})
	}
}
