package e2e

import (
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// opEvents returns the operational events rc accepted about subscription
// sub, in the order they arrived: each type, with the threshold for
// failing ones.
func opEvents(rc *receiver, sub string) []string {
	var out []string
	for _, d := range rc.deliveries() {
		data, _ := d.Body["data"].(map[string]any)
		if data["subscription_id"] != sub {
			continue
		}
		name := d.Type
		if th, ok := data["threshold_percent"].(float64); ok {
			name += "@" + map[float64]string{50: "50", 70: "70", 90: "90"}[th]
		}
		out = append(out, name)
	}
	return out
}

// opData returns the data of the first operational event of type typ
// about sub that rc accepted.
func opData(rc *receiver, typ, sub string) map[string]any {
	for _, d := range rc.deliveries() {
		data, _ := d.Body["data"].(map[string]any)
		if d.Type == typ && data["subscription_id"] == sub {
			return data
		}
	}
	return nil
}

// TestOperationalEvents runs a stack whose scheduler disables a
// subscription after 4 s of failures, and an operator's subscription to
// dispatch.* that verifies every signature: a failing destination is
// reported at 50, 70 and 90 % and then disabled with its delivery kept; a
// destination that recovers after a report is reported recovered; a
// delivery that fails for good is reported exhausted; and an operator
// endpoint that fails to take these events reports nothing about itself.
func TestOperationalEvents(t *testing.T) {
	s := newStack(t)
	// The circuits stay closed, so that the failing endpoints keep being
	// attempted and flaky's retry finds it mended.
	s.startWorker("CIRCUIT_FAILURE_THRESHOLD=1000")
	s.startScheduler("AUTO_DISABLE_AFTER=4s", "OPERATIONAL_CHECK_INTERVAL=50ms")

	ops := newReceiver(t, http.StatusOK)
	s.subscribe("ops", ops, "dispatch.*")
	broken := newReceiver(t, http.StatusInternalServerError)
	s.subscribeWith("ops_broken", broken, map[string]any{"max_attempts": 2, "retry_base_delay_ms": 50, "retry_max_delay_ms": 100}, "dispatch.*")

	// "bad" fails every attempt; "flaky" fails until the test mends it.
	bad := newReceiver(t, http.StatusInternalServerError)
	s.subscribeURL("bad", bad.URL+"?token=secret", bad.secret, map[string]any{"max_attempts": 100, "retry_base_delay_ms": 100, "retry_max_delay_ms": 200}, "order.*")
	var mended atomic.Bool
	flaky := newReceiver(t, 0)
	flaky.respond = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		if mended.Load() {
			w.WriteHeader(http.StatusOK)
			return true
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return false
	}
	s.subscribeWith("flaky", flaky, map[string]any{"max_attempts": 100, "retry_base_delay_ms": 100, "retry_max_delay_ms": 200}, "invoice.*")
	once := newReceiver(t, http.StatusServiceUnavailable)
	s.subscribeWith("once", once, map[string]any{"max_attempts": 1}, "payment.*")

	s.post("evt_bad", "order.created")
	s.post("evt_flaky", "invoice.paid")
	s.post("evt_once", "payment.failed")

	// flaky: mended once reported failing; its next retry succeeds.
	eventually(t, 20*time.Second, func() bool { return len(opEvents(ops, "flaky")) > 0 }, "flaky never reported failing")
	mended.Store(true)
	eventually(t, 20*time.Second, func() bool {
		return slices.Contains(opEvents(ops, "flaky"), "dispatch.subscription.recovered")
	}, "flaky never reported recovered: %v", opEvents(ops, "flaky"))
	if got := opEvents(ops, "flaky"); got[0] != "dispatch.subscription.failing@50" || slices.Contains(got, "dispatch.subscription.disabled") {
		t.Fatalf("flaky's reports = %v", got)
	}
	if rec := opData(ops, "dispatch.subscription.recovered", "flaky"); rec["failing_since"] == nil || rec["url"] != flaky.URL {
		t.Fatalf("recovered = %v", rec)
	}

	// bad: each threshold once, then disabled.
	want := []string{"dispatch.subscription.failing@50", "dispatch.subscription.failing@70", "dispatch.subscription.failing@90", "dispatch.subscription.disabled"}
	eventually(t, 30*time.Second, func() bool { return len(opEvents(ops, "bad")) >= len(want) }, "bad's reports: %v", opEvents(ops, "bad"))
	if got := opEvents(ops, "bad"); !slices.Equal(got, want) {
		t.Fatalf("bad's reports = %v, want %v", got, want)
	}
	failing := opData(ops, "dispatch.subscription.failing", "bad")
	if failing["url"] != bad.URL || failing["tenant_id"] != "default" || failing["auto_disable_after_seconds"] != 4.0 ||
		failing["failing_since"] == nil || failing["disable_at"] == nil || failing["open_deliveries"] != 1.0 {
		t.Fatalf("failing = %v (the url without its query)", failing)
	}
	_, sub := s.call("GET", "/subscriptions/bad", nil)
	if sub["state"] != "disabled" || sub["state_reason"] != opData(ops, "dispatch.subscription.disabled", "bad")["reason"] {
		t.Fatalf("bad = %v", sub)
	}
	if d := s.event("evt_bad")["deliveries"].([]any)[0].(map[string]any); d["status"] != "retrying" {
		t.Fatalf("a disabled subscription's delivery waits: %v", d)
	}

	// once: its delivery failed for good.
	eventually(t, 20*time.Second, func() bool { return opData(ops, "dispatch.delivery.exhausted", "once") != nil }, "once never reported exhausted")
	if ex := opData(ops, "dispatch.delivery.exhausted", "once"); ex["event_id"] != "evt_once" || ex["event_type"] != "payment.failed" ||
		ex["attempts"] != 1.0 || ex["last_status_code"] != 503.0 {
		t.Fatalf("exhausted = %v", ex)
	}

	// Every operational event reached the operator signed (the receiver
	// verifies each) and once.
	if bad := ops.rejected(); len(bad) > 0 {
		t.Fatalf("signatures refused: %v", bad)
	}
	seen := map[string]bool{}
	for _, d := range ops.deliveries() {
		if seen[d.EventID] {
			t.Fatalf("event %s delivered twice", d.EventID)
		}
		seen[d.EventID] = true
	}

	// No loop: the broken operator endpoint failed every operational
	// event for good, and nothing was reported about it.
	eventually(t, 20*time.Second, func() bool {
		return s.count(`SELECT count(*) FROM deliveries WHERE subscription_id = 'ops_broken' AND status <> 'failed'`) == 0
	}, "ops_broken's deliveries never all failed")
	if n := s.count(`SELECT count(*) FROM deliveries WHERE subscription_id = 'ops_broken'`); n < len(want) {
		t.Fatalf("ops_broken had %d deliveries", n)
	}
	if n := s.count(`SELECT count(*) FROM subscriptions WHERE id = 'ops_broken' AND failing_since IS NULL AND state = 'active'`); n != 1 {
		t.Fatal("ops_broken's failures of operational events started a failing period")
	}
	if n := s.count(`SELECT count(*) FROM deliveries WHERE subscription_id = 'ops_broken' AND report_failure`); n != 0 {
		t.Fatalf("%d of ops_broken's failed deliveries are to be reported", n)
	}
	if got := opEvents(ops, "ops_broken"); len(got) > 0 {
		t.Fatalf("reports about the operator's own endpoint: %v", got)
	}
}
