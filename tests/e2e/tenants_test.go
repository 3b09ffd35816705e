package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTenantsReceiveOnlyTheirOwnEvents: ten tenants post at once, each
// event alone and in batches, every tenant's receiver subscribed to every
// type. Each receiver must get exactly its tenant's events, plus the
// events sent to every tenant, and nothing of another tenant's.
func TestTenantsReceiveOnlyTheirOwnEvents(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	s.startScheduler()
	const tenants, single, batches, perBatch = 10, 20, 2, 20
	receivers := make([]*receiver, tenants)
	for i := range tenants {
		tenant := fmt.Sprintf("tenant_%d", i)
		if code, body := s.call("PUT", "/tenants/"+tenant, map[string]any{"name": tenant}); code != http.StatusCreated {
			t.Fatalf("create %s: %d %v", tenant, code, body)
		}
		receivers[i] = newReceiver(t, http.StatusOK)
		code, body := s.call("POST", "/subscriptions", map[string]any{"id": "sub_" + tenant, "tenant_id": tenant,
			"url": receivers[i].URL, "event_types": []string{"*"}, "secret": receivers[i].secret})
		if code != http.StatusCreated {
			t.Fatalf("subscribe %s: %d %v", tenant, code, body)
		}
	}
	defaultReceiver := newReceiver(t, http.StatusOK)
	s.subscribe("sub_default", defaultReceiver, "*")

	var wg sync.WaitGroup
	for i := range tenants {
		tenant := fmt.Sprintf("tenant_%d", i)
		wg.Go(func() {
			for n := range single {
				id := fmt.Sprintf("%s_single_%d", tenant, n)
				if code, body, err := s.send("POST", "/events", map[string]any{"id": id, "type": "order.created", "tenant_id": tenant, "data": map[string]any{"tenant": tenant}}); err != nil || code != http.StatusAccepted {
					t.Errorf("post %s: %d %v %v", id, code, body, err)
				}
			}
		})
		wg.Go(func() {
			for n := range batches {
				events := make([]map[string]any, perBatch)
				for k := range events {
					events[k] = map[string]any{"id": fmt.Sprintf("%s_batch_%d_%d", tenant, n, k), "type": "order.paid", "tenant_id": tenant, "data": map[string]any{"tenant": tenant}}
				}
				if code, body, err := s.send("POST", "/events/batch", map[string]any{"events": events}); err != nil || code != http.StatusOK || body["stored"] != float64(perBatch) {
					t.Errorf("batch for %s: %d %v %v", tenant, code, body, err)
				}
			}
		})
	}
	wg.Wait()
	if code, body := s.call("POST", "/events", map[string]any{"id": "to_everyone", "type": "notice", "tenant_id": "*", "data": map[string]any{}}); code != http.StatusAccepted {
		t.Fatalf("post to every tenant: %d %v", code, body)
	}
	s.post("untagged", "notice")

	want := single + batches*perBatch + 1
	for i, rc := range receivers {
		tenant := fmt.Sprintf("tenant_%d", i)
		eventually(t, 60*time.Second, func() bool { return len(rc.deliveries()) >= want }, "%s received %d of %d", tenant, len(rc.deliveries()), want)
		for _, d := range rc.deliveries() {
			if d.EventID == "to_everyone" {
				continue
			}
			data, _ := json.Marshal(d.Body["data"])
			if !strings.HasPrefix(d.EventID, tenant+"_") || !strings.Contains(string(data), `"`+tenant+`"`) {
				t.Errorf("%s's receiver got event %s with data %s", tenant, d.EventID, data)
			}
		}
	}
	eventually(t, 30*time.Second, func() bool { return len(defaultReceiver.deliveries()) >= 2 }, "the default tenant's receiver got %d of 2", len(defaultReceiver.deliveries()))
	// Everything is delivered: nothing more can arrive late.
	eventually(t, 30*time.Second, func() bool { return s.count(`SELECT count(*) FROM deliveries WHERE status <> 'delivered'`) == 0 }, "deliveries still open")
	for i, rc := range receivers {
		if got := len(rc.deliveries()); got != want {
			t.Errorf("tenant_%d's receiver got %d deliveries, want %d", i, got, want)
		}
	}
	got := map[string]bool{}
	for _, d := range defaultReceiver.deliveries() {
		got[d.EventID] = true
	}
	if len(got) != 2 || !got["untagged"] || !got["to_everyone"] {
		t.Errorf("the default tenant's receiver got %v, want only untagged and to_everyone", got)
	}
}

