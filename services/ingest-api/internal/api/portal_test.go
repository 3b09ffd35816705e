package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/api"
)

// portalLink creates a link to tenant's portal with body and returns its
// token.
func (b *bundle) portalLink(t *testing.T, key, tenant, body string) string {
	t.Helper()
	r := b.doWithKey(t, key, "POST", "/tenants/"+tenant+"/portal-links", body)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	u, err := url.Parse(r.body["url"].(string))
	require.NoError(t, err)
	require.Equal(t, testPortalURL+"/open", u.Scheme+"://"+u.Host+u.Path)
	return u.Query().Get("token")
}

// exchange opens a portal link with its token, without any key.
func (b *bundle) exchange(t *testing.T, token string) response {
	t.Helper()
	return b.doWithKey(t, "", "POST", "/portal-links/exchange", `{"token":"`+token+`"}`)
}

func TestPortalLinks(t *testing.T) {
	b := setup(t)
	b.putTenant(t, "acme", `{"name":"Acme Inc."}`)
	b.putTenant(t, "globex", `{}`)
	for _, body := range []string{
		`{"id":"acme_1","tenant_id":"acme","url":"http://127.0.0.1:9/a","event_types":["*"]}`,
		`{"id":"globex_1","tenant_id":"globex","url":"http://127.0.0.1:9/g","event_types":["*"]}`,
	} {
		r := b.do(t, "POST", "/subscriptions", body)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
	}
	r := b.do(t, "POST", "/api-keys", `{"name":"product","scopes":["portal"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	portalKey := r.body["key"].(string)

	// The portal scope creates and revokes links and does nothing else.
	r = b.doWithKey(t, portalKey, "POST", "/tenants/acme/portal-links", `{}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	expires, err := time.Parse(time.RFC3339Nano, r.body["expires_at"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(time.Hour), expires, time.Minute, "links last an hour by default")
	token := strings.TrimPrefix(r.body["url"].(string), testPortalURL+"/open?token=")
	require.GreaterOrEqual(t, len(token), len("dpl_")+26, "at least 128 random bits")
	require.Zero(t, b.count(t, "portal_links WHERE position(convert_to('"+token+"', 'UTF8') IN token_hash) > 0"), "the token is not stored")
	for _, op := range []struct{ method, path, body string }{
		{"GET", "/subscriptions", ""}, {"GET", "/events", ""}, {"GET", "/tenants/acme", ""},
		{"POST", "/events", `{"id":"e","type":"t","data":{}}`}, {"POST", "/api-keys", `{"name":"k","scopes":["read"]}`},
		{"PUT", "/tenants/acme", `{}`},
	} {
		r := b.doWithKey(t, portalKey, op.method, op.path, op.body)
		require.Equal(t, http.StatusForbidden, r.status, "%s %s: %s", op.method, op.path, r.raw)
	}
	readKey, _ := b.tenantKey(t, "acme", `"read","write"`)
	r = b.doWithKey(t, readKey, "POST", "/tenants/acme/portal-links", `{}`)
	require.Equal(t, http.StatusForbidden, r.status, "a key without the portal scope: %s", r.raw)
	adminOfAcme, _ := b.tenantKey(t, "acme", `"admin"`)
	r = b.doWithKey(t, adminOfAcme, "POST", "/tenants/acme/portal-links", `{}`)
	require.Equal(t, http.StatusForbidden, r.status, "a key bound to a tenant: %s", r.raw)

	// Opening: once, without a key; the session's key sees its tenant only.
	s := b.exchange(t, token)
	require.Equal(t, http.StatusOK, s.status, s.raw)
	require.Equal(t, "acme", s.body["tenant_id"])
	require.Equal(t, "Acme Inc.", s.body["tenant_name"])
	require.Equal(t, false, s.body["read_only"])
	sessionKey := s.body["key"].(string)
	again := b.exchange(t, token)
	require.Equal(t, http.StatusNotFound, again.status, "a link opens once: %s", again.raw)
	r = b.doWithKey(t, sessionKey, "GET", "/subscriptions", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, []string{"acme_1"}, dataIDs(t, r, "id"))
	r = b.doWithKey(t, sessionKey, "GET", "/subscriptions/globex_1", "")
	require.Equal(t, http.StatusNotFound, r.status, r.raw)
	r = b.doWithKey(t, sessionKey, "PATCH", "/subscriptions/acme_1", `{"state":"paused"}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	r = b.doWithKey(t, sessionKey, "POST", "/tenants/acme/portal-links", `{}`)
	require.Equal(t, http.StatusForbidden, r.status, "a session cannot make itself new links: %s", r.raw)
	r = b.do(t, "GET", "/api-keys", "")
	require.NotContains(t, r.raw, s.body["key_id"], "portal keys are not listed")

	// A read-only link's session may only read.
	ro := b.exchange(t, b.portalLink(t, adminKey, "acme", `{"read_only":true,"expires_in":"5m","return_url":"https://app.example.com/settings"}`))
	require.Equal(t, http.StatusOK, ro.status, ro.raw)
	require.Equal(t, true, ro.body["read_only"])
	require.Equal(t, "https://app.example.com/settings", ro.body["return_url"])
	roExpires, err := time.Parse(time.RFC3339Nano, ro.body["expires_at"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(5*time.Minute), roExpires, time.Minute)
	r = b.doWithKey(t, ro.body["key"].(string), "PATCH", "/subscriptions/acme_1", `{"state":"active"}`)
	require.Equal(t, http.StatusForbidden, r.status, r.raw)

	// Revocation ends every link and session of the tenant at once, and
	// no other tenant's.
	unused := b.portalLink(t, adminKey, "acme", `{}`)
	globexSession := b.exchange(t, b.portalLink(t, adminKey, "globex", `{}`))
	require.Equal(t, http.StatusOK, globexSession.status, globexSession.raw)
	r = b.doWithKey(t, portalKey, "POST", "/tenants/acme/portal-links/revoke", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 1, r.body["links_revoked"])
	require.EqualValues(t, 2, r.body["sessions_ended"])
	r = b.doWithKey(t, sessionKey, "GET", "/subscriptions", "")
	require.Equal(t, http.StatusUnauthorized, r.status, r.raw)
	require.Equal(t, http.StatusNotFound, b.exchange(t, unused).status)
	r = b.doWithKey(t, globexSession.body["key"].(string), "GET", "/subscriptions", "")
	require.Equal(t, http.StatusOK, r.status, "another tenant's session goes on: %s", r.raw)
	r = b.do(t, "POST", "/tenants/nope/portal-links/revoke", "")
	require.Equal(t, http.StatusNotFound, r.status, r.raw)
}

func TestPortalLinkBadInput(t *testing.T) {
	b := setup(t)
	b.putTenant(t, "acme", `{}`)
	for _, tt := range []struct{ name, path, body, location string }{
		{"too short", "/tenants/acme/portal-links", `{"expires_in":"4m"}`, "body.expires_in"},
		{"too long", "/tenants/acme/portal-links", `{"expires_in":"169h"}`, "body.expires_in"},
		{"not a duration", "/tenants/acme/portal-links", `{"expires_in":"soon"}`, "body.expires_in"},
		{"return URL elsewhere", "/tenants/acme/portal-links", `{"return_url":"https://evil.example.com/"}`, "body.return_url"},
		{"return URL with credentials", "/tenants/acme/portal-links", `{"return_url":"https://u:p@app.example.com/"}`, "body.return_url"},
		{"return URL a script", "/tenants/acme/portal-links", `{"return_url":"javascript:alert(1)"}`, "body.return_url"},
		{"return URL with NUL", "/tenants/acme/portal-links", `{"return_url":"https://app.example.com/\u0000"}`, "body.return_url"},
		{"no token", "/portal-links/exchange", `{}`, "body.token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := b.doWithKey(t, "", "POST", tt.path, tt.body)
			if tt.path != "/portal-links/exchange" {
				r = b.do(t, "POST", tt.path, tt.body)
			}
			require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
			require.Contains(t, r.raw, `"location":"`+tt.location+`"`)
		})
	}
	r := b.do(t, "POST", "/tenants/nope/portal-links", `{}`)
	require.Equal(t, http.StatusNotFound, r.status, r.raw)
	require.Zero(t, b.count(t, "portal_links"), "nothing refused was stored")
	r = b.doWithKey(t, "", "POST", "/tenants/acme/portal-links", `{}`)
	require.Equal(t, http.StatusUnauthorized, r.status, "creating a link needs a key: %s", r.raw)
}

func TestPortalLinkOpensOnceUnderConcurrency(t *testing.T) {
	b := setup(t)
	b.putTenant(t, "acme", `{}`)
	token := b.portalLink(t, adminKey, "acme", `{}`)
	const openers = 10
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[int]int{}
	)
	for range openers {
		wg.Go(func() {
			status := b.exchange(t, token).status
			mu.Lock()
			codes[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, map[int]int{http.StatusOK: 1, http.StatusNotFound: openers - 1}, codes)
	require.Equal(t, 1, b.count(t, "api_keys WHERE portal"), "exactly one session")
}

// TestPortalRevocationReachesEveryInstance: a session revoked through one
// API instance is refused by another at its next request, though that
// instance had just accepted the key.
func TestPortalRevocationReachesEveryInstance(t *testing.T) {
	b := setup(t)
	b.putTenant(t, "acme", `{}`)
	mux := http.NewServeMux()
	api.New(mux, api.Config{Store: store.New(b.db.Pool), Registerer: prometheus.NewRegistry(), Version: "test"})
	other := httptest.NewServer(mux)
	t.Cleanup(other.Close)
	second := &bundle{url: other.URL, db: b.db}

	s := b.exchange(t, b.portalLink(t, adminKey, "acme", `{}`))
	require.Equal(t, http.StatusOK, s.status, s.raw)
	key := s.body["key"].(string)
	require.Equal(t, http.StatusOK, second.doWithKey(t, key, "GET", "/subscriptions", "").status)
	require.Equal(t, http.StatusOK, b.do(t, "POST", "/tenants/acme/portal-links/revoke", "").status)
	r := second.doWithKey(t, key, "GET", "/subscriptions", "")
	require.Equal(t, http.StatusUnauthorized, r.status, "the other instance still honoured the session: %s", r.raw)
}

func TestEndpointRevealTestAndActivity(t *testing.T) {
	b := setup(t)
	b.putTenant(t, "acme", `{}`)
	b.putTenant(t, "globex", `{}`)
	r := b.do(t, "POST", "/subscriptions", `{"id":"acme_1","tenant_id":"acme","url":"http://127.0.0.1:9/a","event_types":["order.*"],"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/subscriptions", `{"id":"globex_1","tenant_id":"globex","url":"http://127.0.0.1:9/g","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	acme, _ := b.tenantKey(t, "acme", `"read","write"`)
	writeOnly, _ := b.tenantKey(t, "acme", `"write"`)
	reader, _ := b.tenantKey(t, "acme", `"read"`)

	r = b.doWithKey(t, acme, "POST", "/subscriptions/acme_1/secret/reveal", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", r.body["secret"])
	for _, key := range []string{writeOnly, reader} {
		r = b.doWithKey(t, key, "POST", "/subscriptions/acme_1/secret/reveal", "")
		require.Equal(t, http.StatusForbidden, r.status, "revealing needs read and write: %s", r.raw)
	}
	r = b.doWithKey(t, acme, "POST", "/subscriptions/globex_1/secret/reveal", "")
	require.Equal(t, http.StatusNotFound, r.status, r.raw)

	r = b.doWithKey(t, acme, "POST", "/subscriptions/acme_1/test", "")
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	eventID := r.body["event_id"].(string)
	r = b.doWithKey(t, acme, "GET", "/events/"+eventID, "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "dispatch.test", r.body["type"])
	require.Equal(t, []string{"acme_1"}, dataIDs(t, response{body: map[string]any{"data": r.body["deliveries"]}}, "subscription_id"))
	r = b.doWithKey(t, acme, "POST", "/subscriptions/globex_1/test", "")
	require.Equal(t, http.StatusNotFound, r.status, r.raw)
	require.Equal(t, 1, b.count(t, "events WHERE type = 'dispatch.test'"))

	_, err := b.db.Pool.Exec(context.Background(), `INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code)
		SELECT id, 1, now(), 5, 200 FROM deliveries WHERE event_id = $1`, eventID)
	require.NoError(t, err)
	r = b.doWithKey(t, acme, "GET", "/subscriptions?activity=true", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	item := r.body["data"].([]any)[0].(map[string]any)
	require.Equal(t, map[string]any{"attempts": float64(1), "succeeded": float64(1)}, item["activity_24h"])
	r = b.doWithKey(t, acme, "GET", "/subscriptions", "")
	require.NotContains(t, r.raw, "activity_24h", "only when asked for")
	require.NotContains(t, r.raw, "circuit_state", "only when asked for")
	r = b.doWithKey(t, acme, "GET", "/subscriptions?circuit=true", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	for _, item := range r.body["data"].([]any) {
		require.Equal(t, "closed", item.(map[string]any)["circuit_state"], "every listed subscription's circuit: %s", r.raw)
	}
}
