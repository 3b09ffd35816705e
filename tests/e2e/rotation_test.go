package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

// TestRotatedSecretSignsBesideTheOldOne rotates a subscription's secret
// with a grace period: a delivery then verifies with either secret, so
// receivers can switch at their own pace; after a rotation without grace,
// only the new secret verifies.
func TestRotatedSecretSignsBesideTheOldOne(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	s.startScheduler()
	type request struct {
		header http.Header
		body   []byte
	}
	var (
		mu  sync.Mutex
		got []request
	)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, request{r.Header.Clone(), body})
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	received := func() []request { mu.Lock(); defer mu.Unlock(); return append([]request(nil), got...) }
	verifies := func(secret string, r request) bool {
		v, err := signing.NewVerifier([]string{secret})
		if err != nil {
			t.Fatal(err)
		}
		return v.VerifyHeaders(r.header, r.body) == nil
	}

	const oldSecret = "the-first-secret"
	s.subscribeURL("rot", srv.URL+"/hook", oldSecret, nil, "*")
	code, rotated := s.call("POST", "/subscriptions/rot/secret/rotate", map[string]any{"grace_period_ms": time.Hour.Milliseconds()})
	if code != http.StatusOK {
		t.Fatalf("rotate: %d %v", code, rotated)
	}
	newSecret := rotated["secret"].(string)
	s.post("during_grace", "order.created")
	eventually(t, 30*time.Second, func() bool { return len(received()) == 1 }, "not delivered")
	r := received()[0]
	if !verifies(oldSecret, r) || !verifies(newSecret, r) {
		t.Fatalf("during the grace period a receiver holding either secret must verify; signature %q", r.header.Get("webhook-signature"))
	}

	code, rotated = s.call("POST", "/subscriptions/rot/secret/rotate", map[string]any{"secret": "the-third-secret", "grace_period_ms": 0})
	if code != http.StatusOK {
		t.Fatalf("rotate: %d %v", code, rotated)
	}
	s.post("after_grace", "order.created")
	eventually(t, 30*time.Second, func() bool { return len(received()) == 2 }, "not delivered")
	r = received()[1]
	if !verifies("the-third-secret", r) || verifies(newSecret, r) || verifies(oldSecret, r) {
		t.Fatalf("without grace only the new secret may verify; signature %q", r.header.Get("webhook-signature"))
	}
	var stored string
	if err := s.db.Pool.QueryRow(t.Context(), `SELECT secret FROM subscriptions WHERE id = 'rot'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored == "the-third-secret" {
		t.Fatal("the secret is stored in the clear")
	}
}
