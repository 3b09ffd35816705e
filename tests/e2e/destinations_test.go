package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/seal"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
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

// newTLSReceiver is newReceiver over HTTPS with a certificate from ca,
// requiring and verifying a client certificate from ca.
func newTLSReceiver(t *testing.T, ca *testkit.CA) *receiver {
	t.Helper()
	secret := signing.GenerateSecret()
	v, err := signing.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{status: http.StatusOK, secret: secret, verifier: v, seen: map[string]int{}}
	srv := httptest.NewUnstartedServer(rc)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.IssueValid(t, "receiver").TLS}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	rc.URL = srv.URL + "/hook"
	return rc
}

// TestMutualTLS delivers to a receiver that requires a client certificate
// from a CA the test makes: delivered with the subscription's
// certificate; refused, and classified tls, without one or with one that
// expired after it was set.
func TestMutualTLS(t *testing.T) {
	s := newStack(t)
	s.startWorker("RETRY_BASE_DELAY=1h")
	ca := testkit.NewCA(t)
	rc := newTLSReceiver(t, ca)
	good := ca.IssueValid(t, "dispatch")
	expired := ca.Issue(t, "dispatch-old", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))

	for id, settings := range map[string]map[string]string{
		"sub_cert":    {"client_certificate": good.CertPEM, "client_key": good.KeyPEM, "ca_bundle": ca.PEM},
		"sub_nocert":  {"ca_bundle": ca.PEM},
		"sub_expired": {"client_certificate": good.CertPEM, "client_key": good.KeyPEM, "ca_bundle": ca.PEM},
	} {
		code, body := s.call("POST", "/subscriptions", map[string]any{"id": id, "url": rc.URL, "event_types": []string{"*"}, "secret": rc.secret, "tls": settings})
		if code != http.StatusCreated {
			t.Fatalf("create %s: %d %v", id, code, body)
		}
	}
	// An expired certificate is refused when set; this one expired after.
	code, body := s.call("PATCH", "/subscriptions/sub_expired", map[string]any{"tls": map[string]string{"client_certificate": expired.CertPEM, "client_key": expired.KeyPEM}})
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("an expired certificate was accepted: %d %v", code, body)
	}
	key, err := seal.ParseKey(secretsKey)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := seal.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Pool.Exec(context.Background(), `UPDATE subscriptions SET tls_client_certificate = $1, tls_client_key = $2, tls_not_after = now() - interval '1 hour'
		WHERE id = 'sub_expired'`, expired.CertPEM, keys.Seal("sub_expired/tls/key", expired.KeyPEM)); err != nil {
		t.Fatal(err)
	}

	s.post("evt_mtls", "order.created")
	eventually(t, 30*time.Second, func() bool { return s.count(`SELECT count(*) FROM attempts`) >= 3 }, "not every subscription was attempted")
	if got := rc.deliveries(); len(got) != 1 || got[0].Header.Get("X-Dispatch-Subscription-ID") != "sub_cert" {
		t.Fatalf("deliveries %v: want sub_cert's alone", got)
	}
	_, attempts := s.call("GET", "/events/evt_mtls/attempts", nil)
	classes := map[string]any{}
	for _, a := range attempts["data"].([]any) {
		a := a.(map[string]any)
		classes[a["subscription_id"].(string)] = a["error_class"]
	}
	want := map[string]any{"sub_cert": nil, "sub_nocert": "tls", "sub_expired": "tls"}
	for id, class := range want {
		if classes[id] != class {
			t.Errorf("%s: error class %v, want %v (all: %v)", id, classes[id], class, attempts)
		}
	}
}

// TestDeliveriesThroughAnEgressProxy runs a worker with DELIVERY_PROXY_URL
// pointing at a CONNECT proxy the test runs: a delivery goes through it
// to a verifying receiver, and one to a destination the proxy refuses is
// classified blocked and fails at once.
func TestDeliveriesThroughAnEgressProxy(t *testing.T) {
	s := newStack(t)
	ok := newReceiver(t, http.StatusOK)
	refused := newReceiver(t, http.StatusOK)
	refusedTarget := strings.TrimSuffix(strings.TrimPrefix(refused.URL, "http://"), "/hook")
	proxy := testkit.NewConnectProxy(t, testkit.ProxyOptions{Refuse: func(target string) bool { return target == refusedTarget }})
	s.startWorker("DELIVERY_PROXY_URL=" + proxy.URL)
	s.subscribe("sub_ok", ok, "order.*")
	s.subscribe("sub_refused", refused, "order.*")

	s.post("evt_proxy", "order.created")
	eventually(t, 30*time.Second, func() bool {
		_, ev := s.call("GET", "/events/evt_proxy", nil)
		ds, _ := ev["deliveries"].([]any)
		final := 0
		for _, d := range ds {
			if st := d.(map[string]any)["status"]; st == "delivered" || st == "failed" {
				final++
			}
		}
		return final == 2
	}, "the deliveries did not finish")
	if got := ok.deliveries(); len(got) != 1 || len(ok.rejected()) > 0 {
		t.Fatalf("the receiver behind the proxy got %v (rejected %v)", got, ok.rejected())
	}
	if got := refused.deliveries(); len(got) != 0 {
		t.Fatalf("the proxy let %v through", got)
	}
	asked, _ := proxy.Asked()
	okTarget := strings.TrimSuffix(strings.TrimPrefix(ok.URL, "http://"), "/hook")
	if !slices.Contains(asked, okTarget) || !slices.Contains(asked, refusedTarget) {
		t.Fatalf("the proxy was asked for %v, want both destinations", asked)
	}
	_, attempts := s.call("GET", "/events/evt_proxy/attempts", nil)
	for _, a := range attempts["data"].([]any) {
		a := a.(map[string]any)
		if a["subscription_id"] == "sub_refused" && (a["error_class"] != "blocked" || !strings.Contains(a["error"].(string), "403")) {
			t.Errorf("refused attempt = %v, want class blocked naming the proxy's 403", a)
		}
	}
}

