package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/api"
)

// tlsBody is a subscription body with tls set to the given settings.
func tlsBody(t *testing.T, id, url string, settings any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"id": id, "url": url, "event_types": []string{"*"}, "tls": settings})
	require.NoError(t, err)
	return string(b)
}

// TestClientTLS pins the tls field: validated and stored on create, the
// key masked and the expiry shown in every answer, removed by null.
func TestClientTLS(t *testing.T) {
	b := setup(t)
	ca := testkit.NewCA(t)
	notAfter := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	client := ca.Issue(t, "dispatch", time.Now().Add(-time.Hour), notAfter)
	r := b.do(t, "POST", "/subscriptions", tlsBody(t, "s1", "https://127.0.0.1:9/", map[string]string{
		"client_certificate": client.CertPEM, "client_key": client.KeyPEM, "ca_bundle": ca.PEM}))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	for _, r := range []response{r, b.do(t, "GET", "/subscriptions/s1", "")} {
		got := r.body["tls"].(map[string]any)
		require.Equal(t, client.CertPEM, got["client_certificate"])
		require.Equal(t, ca.PEM, got["ca_bundle"])
		require.Equal(t, "********", got["client_key"])
		require.Equal(t, notAfter.UTC().Format(time.RFC3339), got["client_certificate_expires_at"])
		require.NotContains(t, r.raw, "PRIVATE KEY")
	}
	r = b.do(t, "PATCH", "/subscriptions/s1", `{"tls":{"ca_bundle":`+quote(ca.PEM)+`}}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, map[string]any{"ca_bundle": ca.PEM}, r.body["tls"])
	r = b.do(t, "PATCH", "/subscriptions/s1", `{"tls":null}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Nil(t, r.body["tls"])
	require.Zero(t, b.count(t, "subscriptions WHERE tls_ca_bundle IS NOT NULL OR tls_client_certificate IS NOT NULL"))
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestClientTLSBadInput pins that each bad certificate, key or bundle is
// a 422 naming the field, on create and on PATCH, with nothing stored.
func TestClientTLSBadInput(t *testing.T) {
	b := setup(t)
	ca := testkit.NewCA(t)
	good := ca.IssueValid(t, "dispatch")
	other := ca.IssueValid(t, "someone else")
	expired := ca.Issue(t, "old", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	future := ca.Issue(t, "early", time.Now().Add(time.Hour), time.Now().Add(48*time.Hour))
	r := b.do(t, "POST", "/subscriptions", tlsBody(t, "s1", "https://127.0.0.1:9/", map[string]string{"client_certificate": good.CertPEM, "client_key": good.KeyPEM}))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	tests := []struct {
		name           string
		settings       map[string]string
		location, says string
	}{
		{"certificate not PEM", map[string]string{"client_certificate": "MIIBkTCB+wIJAK", "client_key": good.KeyPEM}, "body.tls.client_certificate", "must be PEM"},
		{"key not PEM", map[string]string{"client_certificate": good.CertPEM, "client_key": "not a key"}, "body.tls.client_key", "PEM private key"},
		{"key of another certificate", map[string]string{"client_certificate": good.CertPEM, "client_key": other.KeyPEM}, "body.tls.client_key", "does not belong"},
		{"expired certificate", map[string]string{"client_certificate": expired.CertPEM, "client_key": expired.KeyPEM}, "body.tls.client_certificate", "expired at"},
		{"certificate not yet valid", map[string]string{"client_certificate": future.CertPEM, "client_key": future.KeyPEM}, "body.tls.client_certificate", "not valid before"},
		{"certificate without key (not the stored one)", map[string]string{"client_certificate": other.CertPEM}, "body.tls.client_key", "must be given"},
		{"key without certificate", map[string]string{"client_key": good.KeyPEM}, "body.tls.client_certificate", "must be given"},
		{"key given as the certificate", map[string]string{"client_certificate": good.KeyPEM, "client_key": good.KeyPEM}, "body.tls.client_certificate", "only certificates"},
		{"bundle not PEM", map[string]string{"ca_bundle": "garbage"}, "body.tls.ca_bundle", "must be PEM"},
		{"bundle with trailing text", map[string]string{"ca_bundle": ca.PEM + "junk"}, "body.tls.ca_bundle", "after its last PEM block"},
		{"nothing set", map[string]string{}, "body.tls", "must set"},
		{"bundle of 1 MB", map[string]string{"ca_bundle": strings.Repeat(ca.PEM, 1<<20/len(ca.PEM)+1)}, "body.tls.ca_bundle", "at most"},
	}
	for _, tt := range tests {
		for _, req := range []struct{ method, path, body string }{
			{"POST", "/subscriptions", tlsBody(t, "s2", "https://127.0.0.1:9/", tt.settings)},
			{"PATCH", "/subscriptions/s1", tlsBody(t, "s1", "https://127.0.0.1:9/", tt.settings)},
		} {
			if req.method == "PATCH" {
				req.body = strings.Replace(req.body, `"event_types":["*"],"id":"s1",`, "", 1)
			}
			before := b.snapshot(t, "subscriptions")
			r := b.do(t, req.method, req.path, req.body)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, tt.name+" "+req.method+": "+r.raw[:min(len(r.raw), 300)])
			detail := r.body["errors"].([]any)[0].(map[string]any)
			require.Equal(t, tt.location, detail["location"], tt.name+" "+req.method)
			require.Contains(t, detail["message"], tt.says, tt.name+" "+req.method)
			for _, k := range []string{good.KeyPEM, other.KeyPEM, expired.KeyPEM} {
				require.NotContains(t, r.raw, k[40:80], "a problem never quotes a key")
			}
			require.Equal(t, before, b.snapshot(t, "subscriptions"), tt.name+" "+req.method+": nothing stored")
		}
	}
	r = b.do(t, "POST", "/subscriptions", tlsBody(t, "s3", "http://127.0.0.1:9/", map[string]string{"ca_bundle": ca.PEM}))
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Contains(t, r.raw, "only for https")
}

// TestClientTLSPatchKeepsKey pins that a PATCH sending the stored
// certificate without its key keeps the stored key (the dashboard cannot
// send it back: it never has it), and that the key is kept only so: with
// another certificate, where no key is stored, or by a key that may not
// read the subscription (who would learn whether a certificate is the
// stored one), it is a 422 on body.tls.client_key with nothing stored.
func TestClientTLSPatchKeepsKey(t *testing.T) {
	b := setup(t)
	ca := testkit.NewCA(t)
	good, other := ca.IssueValid(t, "dispatch"), ca.IssueValid(t, "someone else")
	r := b.do(t, "POST", "/subscriptions", tlsBody(t, "s1", "https://127.0.0.1:9/", map[string]string{"client_certificate": good.CertPEM, "client_key": good.KeyPEM}))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/subscriptions", tlsBody(t, "bare", "https://127.0.0.1:9/", nil))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	key := func() string {
		var k string
		require.NoError(t, b.db.Pool.QueryRow(t.Context(), `SELECT tls_client_key FROM subscriptions WHERE id = 's1'`).Scan(&k))
		return k
	}
	sealed := key()

	for _, body := range []string{
		`{"tls":{"client_certificate":` + quote(good.CertPEM) + `,"ca_bundle":` + quote(ca.PEM) + `}}`,
		`{"tls":{"client_certificate":` + quote(good.CertPEM) + `,"client_key":""}}`,
	} {
		r = b.do(t, "PATCH", "/subscriptions/s1", body)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.Equal(t, "********", r.body["tls"].(map[string]any)["client_key"])
		require.Equal(t, sealed, key(), "the stored key kept as it was")
	}
	require.Equal(t, 0, b.count(t, "subscriptions WHERE tls_ca_bundle IS NOT NULL"), "the last PATCH replaced the bundle too")

	writer, _ := b.newKey(t, `"write"`)
	for _, tt := range []struct {
		name, key, path, body string
	}{
		{"another certificate", "", "/subscriptions/s1", `{"tls":{"client_certificate":` + quote(other.CertPEM) + `}}`},
		{"no key stored", "", "/subscriptions/bare", `{"tls":{"client_certificate":` + quote(good.CertPEM) + `}}`},
		{"a key without read", writer, "/subscriptions/s1", `{"tls":{"client_certificate":` + quote(good.CertPEM) + `}}`},
	} {
		before := b.snapshot(t, "subscriptions")
		if tt.key == "" {
			r = b.do(t, "PATCH", tt.path, tt.body)
		} else {
			r = b.doWithKey(t, tt.key, "PATCH", tt.path, tt.body)
		}
		require.Equal(t, http.StatusUnprocessableEntity, r.status, tt.name+": "+r.raw)
		detail := r.body["errors"].([]any)[0].(map[string]any)
		require.Equal(t, "body.tls.client_key", detail["location"], tt.name)
		require.Contains(t, detail["message"], "must be given", tt.name)
		require.Equal(t, before, b.snapshot(t, "subscriptions"), tt.name+": nothing stored")
	}
}

// TestClientCertificateExpiryMetric pins the gauge an expiry alert reads:
// one series per subscription with a client certificate, its value the
// certificate's expiry.
func TestClientCertificateExpiryMetric(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := newBundle(t, func(c *api.Config) { c.Registerer = reg })
	ca := testkit.NewCA(t)
	notAfter := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
	client := ca.Issue(t, "dispatch", time.Now().Add(-time.Hour), notAfter)
	r := b.do(t, "POST", "/subscriptions", tlsBody(t, "s1", "https://127.0.0.1:9/", map[string]string{"client_certificate": client.CertPEM, "client_key": client.KeyPEM}))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/subscriptions", tlsBody(t, "s2", "https://127.0.0.1:9/", map[string]string{"ca_bundle": ca.PEM}))
	require.Equal(t, http.StatusCreated, r.status, r.raw)

	want := fmt.Sprintf(`
# HELP dispatch_client_certificate_expiry_timestamp_seconds When the TLS client certificate of a subscription expires (Unix seconds), for subscriptions with mutual TLS.
# TYPE dispatch_client_certificate_expiry_timestamp_seconds gauge
dispatch_client_certificate_expiry_timestamp_seconds{subscription_id="s1",tenant_id="default"} %d
`, notAfter.Unix())
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "dispatch_client_certificate_expiry_timestamp_seconds"))
}
