package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
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
	errs := make(chan error, openers)
	for range openers {
		wg.Go(func() {
			r, err := b.try("", "POST", "/portal-links/exchange", `{"token":"`+token+`"}`)
			errs <- err
			mu.Lock()
			codes[r.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	for range openers {
		require.NoError(t, <-errs)
	}
	require.Equal(t, map[int]int{http.StatusOK: 1, http.StatusNotFound: openers - 1}, codes)
	require.Equal(t, 1, b.count(t, "api_keys WHERE portal"), "exactly one session")
}

// TestPortalLinkGuessesAreThrottled: a malformed token is a 404 without a
// lookup or a failure spent; a well-formed unknown one spends one of the
// client's failures, and past its budget the answer is 429 with
// Retry-After, without opening even a real link.
func TestPortalLinkGuessesAreThrottled(t *testing.T) {
	b := setup(t)
	b.putTenant(t, "acme", `{}`)
	token := b.portalLink(t, adminKey, "acme", `{}`)
	for range 30 {
		require.Equal(t, http.StatusNotFound, b.exchange(t, "dpl_guess").status, "malformed")
	}
	var statuses []int
	for i := range 21 {
		statuses = append(statuses, b.exchange(t, "dpl_"+strings.Repeat(string(rune('a'+i)), 52)).status)
	}
	require.Equal(t, append(slices.Repeat([]int{http.StatusNotFound}, 20), http.StatusTooManyRequests), statuses)
	r := b.exchange(t, token)
	require.Equal(t, http.StatusTooManyRequests, r.status, r.raw)
	require.Equal(t, "1", r.header.Get("Retry-After"))
	require.Zero(t, b.count(t, "api_keys WHERE portal"), "the link was not opened")
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
	acme := b.portalSession(t, "acme", `{}`)

	r = b.doWithKey(t, acme, "POST", "/subscriptions/acme_1/test", "")
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	eventID := r.body["id"].(string)
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

// portalSession opens a new link to tenant's portal, made with body, and
// returns the session's key.
func (b *bundle) portalSession(t *testing.T, tenant, body string) string {
	t.Helper()
	r := b.exchange(t, b.portalLink(t, b.key, tenant, body))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	return r.body["key"].(string)
}

// TestPortalKeyMayDoWhatThePortalDoes calls every operation of the API's
// OpenAPI document with a portal session's key, on its own tenant's ids:
// the operations the portal makes are let through, every other one is
// refused (403) before it does anything. The allowed list is written out
// here, so an operation added later is refused to portal keys until it is
// added both to portalOperations and to this list.
func TestPortalKeyMayDoWhatThePortalDoes(t *testing.T) {
	b := setup(t)
	b.putTenant(t, "a", `{}`)
	r := b.do(t, "POST", "/subscriptions", `{"id":"a_sub","tenant_id":"a","url":"http://127.0.0.1:9/a","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/events", `{"id":"a_evt","type":"a.event","tenant_id":"a","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	// The catalog is the operator's: a portal key reads it but does not
	// change it.
	require.Equal(t, http.StatusCreated, b.do(t, "PUT", "/event-types/order.created", typeBody("enforce")).status)
	_, keyID := b.tenantKey(t, "a", `"read"`)
	key := b.portalSession(t, "a", `{}`)

	allowed := map[string]bool{
		"GET /subscriptions": true, "POST /subscriptions": true,
		"GET /subscriptions/{id}": true, "PATCH /subscriptions/{id}": true, "DELETE /subscriptions/{id}": true,
		"GET /subscriptions/{id}/deliveries": true, "POST /subscriptions/{id}/redeliver": true,
		"POST /subscriptions/{id}/secret/reveal": true, "POST /subscriptions/{id}/secret/rotate": true,
		"POST /subscriptions/{id}/headers/reveal": true,
		"POST /subscriptions/{id}/test":           true,
		"GET /events":                             true, "GET /events/{id}": true, "GET /events/{id}/deliveries": true,
		"GET /events/{id}/attempts": true, "POST /events/{id}/redeliver": true,
		"GET /event-types": true, "GET /event-types/{name}": true, "GET /event-types/{name}/versions": true,
		"GET /event-types/openapi.json": true,
		// Needs no key at all: the link's token is the credential.
		"POST /portal-links/exchange": true,
	}
	pathIDs := map[string]string{"/subscriptions": "a_sub", "/events": "a_evt", "/tenants": "a", "/api-keys": keyID, "/event-types": "order.created"}
	bodies := map[string]string{
		"POST /subscriptions":         `{"url":"http://127.0.0.1:9/new","event_types":["*"]}`,
		"PATCH /subscriptions/{id}":   `{"state":"paused"}`,
		"POST /events":                `{"id":"x1","type":"a.event","data":{}}`,
		"POST /events/batch":          `{"events":[{"id":"x2","type":"a.event","data":{}}]}`,
		"PUT /tenants/{id}":           `{"name":"taken"}`,
		"POST /api-keys":              `{"name":"k","scopes":["admin"],"tenant_id":"a"}`,
		"POST /portal-links/exchange": `{"token":"dpl_unknown"}`,
		"PUT /event-types/{name}":     typeBody("off"),
	}
	ctx := context.Background()
	// snapshot is what no refused call may change: the events producers
	// posted, the tenant, its keys and its links, the catalog.
	snapshot := func() string {
		var s string
		require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT concat_ws(' | ',
			(SELECT string_agg(e.id, ',' ORDER BY e.id) FROM events e WHERE e.type <> 'dispatch.test'),
			(SELECT string_agg(t::text, ',') FROM tenants t),
			(SELECT string_agg(k.id, ',' ORDER BY k.id) FROM api_keys k),
			(SELECT count(*) FROM portal_links),
			(SELECT string_agg(concat_ws(':', name, version, validation, archived_at), ',' ORDER BY name) FROM event_types))`).Scan(&s))
		return s
	}
	before := snapshot()

	var refused []string
	for path, item := range b.api.OpenAPI().Paths {
		for method, op := range map[string]*huma.Operation{"GET": item.Get, "POST": item.Post, "PUT": item.Put, "PATCH": item.Patch, "DELETE": item.Delete} {
			if op == nil {
				continue
			}
			name := method + " " + path
			target := path
			if i := strings.Index(path, "/{"); i >= 0 {
				id, ok := pathIDs[path[:i]]
				require.True(t, ok, "%s: this test knows no id for its path parameter: add one", name)
				target = strings.Replace(path, path[i+1:strings.Index(path, "}")+1], url.PathEscape(id), 1)
			}
			body := bodies[name]
			if body == "" && op.RequestBody != nil {
				body = `{}`
			}
			r := b.doWithKey(t, key, method, target, body)
			if allowed[name] {
				require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, r.status, "%s is the portal's: %s", name, r.raw)
				continue
			}
			refused = append(refused, name)
			require.Equal(t, http.StatusForbidden, r.status, "%s is not the portal's: %s", name, r.raw)
			require.Contains(t, r.body["detail"], "customer portal session", name)
		}
	}
	t.Logf("refused to a portal key: %s", strings.Join(refused, ", "))
	require.Contains(t, refused, "POST /events")
	require.Contains(t, refused, "POST /events/batch")
	require.Contains(t, refused, "GET /me")
	require.Contains(t, refused, "POST /tenants/{id}/portal-links")
	require.Contains(t, refused, "PUT /event-types/{name}")
	require.Contains(t, refused, "DELETE /event-types/{name}")
	require.Contains(t, refused, "POST /event-types/import")
	require.Equal(t, before, snapshot(), "a refused call changed something")

	// The catalog is global: a portal key reads the operator's types.
	r = b.doWithKey(t, key, "GET", "/event-types", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Contains(t, r.raw, `"name":"order.created"`)
	r = b.doWithKey(t, key, "GET", "/event-types/order.created/versions", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
}

// TestPortalKeyChoosesNoOperatorSetting: a portal session's key may not
// choose a subscription's id (ids are unique across tenants: it would
// learn of other tenants' ids, or take them) nor set the delivery
// settings that bound what the shared workers spend on a subscription,
// when it creates one or changes one. Each such field is a 422 naming it,
// and nothing is saved; other keys still may.
func TestPortalKeyChoosesNoOperatorSetting(t *testing.T) {
	b := setup(t)
	b.putTenant(t, "a", `{}`)
	b.putTenant(t, "b", `{}`)
	r := b.do(t, "POST", "/subscriptions", `{"id":"b_taken","tenant_id":"b","url":"http://127.0.0.1:9/b","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/subscriptions", `{"id":"a_sub","tenant_id":"a","url":"http://127.0.0.1:9/a","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	key := b.portalSession(t, "a", `{}`)
	settings := `"max_attempts":100,"retry_base_delay_ms":1,"retry_max_delay_ms":604800000,"timeout_ms":300000,"rate_limit_per_second":100000,"max_concurrency":10000`
	allSettings := []string{"body.max_attempts", "body.max_concurrency", "body.rate_limit_per_second", "body.retry_base_delay_ms", "body.retry_max_delay_ms", "body.timeout_ms"}

	for _, tc := range []struct {
		name, method, path, body string
		fields                   []string
	}{
		{"an id taken by another tenant", "POST", "/subscriptions", `{"id":"b_taken","url":"http://127.0.0.1:9/x","event_types":["*"]}`, []string{"body.id"}},
		{"a free id", "POST", "/subscriptions", `{"id":"a_free","url":"http://127.0.0.1:9/x","event_types":["*"]}`, []string{"body.id"}},
		{"settings on create", "POST", "/subscriptions", `{"url":"http://127.0.0.1:9/x","event_types":["*"],` + settings + `}`, allSettings},
		{"settings on change", "PATCH", "/subscriptions/a_sub", `{"url":"http://127.0.0.1:9/y",` + settings + `}`, allSettings},
		{"one setting on change", "PATCH", "/subscriptions/a_sub", `{"timeout_ms":300000}`, []string{"body.timeout_ms"}},
	} {
		r := b.doWithKey(t, key, tc.method, tc.path, tc.body)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", tc.name, r.raw)
		require.Equal(t, tc.fields, r.locations(), tc.name)
	}
	require.Equal(t, 2, b.count(t, "subscriptions"), "nothing created")
	require.Equal(t, 1, b.count(t, "subscriptions WHERE id = 'a_sub' AND url = 'http://127.0.0.1:9/a' AND timeout_ms IS NULL"), "nothing changed")

	// What the portal offers still works with the key.
	r = b.doWithKey(t, key, "POST", "/subscriptions", `{"url":"http://127.0.0.1:9/x","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.Equal(t, "a", r.body["tenant_id"])
	r = b.doWithKey(t, key, "PATCH", "/subscriptions/a_sub", `{"url":"http://127.0.0.1:9/y","event_types":["a.*"],"state":"paused"}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)

	// A key of the tenant's own (not a portal session's) still may.
	own, _ := b.tenantKey(t, "a", `"read","write"`)
	r = b.doWithKey(t, own, "PATCH", "/subscriptions/a_sub", `{"timeout_ms":300000}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	r = b.doWithKey(t, own, "POST", "/subscriptions", `{"id":"a_chosen","url":"http://127.0.0.1:9/x","event_types":["*"],"max_attempts":3}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
}

// TestRevealIsForPortalSessionsAndAdmins: a subscription's secret is shown
// to a portal session of its tenant (not a read-only one) and to an admin
// key, to no other key whatever its scopes, and each reveal is logged with
// the key's id and the subscription's, never the secret.
func TestRevealIsForPortalSessionsAndAdmins(t *testing.T) {
	t.Parallel()
	logs := &testkit.Logs{}
	b := newBundle(t, func(c *api.Config) { c.Logger = slog.New(slog.NewJSONHandler(logs, nil)) })
	b.putTenant(t, "acme", `{}`)
	b.putTenant(t, "globex", `{}`)
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	r := b.do(t, "POST", "/subscriptions", `{"id":"acme_1","tenant_id":"acme","url":"http://127.0.0.1:9/a","event_types":["*"],"secret":"`+secret+`"}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/subscriptions", `{"id":"globex_1","tenant_id":"globex","url":"http://127.0.0.1:9/g","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.exchange(t, b.portalLink(t, b.key, "acme", `{}`))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	portal, portalKeyID := r.body["key"].(string), r.body["key_id"].(string)
	readOnly := b.portalSession(t, "acme", `{"read_only":true}`)
	tenantRW, _ := b.tenantKey(t, "acme", `"read","write"`)
	r = b.do(t, "POST", "/api-keys", `{"name":"rw","scopes":["read","write"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	operatorRW := r.body["key"].(string)
	r = b.do(t, "POST", "/api-keys", `{"name":"admin","scopes":["admin"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	storedAdmin, storedAdminID := r.body["key"].(string), r.body["id"].(string)

	for _, tc := range []struct {
		name, key, sub string
		status         int
	}{
		{"a portal session of the tenant", portal, "acme_1", http.StatusOK},
		{"ADMIN_API_KEY", adminKey, "acme_1", http.StatusOK},
		{"a stored admin key", storedAdmin, "acme_1", http.StatusOK},
		{"a portal session of another tenant's subscription", portal, "globex_1", http.StatusNotFound},
		{"a read-only portal session", readOnly, "acme_1", http.StatusForbidden},
		{"a read and write key of the tenant", tenantRW, "acme_1", http.StatusForbidden},
		{"a read and write key of every tenant", operatorRW, "acme_1", http.StatusForbidden},
	} {
		r := b.doWithKey(t, tc.key, "POST", "/subscriptions/"+tc.sub+"/secret/reveal", "")
		require.Equal(t, tc.status, r.status, "%s: %s", tc.name, r.raw)
		if tc.status == http.StatusOK {
			require.Equal(t, secret, r.body["secret"], tc.name)
		}
	}

	require.NotContains(t, logs.String(), strings.TrimPrefix(secret, "whsec_"), "a secret was logged")
	var revealed []string
	for _, l := range logs.JSONLines(t) {
		if l["msg"] == "subscription secret revealed" {
			require.Equal(t, "acme_1", l["subscription_id"])
			revealed = append(revealed, l["key_id"].(string))
		}
	}
	require.Equal(t, []string{portalKeyID, "ADMIN_API_KEY", storedAdminID}, revealed, "each reveal logged once, with the key's id")
}

// TestTestEventsAreThrottled: test events to one subscription beyond
// store.TestEventLimit in a window answer 429 problem+json with
// Retry-After, and store nothing; another subscription's are counted
// apart.
func TestTestEventsAreThrottled(t *testing.T) {
	b := setup(t)
	b.putTenant(t, "acme", `{}`)
	for _, id := range []string{"acme_1", "acme_2"} {
		r := b.do(t, "POST", "/subscriptions", `{"id":"`+id+`","tenant_id":"acme","url":"http://127.0.0.1:9/a","event_types":["*"]}`)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
	}
	key := b.portalSession(t, "acme", `{}`)
	for range store.TestEventLimit {
		r := b.doWithKey(t, key, "POST", "/subscriptions/acme_1/test", "")
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
	}
	r := b.doWithKey(t, key, "POST", "/subscriptions/acme_1/test", "")
	require.Equal(t, http.StatusTooManyRequests, r.status, r.raw)
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	wait, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err, r.header.Get("Retry-After"))
	require.Positive(t, wait)
	require.LessOrEqual(t, wait, int(store.TestEventWindow.Seconds()))
	require.Contains(t, r.body["detail"], "test events per endpoint")
	require.Equal(t, store.TestEventLimit, b.count(t, "events WHERE type = 'dispatch.test'"), "the refused one stored nothing")

	r = b.doWithKey(t, key, "POST", "/subscriptions/acme_2/test", "")
	require.Equal(t, http.StatusAccepted, r.status, "another subscription's test events are counted apart: %s", r.raw)
	r = b.do(t, "POST", "/subscriptions/acme_1/test", "")
	require.Equal(t, http.StatusTooManyRequests, r.status, "the bound is the subscription's, whoever asks: %s", r.raw)
}
