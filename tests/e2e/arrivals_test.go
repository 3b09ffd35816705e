package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

// arrivalTolerance is how far above its limit, in percent, a destination
// may see requests in one sliding second, measured at the receiver
// (docs/spec.md, Limits).
const arrivalTolerance = 10

// arrivalBound is the most requests a receiver may see in one sliding
// second from a destination limited to limit a second.
func arrivalBound(limit int) int { return limit + limit*arrivalTolerance/100 }

// clockReceiver answers 204 to every request, after latency, and notes,
// on its own clock, when each one's headers arrived (what a receiver
// enforcing its own rate limit counts) and when each event was first
// received. It keeps nothing else: the stack under test shares the
// machine's cores with it. A wait for a count of events is signalled, not
// polled.
type clockReceiver struct {
	URL     string
	srv     *httptest.Server
	latency time.Duration
	mu      sync.Mutex
	at      []time.Time
	first   map[string]time.Time // webhook-id → its first arrival
	waits   []receiptWait
}

// receiptWait is a wait for at least n distinct events.
type receiptWait struct {
	n    int
	done chan struct{}
}

// newClockReceiver starts a clockReceiver that answers after latency.
func newClockReceiver(t testing.TB, latency time.Duration) *clockReceiver {
	t.Helper()
	rc := &clockReceiver{latency: latency, first: map[string]time.Time{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now, id := time.Now(), r.Header.Get("webhook-id")
		rc.mu.Lock()
		rc.at = append(rc.at, now)
		if _, seen := rc.first[id]; !seen {
			rc.first[id] = now
			kept := rc.waits[:0]
			for _, wt := range rc.waits {
				if len(rc.first) >= wt.n {
					close(wt.done)
				} else {
					kept = append(kept, wt)
				}
			}
			rc.waits = kept
		}
		rc.mu.Unlock()
		// Real time on purpose: a receiver that takes this long.
		time.Sleep(rc.latency)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	rc.srv = srv
	rc.URL = srv.URL + "/hook"
	return rc
}

func (rc *clockReceiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.at)
}

// since returns the arrival times from the n-th on, sorted.
func (rc *clockReceiver) since(n int) []time.Time {
	rc.mu.Lock()
	times := slices.Clone(rc.at[n:])
	rc.mu.Unlock()
	slices.SortFunc(times, time.Time.Compare)
	return times
}

// await returns once n distinct events have been received, or fails the
// test after within.
func (rc *clockReceiver) await(t testing.TB, n int, within time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	rc.mu.Lock()
	if len(rc.first) >= n {
		close(done)
	} else {
		rc.waits = append(rc.waits, receiptWait{n: n, done: done})
	}
	rc.mu.Unlock()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("%s: %d of %d events received within %v", what, rc.distinct(), n, within)
	}
}

// distinct is how many events have been received.
func (rc *clockReceiver) distinct() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.first)
}

// duplicates is how many requests repeated an event already received.
func (rc *clockReceiver) duplicates() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.at) - len(rc.first)
}

// firsts returns each event's first arrival, sorted.
func (rc *clockReceiver) firsts() []time.Time {
	rc.mu.Lock()
	times := slices.Collect(maps.Values(rc.first))
	rc.mu.Unlock()
	slices.SortFunc(times, time.Time.Compare)
	return times
}

// slidingSecondMax returns the most of the sorted times within any one
// second [t, t+1s), and when that second starts.
func slidingSecondMax(times []time.Time) (int, time.Time) {
	most, at, j := 0, time.Time{}, 0
	for i := range times {
		for j < len(times) && times[j].Sub(times[i]) < time.Second {
			j++
		}
		if j-i > most {
			most, at = j-i, times[i]
		}
	}
	return most, at
}

// postBatch posts n events "<prefix>_<i>" in one POST /events/batch.
func (s *stack) postBatch(prefix string, n int) {
	s.t.Helper()
	events := make([]map[string]any, n)
	for i := range events {
		events[i] = map[string]any{"id": fmt.Sprintf("%s_%d", prefix, i), "type": "load.test", "data": map[string]any{"n": i}}
	}
	code, body := s.call("POST", "/events/batch", map[string]any{"events": events})
	if code != http.StatusOK || body["stored"] != float64(n) {
		s.t.Fatalf("post batch: %d %v", code, body["stored"])
	}
}

