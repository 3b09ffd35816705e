package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// jitterAllowance is how much earlier than its admission a request may
// reach the receiver relative to another: the limiter bounds admissions,
// and the claim, signing and HTTP round trip between admission and arrival
// vary by a few milliseconds, more on a loaded two-core test machine.
const jitterAllowance = 100 * time.Millisecond

func (s *stack) subscribeWith(id string, rc *receiver, settings map[string]any, patterns ...string) {
	s.t.Helper()
	body := map[string]any{"id": id, "url": rc.URL, "event_types": patterns, "secret": rc.secret}
	for k, v := range settings {
		body[k] = v
	}
	if code, b := s.call("POST", "/subscriptions", body); code != http.StatusCreated {
		s.t.Fatalf("create subscription: %d %v", code, b)
	}
}

func TestRateLimitHoldsAcrossThreeWorkers(t *testing.T) {
	s := newStack(t)
	for range 3 {
		s.startWorker()
	}
	s.startScheduler()
	rc := newReceiver(t, http.StatusOK)
	const limit, n = 20, 100
	s.subscribeWith("sub", rc, map[string]any{"rate_limit_per_second": limit}, "*")
	start := time.Now()
	s.postMany("evt", n)

	eventually(t, 60*time.Second, func() bool { got, _ := distinct(rc); return got == n }, "only %d of %d delivered", len(rc.deliveries()), n)
	var times []time.Time
	for _, d := range rc.deliveries() {
		times = append(times, d.At)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	window := time.Second - jitterAllowance
	for i := range times {
		j := i
		for j < len(times) && times[j].Sub(times[i]) < window {
			j++
		}
		if j-i > limit {
			t.Fatalf("%d deliveries within %v starting at +%v; the limit is %d/s", j-i, window, times[i].Sub(start), limit)
		}
	}
	if took := times[len(times)-1].Sub(times[0]); took < time.Duration(n/limit-1)*time.Second {
		t.Fatalf("%d deliveries took only %v at %d/s", n, took, limit)
	}
	if n := s.count(`SELECT count(*) FROM deliveries WHERE attempts <> 1`); n != 0 {
		t.Fatalf("%d deliveries spent attempts on throttling", n)
	}
}

func TestDeliveriesContinueWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	s := &stack{t: t, db: testkit.Postgres(t), redisPrefix: "dispatch", redis: testkit.StartRedisServer(t)}
	s.kafka = testkit.Kafka(t, 4, topic)
	s.brokers = s.kafka.ListenAddrs()[0]
	addr := freeAddr(t)
	s.apiURL = "http://" + addr
	s.start("ingest-api", "ADDR="+addr)
	s.waitReady(s.apiURL)
	s.startWorker()
	s.startScheduler()
	rc := newReceiver(t, http.StatusOK)
	s.subscribe("sub", rc, "*")
	rdb := redis.NewClient(&redis.Options{Addr: s.redis.Addr})
	t.Cleanup(func() { rdb.Close() })

	s.postMany("before", 20)
	eventually(t, 30*time.Second, func() bool { got, _ := distinct(rc); return got == 20 }, "not delivered before the outage")
	if rdb.Exists(context.Background(), "dispatch:{sub}:rate").Val() != 1 {
		t.Fatal("the rate window is not kept in Redis")
	}

	s.redis.Stop()
	s.postMany("during", 20)
	eventually(t, 30*time.Second, func() bool { got, _ := distinct(rc); return got == 40 }, "deliveries stopped while Redis was down: %d of 40", len(rc.deliveries()))

	s.redis.Start()                     // a new, empty Redis
	time.Sleep(1500 * time.Millisecond) // the worker tries Redis again within a second
	s.postMany("after", 20)
	eventually(t, 30*time.Second, func() bool { got, _ := distinct(rc); return got == 60 }, "not delivered after Redis came back")
	eventually(t, 10*time.Second, func() bool {
		return rdb.Exists(context.Background(), "dispatch:{sub}:rate").Val() == 1
	}, "shared state did not resume in Redis")
}

func TestOneBadDestinationDoesNotSlowOthers(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	s.startScheduler()
	healthy := newReceiver(t, http.StatusOK)
	s.subscribeWith("healthy", healthy, nil, "*")

	const perPhase = 60
	measure := func(prefix string) time.Duration {
		sent := map[string]time.Time{}
		for i := range perPhase {
			id := fmt.Sprintf("%s_%d", prefix, i)
			sent[id] = time.Now()
			s.post(id, "order.created")
			time.Sleep(15 * time.Millisecond)
		}
		eventually(t, 60*time.Second, func() bool {
			n := 0
			for _, d := range healthy.deliveries() {
				if _, ok := sent[d.EventID]; ok {
					n++
				}
			}
			return n >= perPhase
		}, "healthy deliveries of %s did not all arrive", prefix)
		var lat []time.Duration
		for _, d := range healthy.deliveries() {
			if at, ok := sent[d.EventID]; ok {
				lat = append(lat, d.At.Sub(at))
			}
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100]
	}
	s.post("warmup", "order.created") // connections and caches warm, as in steady state
	eventually(t, 30*time.Second, func() bool { return len(healthy.deliveries()) == 1 }, "warm-up not delivered")
	alone := measure("alone")

	hanging := newReceiver(t, 0)
	hanging.respond = func(_ http.ResponseWriter, r *http.Request, _ int) bool {
		<-r.Context().Done() // until the worker gives up
		return false
	}
	failing := newReceiver(t, http.StatusInternalServerError)
	s.subscribeWith("hanging", hanging, map[string]any{"timeout_ms": 2000}, "*")
	s.subscribeWith("failing", failing, nil, "*")
	loaded := measure("loaded")

	// Scheduling noise on a shared two-core machine is tens of milliseconds
	// whatever the load, so the bound is twice the latency alone or that
	// plus 100 ms, whichever is larger.
	bound := max(2*alone, alone+100*time.Millisecond)
	t.Logf("healthy p99: alone %v, next to a hanging and a failing destination %v (bound %v)", alone, loaded, bound)
	if loaded > bound {
		t.Fatalf("healthy p99 rose from %v to %v next to bad destinations; bound %v", alone, loaded, bound)
	}
	_, sub := s.call("GET", "/subscriptions/failing", nil)
	if sub["circuit_state"] == "closed" {
		t.Fatalf("the failing destination's circuit is still closed: %v", sub)
	}
	if n := s.count(`SELECT max(attempts) FROM deliveries WHERE subscription_id = 'failing'`); n > 5 {
		t.Fatalf("an open circuit still spent attempts: %d on one delivery", n)
	}
}
