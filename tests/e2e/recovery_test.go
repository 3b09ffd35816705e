package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// A destination that fails for a while, with events arriving throughout,
// gets its whole backlog within seconds of its first successful trial
// once it recovers, and nothing is lost.
func TestBacklogArrivesPromptlyAfterRecovery(t *testing.T) {
	s := newStack(t)
	s.startWorker("CIRCUIT_OPEN_DURATION=2s", "RETRY_BASE_DELAY=200ms", "RETRY_MAX_DELAY=1s", "RETRY_MAX_ATTEMPTS=100")
	// The default poll: prompt retries must come from waking at due times.
	s.startScheduler("RETRY_POLL_INTERVAL=5s")

	var (
		mu           sync.Mutex
		healthy      bool
		firstSuccess time.Time
	)
	rc := newReceiver(t, http.StatusOK)
	rc.respond = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		mu.Lock()
		defer mu.Unlock()
		if !healthy {
			w.WriteHeader(http.StatusInternalServerError)
			return false
		}
		if firstSuccess.IsZero() {
			firstSuccess = time.Now()
		}
		w.WriteHeader(http.StatusOK)
		return true
	}
	s.subscribe("flaky", rc, "*")

	// Failing for 8 s: the circuit opens, half-opens every 2 s, its trials
	// fail and it opens again, while an event arrives every 200 ms.
	const n = 40
	for i := range n {
		s.post(fmt.Sprintf("backlog_%02d", i), "order.created")
		// Arrivals spread over the real seconds in which the worker's
		// circuit opens and half-opens are the scenario itself.
		time.Sleep(200 * time.Millisecond)
	}
	if got := len(rc.deliveries()); got != 0 {
		t.Fatalf("%d deliveries accepted while failing", got)
	}
	mu.Lock()
	healthy = true
	mu.Unlock()

	eventually(t, 30*time.Second, func() bool {
		return s.count(`SELECT count(*) FROM deliveries WHERE subscription_id = 'flaky' AND status = 'delivered'`) == n
	}, "backlog not delivered: %d of %d", len(rc.deliveries()), n)

	ids := map[string]bool{}
	var last time.Time
	for _, d := range rc.deliveries() {
		ids[d.EventID] = true
		if d.At.After(last) {
			last = d.At
		}
	}
	if len(ids) != n {
		t.Fatalf("%d distinct events delivered, want %d", len(ids), n)
	}
	mu.Lock()
	drained := last.Sub(firstSuccess)
	mu.Unlock()
	t.Logf("backlog of %d drained %v after the first successful trial", n, drained)
	// From the first successful trial: the deliveries the open circuit
	// gave back to the database are due by the end of its open period
	// plus the worker's spread (2 s + up to 1 s, and that period ended
	// before the trial), failed ones within RETRY_MAX_DELAY (1 s); the
	// scheduler republishes them within about a second of their due time;
	// one refused while the other trials are in flight asks again within
	// 750 ms. That is about 3 s at worst; 5 s leaves room for a loaded
	// machine. Before, a refused delivery waited out a whole open period
	// and the scheduler its 5 s poll: up to about 8 s.
	if drained > 5*time.Second {
		t.Fatalf("backlog drained %v after the first successful trial, want within 5s", drained)
	}
}