// Scheduling-lag probe: a goroutine of the test process ticks every
// lagTick and notes each tick later than lagStall. A second in which it
// saw one measured nothing reliable: the receiver here, and the workers
// on the same machine, may have been starved, so arrival times bunch
// where nothing was sent together.
const (
	lagTick  = 5 * time.Millisecond
	lagStall = 50 * time.Millisecond
	// phaseTries is how often a phase is measured before it counts as
	// unmeasurable.
	phaseTries = 3
)

// stall is a span of time in which the probe did not run.
type stall struct{ from, to time.Time }

type lagProbe struct {
	stop, done chan struct{}
	stalls     []stall
}

func startLagProbe() *lagProbe {
	p := &lagProbe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(lagTick)
		defer tick.Stop()
		prev := time.Now()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
				now := time.Now()
				if now.Sub(prev)-lagTick > lagStall {
					p.stalls = append(p.stalls, stall{prev, now})
				}
				prev = now
			}
		}
	}()
	return p
}

// end stops the probe and returns the longest stall overlapping
// [from, from+1s), or zero.
func (p *lagProbe) end(from time.Time) time.Duration {
	close(p.stop)
	<-p.done
	var longest time.Duration
	for _, st := range p.stalls {
		if st.to.After(from) && st.from.Before(from.Add(time.Second)) {
			longest = max(longest, st.to.Sub(st.from))
		}
	}
	return longest
}

// TestDestinationSeesItsRateLimit measures at a receiver what the rate
// limit promises: ten subscriptions share one endpoint at the default
// 100/s, a burst of 1,500 deliveries goes out from a cold start (no
// connection open yet), then, after a pause that empties the window, 500
// more on warm connections. In any sliding second the receiver may see at
// most the limit plus arrivalTolerance percent, on one worker and on two.
// A phase whose busiest second is over the bound while the lag probe saw
// a stall in it is measured again (the cold one on connections the
// receiver closed); the test fails on a busiest second over the bound
// without a stall, and when no phase could be measured at all.
func TestDestinationSeesItsRateLimit(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			s := newStack(t)
			for range workers {
				s.startWorker()
			}
			s.startScheduler()
			rc := newClockReceiver(t, 0)
			const subs, limit = 10, 100
			for i := range subs {
				s.subscribeURL(fmt.Sprintf("sub_%d", i), rc.URL, signing.GenerateSecret(), nil, "*")
			}
			bound := arrivalBound(limit)

			measured := 0
			for _, phase := range []struct {
				name   string
				events int
			}{{"cold", 150}, {"pause", 50}} {
				for try := 1; try <= phaseTries; try++ {
					if phase.name == "cold" {
						rc.srv.CloseClientConnections()
					}
					from := rc.count()
					probe := startLagProbe()
					start := time.Now()
					s.postBatch(fmt.Sprintf("%s%d", phase.name, try), phase.events)
					want := phase.events * subs
					eventually(t, 90*time.Second, func() bool { return rc.count()-from >= want },
						"%s: only %d of %d requests arrived", phase.name, rc.count()-from, want)
					times := rc.since(from)
					most, at := slidingSecondMax(times)
					stalled := probe.end(at)
					took := times[len(times)-1].Sub(times[0])
					t.Logf("%s (try %d): %d requests in %v (%.0f/s); busiest sliding second %d from +%v; longest stall in it %v",
						phase.name, try, len(times), took.Round(time.Millisecond), float64(len(times)-1)/took.Seconds(), most,
						at.Sub(start).Round(time.Millisecond), stalled.Round(time.Millisecond))
					s.awaitRateWindowEmpty(rc.URL) // before the next measurement
					if most <= bound {
						measured++
						break
					}
					if stalled == 0 {
						t.Errorf("%s: the receiver saw %d requests within one second from +%v; the limit is %d/s (at most %d with the tolerance)",
							phase.name, most, at.Sub(start).Round(time.Millisecond), limit, bound)
						measured++
						break
					}
					t.Logf("%s: %d over the bound of %d in a second where this process stalled %v: not a measurement; measuring again",
						phase.name, most, bound, stalled.Round(time.Millisecond))
				}
			}
			if measured == 0 {
				t.Fatalf("the machine was too busy to measure: every phase's busiest second, %d tries each, was over %d while this process stalled more than %v in it",
					phaseTries, bound, lagStall)
			}
		})
	}
}
