package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestEventsReachExactlyTheMatchingReceivers(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	orders := newReceiver(t, http.StatusOK)
	invoices := newReceiver(t, http.StatusNoContent)
	s.subscribe("sub_orders", orders, "order.*")
	s.subscribe("sub_invoices", invoices, "invoice.paid")

	s.post("evt_order", "order.created")
	s.post("evt_invoice", "invoice.paid")
	s.post("evt_other", "user.signed_up")
	s.post("evt_invoice_sent", "invoice.sent")

	eventually(t, 30*time.Second, func() bool {
		return len(orders.deliveries()) >= 1 && len(invoices.deliveries()) >= 1
	}, "deliveries did not arrive")
	// Both matching events are in; once no delivery is open, no stray one
	// can follow.
	s.settle(30 * time.Second)
	if n := s.count(`SELECT count(*) FROM deliveries`); n != 2 {
		t.Fatalf("%d deliveries for two matching events", n)
	}

	if got := orders.deliveries(); len(got) != 1 || got[0].EventID != "evt_order" || got[0].Type != "order.created" {
		t.Fatalf("orders receiver got %+v, want only evt_order", got)
	}
	if got := invoices.deliveries(); len(got) != 1 || got[0].EventID != "evt_invoice" {
		t.Fatalf("invoices receiver got %+v, want only evt_invoice", got)
	}
	if bad := append(orders.rejected(), invoices.rejected()...); len(bad) > 0 {
		t.Fatalf("signatures failed to verify: %v", bad)
	}
	body := orders.deliveries()[0].Body
	if body["id"] != "evt_order" || body["type"] != "order.created" || body["source"] != "e2e" || body["timestamp"] == nil {
		t.Fatalf("delivered body %v lacks the event's fields", body)
	}
	if data, _ := body["data"].(map[string]any); data["n"] != 1.0 {
		t.Fatalf("delivered data = %v", body["data"])
	}

	eventually(t, 10*time.Second, func() bool {
		_, ev := s.call("GET", "/events/evt_order", nil)
		return ev["status"] == "delivered"
	}, "evt_order never reported delivered")
	_, ev := s.call("GET", "/events/evt_order", nil)
	ds := ev["deliveries"].([]any)
	if len(ds) != 1 || ds[0].(map[string]any)["subscription_id"] != "sub_orders" || ds[0].(map[string]any)["attempts"] != 1.0 {
		t.Fatalf("deliveries = %v", ds)
	}
	code, attempts := s.call("GET", "/events/evt_order/attempts", nil)
	list := attempts["data"].([]any)
	if code != http.StatusOK || len(list) != 1 {
		t.Fatalf("attempts = %d %v", code, attempts)
	}
	a := list[0].(map[string]any)
	if a["status_code"] != 200.0 || a["number"] != 1.0 || a["started_at"] == nil || a["instance"] == "" {
		t.Fatalf("attempt = %v", a)
	}
	_, ev = s.call("GET", "/events/evt_other", nil)
	if ev["status"] != "unmatched" {
		t.Fatalf("evt_other status = %v, want unmatched", ev["status"])
	}
}

func TestFailingReceiverLeavesDeliveryRetrying(t *testing.T) {
	s := newStack(t)
	// A long first backoff keeps the delivery visibly "retrying".
	s.startWorker("RETRY_BASE_DELAY=1h")
	broken := newReceiver(t, http.StatusInternalServerError)
	s.subscribe("sub_broken", broken, "*")
	s.post("evt_1", "order.created")

	eventually(t, 30*time.Second, func() bool {
		_, ev := s.call("GET", "/events/evt_1", nil)
		return ev["status"] == "retrying"
	}, "delivery never became retrying")
	_, ev := s.call("GET", "/events/evt_1", nil)
	d := ev["deliveries"].([]any)[0].(map[string]any)
	if d["status"] != "retrying" || d["last_status_code"] != 500.0 || d["next_attempt_at"] == nil || d["attempts"] != 1.0 {
		t.Fatalf("delivery = %v", d)
	}
	_, attempts := s.call("GET", "/events/evt_1/attempts", nil)
	list := attempts["data"].([]any)
	if len(list) != 1 {
		t.Fatalf("attempts = %v", list)
	}
	a := list[0].(map[string]any)
	if a["status_code"] != 500.0 || a["error_class"] != "http_status" || a["error"] != "HTTP 500" {
		t.Fatalf("attempt = %v", a)
	}
}

func TestDuplicatePostsDeliverOnce(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	rc := newReceiver(t, http.StatusOK)
	s.subscribe("sub_all", rc, "*")

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[int]int{}
	)
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			code, err := s.tryPost("evt_dup", "order.created")
			errs <- err
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if codes[http.StatusAccepted] != 1 || codes[http.StatusOK] != 7 {
		t.Fatalf("answers = %v, want one 202 and seven 200", codes)
	}
	eventually(t, 30*time.Second, func() bool { return len(rc.deliveries()) >= 1 }, "the delivery did not arrive")
	s.settle(30 * time.Second)
	if n := s.count(`SELECT count(*) FROM deliveries`); n != 1 {
		t.Fatalf("%d deliveries for one event posted eight times", n)
	}
	count := map[string]int{}
	for _, d := range rc.deliveries() {
		count[d.EventID]++
	}
	if count["evt_dup"] != 1 {
		t.Fatalf("evt_dup delivered %d times: %v", count["evt_dup"], count)
	}
}

func TestManyEventsAllDelivered(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	s.startWorker() // two workers share the consumer group
	// Both subscriptions share one destination and its default 100/s: what
	// a worker cannot soon send waits in the database for the scheduler
	// to bring it back, as in every deployment (ADR 25).
	s.startScheduler()
	rc := newReceiver(t, http.StatusOK)
	s.subscribe("sub_a", rc, "*")
	s.subscribe("sub_b", rc, "load.*")
	const n = 200
	for i := range n {
		s.post(fmt.Sprintf("evt_%03d", i), "load.test")
	}
	eventually(t, 60*time.Second, func() bool { return len(rc.deliveries()) >= 2*n }, "only %d of %d deliveries arrived", len(rc.deliveries()), 2*n)
	seen := map[string]int{}
	for _, d := range rc.deliveries() {
		seen[d.EventID]++
	}
	if len(seen) != n {
		t.Fatalf("%d distinct events delivered, want %d", len(seen), n)
	}
}