// TestDeletedTenantLeavesNothingBehind deletes a tenant while an attempt
// of its subscription is in flight: its rows go, the late attempt writes
// nothing, and the other tenant's subscription and events stay.
func TestDeletedTenantLeavesNothingBehind(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	s.startScheduler()
	for _, tenant := range []string{"doomed", "kept"} {
		if code, body := s.call("PUT", "/tenants/"+tenant, map[string]any{}); code != http.StatusCreated {
			t.Fatalf("create %s: %d %v", tenant, code, body)
		}
	}
	hanging := make(chan struct{})
	released := make(chan struct{})
	var once sync.Once
	doomed := newReceiver(t, 0)
	doomed.respond = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		once.Do(func() { close(hanging) })
		<-released
		w.WriteHeader(http.StatusInternalServerError)
		return false
	}
	kept := newReceiver(t, http.StatusOK)
	for _, sub := range []struct {
		tenant string
		rc     *receiver
	}{{"doomed", doomed}, {"kept", kept}} {
		code, body := s.call("POST", "/subscriptions", map[string]any{"id": "sub_" + sub.tenant, "tenant_id": sub.tenant,
			"url": sub.rc.URL, "event_types": []string{"*"}, "secret": sub.rc.secret, "timeout_ms": 20000})
		if code != http.StatusCreated {
			t.Fatalf("subscribe: %d %v", code, body)
		}
		if code, body := s.call("POST", "/events", map[string]any{"id": "evt_" + sub.tenant, "type": "x", "tenant_id": sub.tenant, "data": map[string]any{}}); code != http.StatusAccepted {
			t.Fatalf("post: %d %v", code, body)
		}
	}
	<-hanging
	if code, body := s.call("DELETE", "/tenants/doomed", nil); code != http.StatusNoContent {
		t.Fatalf("delete tenant: %d %v", code, body)
	}
	close(released) // the attempt fails after the deletion
	eventually(t, 30*time.Second, func() bool { return len(kept.deliveries()) == 1 }, "the kept tenant's event was not delivered")
	// The worker records the late attempt's outcome, or finds its delivery
	// gone, within the attempt's own round trip.
	eventually(t, 30*time.Second, func() bool {
		return s.count(`SELECT count(*) FROM deliveries WHERE status = 'processing'`) == 0
	}, "a delivery stayed in flight")
	for table, query := range map[string]string{
		"tenant":        `SELECT count(*) FROM tenants WHERE id = 'doomed'`,
		"subscriptions": `SELECT count(*) FROM subscriptions WHERE tenant_id = 'doomed'`,
		"events":        `SELECT count(*) FROM events WHERE id = 'evt_doomed'`,
		"deliveries":    `SELECT count(*) FROM deliveries WHERE subscription_id = 'sub_doomed'`,
	} {
		if n := s.count(query); n != 0 {
			t.Errorf("%d %s rows of the deleted tenant remain", n, table)
		}
	}
	if n := s.count(`SELECT count(*) FROM events WHERE id = 'evt_kept'`); n != 1 {
		t.Errorf("the kept tenant's event is gone")
	}
	if code, _ := s.call("GET", "/subscriptions/sub_kept", nil); code != http.StatusOK {
		t.Errorf("the kept tenant's subscription answers %d", code)
	}
}