// oauthServer is an authorization server written for the test: it issues
// tokens of a 5-second lifetime with the client credentials grant, counts
// the fetches, and tells the receiver which tokens are valid (issued, not
// expired, not revoked).
type oauthServer struct {
	URL     string
	fetches atomic.Int64
	mu      sync.Mutex
	issued  map[string]time.Time
}

const oauthLifetime = 5 * time.Second

func newOAuthServer(t *testing.T) *oauthServer {
	t.Helper()
	o := &oauthServer{issued: map[string]time.Time{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if r.PostFormValue("grant_type") != "client_credentials" || id != "dispatch" || secret != "e2e-client-secret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		n := o.fetches.Add(1)
		tok := fmt.Sprintf("at-%d-%d", n, time.Now().UnixNano())
		o.mu.Lock()
		o.issued[tok] = time.Now()
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": oauthLifetime.Seconds()})
	}))
	t.Cleanup(srv.Close)
	o.URL = srv.URL + "/oauth/token"
	return o
}

// valid reports whether a request carries a live token.
func (o *oauthServer) valid(r *http.Request) bool {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	o.mu.Lock()
	defer o.mu.Unlock()
	at, ok := o.issued[tok]
	return ok && time.Since(at) < oauthLifetime
}

func (o *oauthServer) revokeAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.issued = map[string]time.Time{}
}

// TestOAuth2ClientCredentials delivers 1,000 events to a receiver that
// accepts only live tokens of the test's authorization server: the worker
// fetches about one token per lifetime, not one per delivery; a revoked
// token is refreshed once and the delivery succeeds within its attempt;
// and a token URL on a refused address is refused when set.
func TestOAuth2ClientCredentials(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	// Deliveries held back by the destination's rate limit wait for it.
	s.startScheduler()
	auth := newOAuthServer(t)
	rc := newReceiver(t, http.StatusOK)
	var refused atomic.Int64
	rc.respond = func(w http.ResponseWriter, r *http.Request, _ int) bool {
		if !auth.valid(r) {
			refused.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return false
		}
		w.WriteHeader(http.StatusOK)
		return true
	}
	oauth2 := map[string]any{"token_url": auth.URL, "client_id": "dispatch", "client_secret": "e2e-client-secret", "scopes": []string{"webhooks"}}
	code, body := s.call("POST", "/subscriptions", map[string]any{"id": "sub_oauth", "url": rc.URL, "event_types": []string{"load.*", "order.*"}, "secret": rc.secret, "oauth2": oauth2})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, body)
	}

	start := time.Now()
	s.postBatch("a", 500)
	s.postBatch("b", 500)
	eventually(t, 2*time.Minute, func() bool { return len(rc.deliveries()) >= 1000 }, "1,000 deliveries did not arrive")
	took := time.Since(start)
	// One token per lifetime, refreshed a tenth of it ahead, plus the first.
	most := int64(took/(oauthLifetime*9/10)) + 2
	if got := auth.fetches.Load(); got < 1 || got > most {
		t.Fatalf("%d token fetches for 1,000 deliveries in %s, want at most %d", got, took, most)
	}
	t.Logf("1,000 deliveries in %s with %d token fetches", took.Round(time.Millisecond), auth.fetches.Load())
	if bad := rc.rejected(); len(bad) > 0 {
		t.Fatalf("signatures failed to verify: %v", bad)
	}

	// Revoked at the provider: the next delivery is refused once, gets a
	// fresh token and succeeds, in one attempt.
	auth.revokeAll()
	before, refusedBefore := auth.fetches.Load(), refused.Load()
	s.post("evt_after_revoke", "order.created")
	eventually(t, 30*time.Second, func() bool {
		_, ev := s.call("GET", "/events/evt_after_revoke", nil)
		return ev["status"] == "delivered"
	}, "the delivery after the revocation did not succeed")
	_, attempts := s.call("GET", "/events/evt_after_revoke/attempts", nil)
	if n := len(attempts["data"].([]any)); n != 1 || auth.fetches.Load() != before+1 || refused.Load() != refusedBefore+1 {
		t.Fatalf("%d attempts, %d fetches, %d refusals after the revocation: want 1, 1, 1", n, auth.fetches.Load()-before, refused.Load()-refusedBefore)
	}

	// A token endpoint inside the network is refused when set.
	oauth2["token_url"] = "http://10.0.0.1/oauth/token"
	code, body = s.call("PATCH", "/subscriptions/sub_oauth", map[string]any{"oauth2": oauth2})
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("an internal token URL: %d %v", code, body)
	}
	_, sub := s.call("GET", "/subscriptions/sub_oauth", nil)
	if raw, _ := json.Marshal(sub); strings.Contains(string(raw), "e2e-client-secret") || !strings.Contains(string(raw), auth.URL) {
		t.Fatalf("subscription after the refused change: %s", raw)
	}
}
