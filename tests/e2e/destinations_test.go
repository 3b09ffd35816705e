package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCustomHeadersArriveAsSet delivers through the real services to a
// receiver that verifies every signature: the subscription's custom
// headers arrive exactly as set, the signature headers are Dispatch's,
// and the values are neither stored in clear nor shown by the API.
func TestCustomHeadersArriveAsSet(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	rc := newReceiver(t, http.StatusOK)
	headers := map[string]any{"X-Api-Key": "k-e2e-5d1c0f", "Authorization": "Bearer tok-e2e-77aa", "x-lower": "as typed"}
	code, body := s.call("POST", "/subscriptions", map[string]any{"id": "sub_hdr", "url": rc.URL, "event_types": []string{"*"}, "secret": rc.secret, "headers": headers})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, body)
	}
	// A signature header cannot be set: nothing changes.
	code, body = s.call("PATCH", "/subscriptions/sub_hdr", map[string]any{"headers": map[string]string{"webhook-signature": "v1,forged"}})
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("a signature header: %d %v", code, body)
	}

	s.post("evt_hdr", "order.created")
	eventually(t, 30*time.Second, func() bool { return len(rc.deliveries()) >= 1 }, "no delivery arrived")
	if bad := rc.rejected(); len(bad) > 0 {
		t.Fatalf("signatures failed to verify: %v", bad)
	}
	h := rc.deliveries()[0].Header
	for name, want := range map[string]string{"X-Api-Key": "k-e2e-5d1c0f", "Authorization": "Bearer tok-e2e-77aa", "X-Lower": "as typed"} {
		if got := h.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := h.Values("webhook-signature"); len(got) != 1 || !strings.HasPrefix(got[0], "v1,") || got[0] == "v1,forged" {
		t.Errorf("webhook-signature = %q", got)
	}

	var stored string
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT headers::text FROM subscriptions WHERE id = 'sub_hdr'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		_, ev := s.call("GET", "/events/evt_hdr", nil)
		return ev["status"] == "delivered"
	}, "evt_hdr never reported delivered")
	_, sub := s.call("GET", "/subscriptions/sub_hdr", nil)
	_, attempts := s.call("GET", "/events/evt_hdr/attempts", nil)
	answers, _ := json.Marshal([]any{sub, attempts})
	for _, secret := range []string{"k-e2e-5d1c0f", "tok-e2e-77aa"} {
		if strings.Contains(stored, secret) || strings.Contains(string(answers), secret) {
			t.Errorf("%q stored in clear or shown: %s %s", secret, stored, answers)
		}
	}
	_, revealed := s.call("POST", "/subscriptions/sub_hdr/headers/reveal", nil)
	if got, _ := revealed["headers"].(map[string]any); got["X-Api-Key"] != "k-e2e-5d1c0f" {
		t.Errorf("reveal = %v", revealed)
	}
}
