package e2e

import (
	"net/http"
	"testing"
	"time"
)

// answers returns a respond func answering codes[n-1] to the n-th request
// for an event, and 200 once the list is used up.
func answers(codes ...int) func(http.ResponseWriter, *http.Request, int) bool {
	return func(w http.ResponseWriter, _ *http.Request, n int) bool {
		if n <= len(codes) {
			w.WriteHeader(codes[n-1])
			return false
		}
		w.WriteHeader(http.StatusOK)
		return true
	}
}

func (s *stack) event(id string) map[string]any {
	s.t.Helper()
	_, ev := s.call("GET", "/events/"+id, nil)
	return ev
}

func (s *stack) attempts(id string) []map[string]any {
	s.t.Helper()
	_, body := s.call("GET", "/events/"+id+"/attempts", nil)
	var out []map[string]any
	for _, a := range body["data"].([]any) {
		out = append(out, a.(map[string]any))
	}
	return out
}

func TestFailureThenSuccessIsDeliveredWithDefaultSettings(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	s.startScheduler()
	rc := newReceiver(t, 0)
	rc.respond = answers(http.StatusInternalServerError)
	s.subscribe("sub", rc, "*")
	s.post("evt_1", "order.created")

	// The default first retry comes within 5 s (full jitter under RETRY_BASE_DELAY).
	eventually(t, 20*time.Second, func() bool { return s.event("evt_1")["status"] == "delivered" }, "never delivered: %v", s.event("evt_1"))
	as := s.attempts("evt_1")
	if len(as) != 2 || as[0]["status_code"] != 500.0 || as[1]["status_code"] != 200.0 || as[1]["number"] != 2.0 {
		t.Fatalf("attempts = %v", as)
	}
}

func TestLastFailedAttemptFailsTheDelivery(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	s.startScheduler()
	rc := newReceiver(t, http.StatusServiceUnavailable)
	code, body := s.call("POST", "/subscriptions", map[string]any{
		"id": "sub", "url": rc.URL, "event_types": []string{"*"}, "secret": rc.secret,
		"max_attempts": 3, "retry_base_delay_ms": 50, "retry_max_delay_ms": 100,
	})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, body)
	}
	s.post("evt_1", "x")
	eventually(t, 20*time.Second, func() bool { return s.event("evt_1")["status"] == "failed" }, "never failed: %v", s.event("evt_1"))
	if as := s.attempts("evt_1"); len(as) != 3 {
		t.Fatalf("want exactly max_attempts=3 attempts, got %v", as)
	}
	d := s.event("evt_1")["deliveries"].([]any)[0].(map[string]any)
	if d["next_attempt_at"] != nil || d["last_status_code"] != 503.0 {
		t.Fatalf("failed delivery = %v", d)
	}

	// An operator redelivers once the receiver is fixed.
	rc.mu.Lock()
	rc.status = http.StatusOK
	rc.mu.Unlock()
	code, body = s.call("POST", "/events/evt_1/redeliver", nil)
	if code != http.StatusAccepted || body["queued"] != 1.0 {
		t.Fatalf("redeliver: %d %v", code, body)
	}
	eventually(t, 20*time.Second, func() bool { return s.event("evt_1")["status"] == "delivered" }, "redelivery did not deliver")
	if as := s.attempts("evt_1"); len(as) != 4 || as[3]["number"] != 4.0 {
		t.Fatalf("the redelivery is recorded as a new attempt: %v", as)
	}
}

func TestGoneDisablesTheSubscription(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	s.startScheduler()
	rc := newReceiver(t, http.StatusGone)
	s.subscribe("sub", rc, "*")
	s.post("evt_1", "x")
	eventually(t, 20*time.Second, func() bool {
		_, sub := s.call("GET", "/subscriptions/sub", nil)
		return sub["state"] == "disabled"
	}, "subscription not disabled")
	_, sub := s.call("GET", "/subscriptions/sub", nil)
	if sub["state_reason"] != "endpoint answered 410 Gone" {
		t.Fatalf("state_reason = %v", sub["state_reason"])
	}
	if st := s.event("evt_1")["status"]; st != "failed" {
		t.Fatalf("the 410'd delivery is %v, want failed", st)
	}
	s.post("evt_2", "x")
	if st := s.event("evt_2")["status"]; st != "unmatched" {
		t.Fatalf("a disabled subscription still receives events: %v", st)
	}
	if n := rc.requests("evt_1"); n != 1 {
		t.Fatalf("410 was retried: %d requests", n)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	s.startScheduler()
	rc := newReceiver(t, 0)
	var first time.Time
	rc.respond = func(w http.ResponseWriter, _ *http.Request, n int) bool {
		if n == 1 {
			first = time.Now()
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return false
		}
		w.WriteHeader(http.StatusOK)
		return true
	}
	// A 1 ms base delay would retry at once; only Retry-After holds it back.
	code, body := s.call("POST", "/subscriptions", map[string]any{
		"id": "sub", "url": rc.URL, "event_types": []string{"*"}, "secret": rc.secret, "retry_base_delay_ms": 1,
	})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, body)
	}
	s.post("evt_1", "x")
	eventually(t, 20*time.Second, func() bool { return len(rc.deliveries()) == 1 }, "never delivered")
	if gap := rc.deliveries()[0].At.Sub(first); gap < 2*time.Second {
		t.Fatalf("retried %v after a 429 with Retry-After: 2", gap)
	}
}

func TestHangingReceiverTimesOut(t *testing.T) {
	s := newStack(t)
	s.startWorker("RETRY_BASE_DELAY=1h")
	rc := newReceiver(t, 0)
	rc.respond = func(_ http.ResponseWriter, r *http.Request, _ int) bool {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return false
	}
	code, body := s.call("POST", "/subscriptions", map[string]any{
		"id": "sub", "url": rc.URL, "event_types": []string{"*"}, "secret": rc.secret, "timeout_ms": 300,
	})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, body)
	}
	s.post("evt_1", "x")
	eventually(t, 20*time.Second, func() bool { return s.event("evt_1")["status"] == "retrying" }, "no attempt recorded")
	as := s.attempts("evt_1")
	if len(as) != 1 || as[0]["error_class"] != "timeout" || as[0]["duration_ms"].(float64) > 5000 {
		t.Fatalf("attempts = %v", as)
	}
}
