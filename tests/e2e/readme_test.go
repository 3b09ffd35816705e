package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The seed README's request bodies, exactly as printed there.
const (
	readmeSubscription = `{
    "id": "sub_123",
    "url": "https://example.com/webhook",
    "event_types": ["order.*"],
    "secret": "my-secret-key"
  }`
	readmeEvent = `{
    "id": "evt_123",
    "type": "order.created",
    "source": "billing-service",
    "data": {"order_id": "12345", "amount": 99.90}
  }`
	readmeSecret = "my-secret-key"
)

// plainReceiver verifies deliveries as a receiver with no Dispatch code
// would: an HMAC-SHA256 computed here, keyed by the secret's bytes.
type plainReceiver struct {
	URL    string
	secret string
	mu     sync.Mutex
	got    []plainDelivery
}

// plainDelivery is one request that arrived, with the verification result.
type plainDelivery struct {
	Header http.Header
	Body   []byte
	Err    error // nil when the signature verified
}

func newPlainReceiver(t *testing.T, secret string) *plainReceiver {
	t.Helper()
	rc := &plainReceiver{secret: secret}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	rc.URL = srv.URL + "/webhook"
	return rc
}

func (rc *plainReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = verifyPlainHMAC(rc.secret, r.Header, body)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, plainDelivery{Header: r.Header.Clone(), Body: body, Err: err})
	rc.mu.Unlock()
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (rc *plainReceiver) deliveries() []plainDelivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]plainDelivery(nil), rc.got...)
}

// verifyPlainHMAC is the Standard Webhooks check written out by hand:
// base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")) must equal one of
// the "v1," signatures, and the timestamp must be recent.
func verifyPlainHMAC(secret string, h http.Header, body []byte) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q: %w", ts, err)
	}
	if age := time.Since(time.Unix(unix, 0)); age > 5*time.Minute || age < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %s is %s away", ts, age)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(sigs) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no signature in " + strconv.Quote(sigs) + " matches")
}

// TestReadmeExamples runs the seed README's API examples as written, only
// the webhook URL pointing at a local receiver instead of example.com.
func TestReadmeExamples(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	rc := newPlainReceiver(t, readmeSecret)

	code, sub := s.call("POST", "/subscriptions", json.RawMessage(strings.Replace(readmeSubscription, "https://example.com/webhook", rc.URL, 1)))
	if code != http.StatusCreated {
		t.Fatalf("create subscription: %d %v", code, sub)
	}
	if sub["id"] != "sub_123" || sub["url"] != rc.URL || sub["secret"] != readmeSecret || fmt.Sprint(sub["event_types"]) != "[order.*]" {
		t.Fatalf("created subscription = %v", sub)
	}

	code, ev := s.call("POST", "/events", json.RawMessage(readmeEvent))
	if code != http.StatusAccepted || ev["id"] != "evt_123" || ev["type"] != "order.created" || ev["source"] != "billing-service" {
		t.Fatalf("create event: %d %v", code, ev)
	}

	eventually(t, 30*time.Second, func() bool { return len(rc.deliveries()) >= 1 }, "the event was never delivered")
	d := rc.deliveries()[0]
	if d.Err != nil {
		t.Fatalf("the plain secret does not verify the delivery: %v", d.Err)
	}
	if d.Header.Get("X-Dispatch-Signature") != d.Header.Get("webhook-signature") || d.Header.Get("X-Dispatch-Timestamp") != d.Header.Get("webhook-timestamp") {
		t.Fatalf("X-Dispatch-* headers differ from webhook-*: %v", d.Header)
	}
	if d.Header.Get("webhook-id") != "evt_123" || d.Header.Get("X-Dispatch-Event-ID") != "evt_123" || d.Header.Get("X-Dispatch-Event-Type") != "order.created" {
		t.Fatalf("delivery headers = %v", d.Header)
	}
	var payload map[string]any
	if err := json.Unmarshal(d.Body, &payload); err != nil {
		t.Fatalf("delivered body %s: %v", d.Body, err)
	}
	wantData := map[string]any{"order_id": "12345", "amount": 99.9}
	if payload["id"] != "evt_123" || payload["type"] != "order.created" || payload["source"] != "billing-service" || fmt.Sprint(payload["data"]) != fmt.Sprint(wantData) {
		t.Fatalf("delivered body = %s", d.Body)
	}

	// curl http://localhost:8080/events/evt_123
	eventually(t, 10*time.Second, func() bool {
		_, ev := s.call("GET", "/events/evt_123", nil)
		return ev["status"] == "delivered"
	}, "evt_123 never reported delivered")
	code, ev = s.call("GET", "/events/evt_123", nil)
	ds, _ := ev["deliveries"].([]any)
	if code != http.StatusOK || ev["type"] != "order.created" || fmt.Sprint(ev["data"]) != fmt.Sprint(wantData) || len(ds) != 1 {
		t.Fatalf("GET /events/evt_123 = %d %v", code, ev)
	}
	if del := ds[0].(map[string]any); del["subscription_id"] != "sub_123" || del["status"] != "delivered" || del["attempts"] != 1.0 || del["last_status_code"] != 200.0 {
		t.Fatalf("delivery = %v", del)
	}

	// curl http://localhost:8080/events/evt_123/attempts
	code, attempts := s.call("GET", "/events/evt_123/attempts", nil)
	list, _ := attempts["data"].([]any)
	if code != http.StatusOK || len(list) != 1 {
		t.Fatalf("GET /events/evt_123/attempts = %d %v", code, attempts)
	}
	if a := list[0].(map[string]any); a["subscription_id"] != "sub_123" || a["number"] != 1.0 || a["status_code"] != 200.0 {
		t.Fatalf("attempt = %v", a)
	}

	// curl http://localhost:8080/subscriptions
	code, subs := s.call("GET", "/subscriptions", nil)
	data, _ := subs["data"].([]any)
	if code != http.StatusOK || len(data) != 1 {
		t.Fatalf("GET /subscriptions = %d %v", code, subs)
	}
	if got := data[0].(map[string]any); got["id"] != "sub_123" || got["url"] != rc.URL || got["state"] != "active" || got["secret"] != nil {
		t.Fatalf("listed subscription = %v (the secret is never listed)", got)
	}

	// curl -X DELETE http://localhost:8080/subscriptions/sub_123
	if code, body := s.call("DELETE", "/subscriptions/sub_123", nil); code != http.StatusNoContent {
		t.Fatalf("DELETE /subscriptions/sub_123 = %d %v", code, body)
	}
	if code, _ := s.call("GET", "/subscriptions/sub_123", nil); code != http.StatusNotFound {
		t.Fatalf("GET /subscriptions/sub_123 after delete = %d, want 404", code)
	}
	if _, subs := s.call("GET", "/subscriptions", nil); len(subs["data"].([]any)) != 0 {
		t.Fatalf("subscriptions after delete = %v", subs)
	}
}
