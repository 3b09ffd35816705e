package e2e

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestSchemaModesEndToEnd runs the event-type catalog through the real
// services: an enforced type refuses data that does not follow its schema
// and delivers data that does; a type in warn mode delivers it marked; a
// type whose validation is off delivers it as before; and a test send
// delivers the type's example, signed, to one subscription only.
func TestSchemaModesEndToEnd(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	rc := newReceiver(t, http.StatusOK)
	other := newReceiver(t, http.StatusOK)
	s.subscribe("sub_orders", rc, "order.*")
	s.subscribe("sub_other", other, "order.*")
	schema := map[string]any{"type": "object", "required": []string{"amount"}, "properties": map[string]any{"amount": map[string]any{"type": "integer"}}}
	for name, mode := range map[string]string{"order.enforced": "enforce", "order.warned": "warn", "order.unchecked": "off"} {
		code, body := s.call("PUT", "/event-types/"+name, map[string]any{"schema": schema, "examples": []any{map[string]any{"amount": 7}}, "validation": mode})
		if code != http.StatusCreated {
			t.Fatalf("PUT %s: %d %v", name, code, body)
		}
	}
	bad := map[string]any{"amount": "seven"}
	post := func(id, typ string, data map[string]any) (int, map[string]any) {
		return s.call("POST", "/events", map[string]any{"id": id, "type": typ, "data": data})
	}
	if code, body := post("evt_refused", "order.enforced", bad); code != http.StatusUnprocessableEntity {
		t.Fatalf("enforced, invalid: %d %v", code, body)
	}
	for id, typ := range map[string]string{"evt_warned": "order.warned", "evt_unchecked": "order.unchecked"} {
		if code, body := post(id, typ, bad); code != http.StatusAccepted {
			t.Fatalf("%s: %d %v", typ, code, body)
		}
	}
	if code, body := post("evt_valid", "order.enforced", map[string]any{"amount": 3}); code != http.StatusAccepted {
		t.Fatalf("enforced, valid: %d %v", code, body)
	}
	code, sent := s.call("POST", "/subscriptions/sub_orders/test", map[string]any{"event_type": "order.enforced"})
	if code != http.StatusAccepted {
		t.Fatalf("test send: %d %v", code, sent)
	}
	testID := sent["id"].(string)

	want := []string{"evt_unchecked", "evt_valid", "evt_warned", testID}
	ids := func(r *receiver) []string {
		var out []string
		for _, d := range r.deliveries() {
			out = append(out, d.EventID)
		}
		slices.Sort(out)
		return out
	}
	slices.Sort(want)
	eventually(t, 30*time.Second, func() bool { return len(rc.deliveries()) >= len(want) && len(other.deliveries()) >= len(want)-1 }, "deliveries did not arrive")
	if got := ids(rc); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v (never the refused event)", got, want)
	}
	if got := ids(other); slices.Contains(got, testID) || slices.Contains(got, "evt_refused") {
		t.Fatalf("the other subscription got %v: a test send goes to one subscription only", got)
	}
	if bad := rc.rejected(); len(bad) > 0 {
		t.Fatalf("signatures failed to verify: %v", bad)
	}
	for _, d := range rc.deliveries() {
		if d.EventID == testID {
			if data, _ := d.Body["data"].(map[string]any); data["amount"] != 7.0 || d.Type != "order.enforced" {
				t.Fatalf("test send delivered %v, want the type's example", d.Body)
			}
		}
	}
	_, ev := s.call("GET", "/events/evt_warned", nil)
	if ev["schema_valid"] != false || ev["schema_version"] != 1.0 {
		t.Fatalf("warned event: %v", ev)
	}
	_, ev = s.call("GET", "/events/evt_unchecked", nil)
	if _, ok := ev["schema_valid"]; ok {
		t.Fatalf("unchecked event was validated: %v", ev)
	}
	if n := s.count(`SELECT count(*) FROM events WHERE id = 'evt_refused'`); n != 0 {
		t.Fatal("the refused event was stored")
	}
}
