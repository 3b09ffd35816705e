package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
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
