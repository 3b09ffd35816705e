package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// TestDestinationOptionForms pins the subscription page's mutual TLS and
// OAuth2 forms against the real ingest-api: settings saved (post,
// redirect, get) and summarised on the page, a key or client secret left
// empty keeping the stored one, each refusal shown beside its field with
// nothing saved, removal, and no key or secret ever in the HTML.
func TestDestinationOptionForms(t *testing.T) {
	t.Parallel()
	s := startPortalStack(t, PortalConfig{})
	s.must(t, http.StatusCreated, "POST", "/subscriptions", `{"id":"s","url":"https://127.0.0.1:9/hook","event_types":["*"]}`)
	ca := testkit.NewCA(t)
	good, other := ca.IssueValid(t, "dispatch-client"), ca.IssueValid(t, "someone-else")
	const clientSecret = "oauth-client-secret-7f3a9c"
	// secrets are what no page may contain: a stretch of each key's base64
	// and the client secret.
	secrets := []string{good.KeyPEM[40:80], other.KeyPEM[40:80], clientSecret}

	b := &bundle{url: s.dash, client: browserClient()}
	b.signIn(t, stackAdminKey)
	page := func(t *testing.T) *goquery.Document {
		t.Helper()
		resp, doc := b.get(t, "/subscriptions/s")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("subscription page: %d", resp.StatusCode)
		}
		noSecrets(t, "the subscription page", doc, secrets)
		return doc
	}
	doc := page(t)
	if testid(doc, "tls-summary").Text() != "none" || testid(doc, "oauth2-summary").Text() != "none" {
		t.Fatalf("summaries %q, %q before any setting", testid(doc, "tls-summary").Text(), testid(doc, "oauth2-summary").Text())
	}
	if testid(doc, "tls-form").Length() != 1 || testid(doc, "oauth2-form").Length() != 1 || testid(doc, "tls-remove").Length() != 0 {
		t.Fatal("no TLS or OAuth2 form, or a remove button with nothing to remove")
	}
	token := csrf(doc)
	stored := func() string {
		var out string
		if err := s.db.Pool.QueryRow(context.Background(), `SELECT concat_ws('|', tls_client_certificate, tls_client_key, tls_ca_bundle, oauth2::text)
			FROM subscriptions WHERE id = 's'`).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	sealed := func(expr string) string {
		var out string
		if err := s.db.Pool.QueryRow(context.Background(), `SELECT coalesce(`+expr+`, '') FROM subscriptions WHERE id = 's'`).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var keyStored, secretStored string
	// crlf is PEM as a browser sends a textarea's text.
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

	steps := []struct {
		name  string
		path  string
		form  url.Values
		done  string // the redirect's done code; "" for a refusal
		field string // the field whose error shows, for a refusal
		says  string
		// first, if set, runs before the form is posted.
		first  func(t *testing.T)
		checks func(t *testing.T, doc *goquery.Document)
	}{
		{name: "certificate not PEM", path: "/tls", form: url.Values{"client_certificate": {"MIIBkTCB+wIJAK"}, "client_key": {good.KeyPEM}},
			field: "client_certificate", says: "must be PEM"},
		{name: "key of another certificate", path: "/tls", form: url.Values{"client_certificate": {good.CertPEM}, "client_key": {other.KeyPEM}},
			field: "client_key", says: "does not belong"},
		{name: "certificate without a key where none is stored", path: "/tls", form: url.Values{"client_certificate": {good.CertPEM}},
			field: "client_key", says: "must be given"},
		{name: "nothing typed", path: "/tls", form: url.Values{"client_certificate": {" \r\n"}}, field: "tls", says: "paste a client certificate"},
		{name: "TLS set", path: "/tls", form: url.Values{"client_certificate": {crlf(good.CertPEM)}, "client_key": {crlf(good.KeyPEM)}, "ca_bundle": {ca.PEM}},
			done: "tls", checks: func(t *testing.T, doc *goquery.Document) {
				if got := testid(doc, "tls-subject").Text(); got != "CN=dispatch-client" {
					t.Errorf("certificate subject %q", got)
				}
				if !strings.Contains(testid(doc, "tls-ca-bundle").Text(), "1 certificate") || !strings.HasPrefix(testid(doc, "client-certificate").Text(), "expires") {
					t.Errorf("bundle %q, expiry %q", testid(doc, "tls-ca-bundle").Text(), testid(doc, "client-certificate").Text())
				}
				if doc.Find("textarea#client_key").Text() != "" || !strings.Contains(doc.Find("textarea#client_certificate").Text(), "BEGIN CERTIFICATE") ||
					testid(doc, "tls-remove").Length() != 1 {
					t.Error("the form does not show the certificate, shows a key, or offers no removal")
				}
				keyStored = sealed("tls_client_key")
			}},
		{name: "TLS key kept with the certificate as the browser sends it", path: "/tls",
			form: url.Values{"client_certificate": {crlf(good.CertPEM) + "\r\n"}, "client_key": {""}}, done: "tls",
			first: func(t *testing.T) {
				// Set through the API as a client would, with the PEM's
				// own final line end, which a textarea's text differs from.
				s.must(t, http.StatusOK, "PATCH", "/subscriptions/s", `{"tls":{"client_certificate":`+jsonString(good.CertPEM)+`,"client_key":`+jsonString(good.KeyPEM)+`}}`)
				keyStored = sealed("tls_client_key")
			},
			checks: func(t *testing.T, doc *goquery.Document) {
				if testid(doc, "tls-subject").Text() != "CN=dispatch-client" || testid(doc, "tls-ca-bundle").Length() != 0 {
					t.Error("the certificate is not the one kept, or the bundle left in place")
				}
				if keyStored == "" || sealed("tls_client_key") != keyStored {
					t.Error("the stored key was not kept")
				}
			}},
		{name: "another certificate without its key", path: "/tls", form: url.Values{"client_certificate": {other.CertPEM}},
			field: "client_key", says: "must be given with a new client_certificate"},
		{name: "token URL at an internal address", path: "/oauth2",
			form:  url.Values{"token_url": {"http://169.254.169.254/token"}, "client_id": {"dispatch"}, "client_secret": {clientSecret}},
			field: "token_url", says: "link-local"},
		{name: "no client secret where none is stored", path: "/oauth2", form: url.Values{"token_url": {"https://127.0.0.1:9/token"}, "client_id": {"dispatch"}},
			field: "client_secret", says: "must be given"},
		{name: "scope with a quote", path: "/oauth2",
			form:  url.Values{"token_url": {"https://127.0.0.1:9/token"}, "client_id": {"dispatch"}, "client_secret": {clientSecret}, "scopes": {`a "b"`}},
			field: "scopes", says: "printable ASCII"},
		{name: "OAuth2 set", path: "/oauth2", form: url.Values{"token_url": {"https://127.0.0.1:9/token"}, "client_id": {"dispatch"},
			"client_secret": {clientSecret}, "scopes": {"webhooks:write  orders:read"}}, done: "oauth2",
			checks: func(t *testing.T, doc *goquery.Document) {
				for id, want := range map[string]string{"oauth2-token-url": "https://127.0.0.1:9/token", "oauth2-client-id": "dispatch", "oauth2-scopes": "webhooks:write orders:read"} {
					if got := testid(doc, id).Text(); got != want {
						t.Errorf("%s %q, want %q", id, got, want)
					}
				}
				if doc.Find("input#client_secret").AttrOr("value", "x") != "" || doc.Find("input#token_url").AttrOr("value", "") != "https://127.0.0.1:9/token" {
					t.Error("the form shows a secret, or not the token URL")
				}
				secretStored = sealed("oauth2->>'client_secret'")
			}},
		{name: "OAuth2 secret kept while the scopes change", path: "/oauth2",
			form: url.Values{"token_url": {"https://127.0.0.1:9/token"}, "client_id": {"dispatch"}, "scopes": {"orders:read"}, "audience": {"https://api.example"}},
			done: "oauth2", checks: func(t *testing.T, doc *goquery.Document) {
				if testid(doc, "oauth2-scopes").Text() != "orders:read" || testid(doc, "oauth2-audience").Text() != "https://api.example" {
					t.Error("scopes or audience not changed")
				}
				if secretStored == "" || sealed("oauth2->>'client_secret'") != secretStored {
					t.Error("the stored secret was not kept")
				}
			}},
		{name: "another client without its secret", path: "/oauth2", form: url.Values{"token_url": {"https://127.0.0.1:9/token"}, "client_id": {"else"}},
			field: "client_secret", says: "must be given"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.first != nil {
				st.first(t)
			}
			before := stored()
			st.form.Set("csrf", token)
			resp, doc := b.post(t, "/subscriptions/s"+st.path, st.form)
			if st.done == "" {
				if resp.StatusCode != http.StatusUnprocessableEntity {
					t.Fatalf("%d, want 422", resp.StatusCode)
				}
				if got := testid(doc, "error-"+st.field).Text(); !strings.Contains(got, st.says) {
					t.Errorf("error beside %s: %q, want %q", st.field, got, st.says)
				}
				noSecrets(t, "the refused form", doc, secrets)
				if stored() != before {
					t.Error("something was saved")
				}
				return
			}
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/subscriptions/s?done="+st.done {
				t.Fatalf("%d to %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			st.checks(t, page(t))
		})
	}

	var key, secret string
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT tls_client_key, oauth2->>'client_secret' FROM subscriptions WHERE id = 's'`).Scan(&key, &secret); err != nil {
		t.Fatal(err)
	}
	if key == "" || secret == "" || strings.Contains(key, "PRIVATE KEY") || strings.Contains(secret, clientSecret) {
		t.Errorf("the key or secret is not stored sealed: %q %q", key, secret)
	}

	for _, path := range []string{"/tls", "/oauth2"} {
		resp, _ := b.post(t, "/subscriptions/s"+path, url.Values{"csrf": {token}, "remove": {"1"}, "client_certificate": {good.CertPEM}, "token_url": {"x"}})
		if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "-removed") {
			t.Fatalf("remove %s: %d to %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	doc = page(t)
	if testid(doc, "tls-summary").Text() != "none" || testid(doc, "oauth2-summary").Text() != "none" {
		t.Error("settings still shown after removal")
	}
	if got := stored(); got != "" {
		t.Errorf("still stored after removal: %q", got)
	}
	if resp, _ := b.post(t, "/subscriptions/s/tls", url.Values{"client_certificate": {good.CertPEM}, "client_key": {good.KeyPEM}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a form without its CSRF token: %d", resp.StatusCode)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// noSecrets fails the test when the page's HTML holds any of secrets.
func noSecrets(t *testing.T, what string, doc *goquery.Document, secrets []string) {
	t.Helper()
	html, err := doc.Html()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(html, s) {
			t.Errorf("%s holds a secret (%.12s…)", what, s)
		}
	}
}

// TestEventPageNamesAuthFailures: an attempt that failed because no
// OAuth2 token could be had shows its class and what it means.
func TestEventPageNamesAuthFailures(t *testing.T) {
	t.Parallel()
	s := startPortalStack(t, PortalConfig{})
	s.must(t, http.StatusCreated, "POST", "/subscriptions", `{"id":"s","url":"http://127.0.0.1:9/a","event_types":["*"]}`)
	s.must(t, http.StatusAccepted, "POST", "/events", `{"id":"evt","type":"order.created","data":{}}`)
	for _, q := range []string{
		`UPDATE deliveries SET status = 'retrying', attempts = 1`,
		`INSERT INTO attempts (delivery_id, number, started_at, duration_ms, error_class, error)
			SELECT id, 1, now(), 5, 'auth', 'token endpoint answered 401' FROM deliveries`,
	} {
		if _, err := s.db.Pool.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	b := &bundle{url: s.dash, client: browserClient()}
	b.signIn(t, stackAdminKey)
	resp, doc := b.get(t, "/events/evt")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event page: %d", resp.StatusCode)
	}
	if got := testid(doc, "attempt-error-class").Text(); got != "auth" {
		t.Errorf("error class %q", got)
	}
	if got := testid(doc, "attempt-error-words").Text(); !strings.Contains(got, "OAuth2 access token") {
		t.Errorf("error class in words %q", got)
	}
}
