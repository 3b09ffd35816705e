package e2e

import (
	"fmt"
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

// clockReceiver answers 204 to every request and notes, on its own clock,
// when each one's headers arrived: what a receiver enforcing its own rate
// limit counts.
type clockReceiver struct {
	URL string
	mu  sync.Mutex
	at  []time.Time
}

func newClockReceiver(t *testing.T) *clockReceiver {
	t.Helper()
	rc := &clockReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		now := time.Now()
		rc.mu.Lock()
		rc.at = append(rc.at, now)
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
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

// TestDestinationSeesItsRateLimit measures at a receiver what the rate
// limit promises: ten subscriptions share one endpoint at the default
// 100/s, a burst of 1,500 deliveries goes out from a cold start (no
// connection open yet), then, after a pause that empties the window, 500
// more on warm connections. In any sliding second the receiver may see at
// most the limit plus arrivalTolerance percent, on one worker and on two.
func TestDestinationSeesItsRateLimit(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			s := newStack(t)
			for range workers {
				s.startWorker()
			}
			s.startScheduler()
			rc := newClockReceiver(t)
			const subs, limit = 10, 100
			for i := range subs {
				s.subscribeURL(fmt.Sprintf("sub_%d", i), rc.URL, signing.GenerateSecret(), nil, "*")
			}
			bound := arrivalBound(limit)

			for _, phase := range []struct {
				name   string
				events int
			}{{"cold", 150}, {"pause", 50}} {
				from := rc.count()
				start := time.Now()
				s.postBatch(phase.name, phase.events)
				want := phase.events * subs
				eventually(t, 90*time.Second, func() bool { return rc.count()-from >= want },
					"%s: only %d of %d requests arrived", phase.name, rc.count()-from, want)
				times := rc.since(from)
				most, at := slidingSecondMax(times)
				took := times[len(times)-1].Sub(times[0])
				t.Logf("%s: %d requests in %v (%.0f/s); busiest sliding second %d from +%v",
					phase.name, len(times), took.Round(time.Millisecond), float64(len(times)-1)/took.Seconds(), most, at.Sub(start).Round(time.Millisecond))
				if most > bound {
					t.Errorf("%s: the receiver saw %d requests within one second from +%v; the limit is %d/s (at most %d with the tolerance)",
						phase.name, most, at.Sub(start).Round(time.Millisecond), limit, bound)
				}
				// The window empties before the next phase.
				time.Sleep(1500 * time.Millisecond)
			}
		})
	}
}
