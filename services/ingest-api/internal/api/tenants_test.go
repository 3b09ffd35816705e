package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// putTenant creates a tenant through the API.
func (b *bundle) putTenant(t *testing.T, id, body string) {
	t.Helper()
	r := b.do(t, "PUT", "/tenants/"+id, body)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
}

// tenantKey creates a key bound to tenant with the scopes.
func (b *bundle) tenantKey(t *testing.T, tenant, scopes string) (key, id string) {
	t.Helper()
	r := b.do(t, "POST", "/api-keys", `{"name":"k","scopes":[`+scopes+`],"tenant_id":"`+tenant+`"}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.Equal(t, tenant, r.body["tenant_id"])
	return r.body["key"].(string), r.body["id"].(string)
}

func TestTenantLifecycle(t *testing.T) {
	b := setup(t)
	r := b.do(t, "PUT", "/tenants/acme", `{"name":"Acme","metadata":{"plan":"gold"},"max_attempts":3,"max_subscriptions":2}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.Equal(t, "Acme", r.body["name"])
	require.Equal(t, map[string]any{"plan": "gold"}, r.body["metadata"])
	require.EqualValues(t, 3, r.body["max_attempts"])

	r = b.do(t, "PUT", "/tenants/acme", `{"name":"Acme Inc."}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "Acme Inc.", r.body["name"])
	require.Nil(t, r.body["max_attempts"], "a put replaces the settings")

	r = b.do(t, "POST", "/subscriptions", `{"id":"acme_1","tenant_id":"acme","url":"http://127.0.0.1:9/a","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.Equal(t, "acme", r.body["tenant_id"])
	r = b.do(t, "POST", "/events", `{"id":"e1","type":"order.created","tenant_id":"acme","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)

	r = b.do(t, "GET", "/tenants/acme", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 1, r.body["subscriptions"])
	require.EqualValues(t, 1, r.body["events_last_24h"])
	require.EqualValues(t, 0, r.body["failing_deliveries"])

	for _, id := range []string{"acme_eu", "globex"} {
		b.putTenant(t, id, `{}`)
	}
	r = b.do(t, "GET", "/tenants?prefix=acme&limit=1", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, []string{"acme"}, dataIDs(t, r, "id"))
	r = b.do(t, "GET", "/tenants?prefix=acme&limit=1&after="+r.body["next_cursor"].(string), "")
	require.Equal(t, []string{"acme_eu"}, dataIDs(t, r, "id"))
	require.Nil(t, r.body["next_cursor"])

	r = b.do(t, "DELETE", "/tenants/default", "")
	require.Equal(t, http.StatusConflict, r.status, r.raw)
	r = b.do(t, "DELETE", "/tenants/acme", "")
	require.Equal(t, http.StatusNoContent, r.status, r.raw)
	require.Zero(t, b.count(t, "subscriptions WHERE tenant_id = 'acme'"))
	require.Zero(t, b.count(t, "events WHERE id = 'e1'"))
	r = b.do(t, "GET", "/tenants/acme", "")
	require.Equal(t, http.StatusNotFound, r.status, r.raw)
	r = b.do(t, "DELETE", "/tenants/acme", "")
	require.Equal(t, http.StatusNotFound, r.status, r.raw)
}

func TestTenantBadInputIsAPreciseProblem(t *testing.T) {
	b := setup(t)
	b.putTenant(t, "acme", `{}`)
	tests := []struct {
		name, method, path, body, location string
	}{
		{"id too long", "PUT", "/tenants/" + strings.Repeat("a", 256), `{}`, "path.id"},
		{"id with a space", "PUT", "/tenants/a%20b", `{}`, "path.id"},
		{"id with NUL", "PUT", "/tenants/a%00b", `{}`, "path.id"},
		{"id not UTF-8", "PUT", "/tenants/a%ffb", `{}`, "path.id"},
		{"metadata not an object", "PUT", "/tenants/x", `{"metadata":[1]}`, "body.metadata"},
		{"metadata too large", "PUT", "/tenants/x", `{"metadata":{"a":"` + strings.Repeat("x", 5000) + `"}}`, "body.metadata"},
		{"name with a control character", "PUT", "/tenants/x", `{"name":"a\u0007b"}`, "body.name"},
		{"quota of zero", "PUT", "/tenants/x", `{"max_subscriptions":0}`, "body.max_subscriptions"},
		{"metadata with a number out of range", "PUT", "/tenants/x", `{"metadata":{"x":1e1000000}}`, "body.metadata.x"},
		{"event data with a number that reads back in megabytes", "POST", "/events", `{"id":"e1","type":"t","data":{"x":[1e131000]}}`, "body.data.x[0]"},
		{"event for an unknown tenant", "POST", "/events", `{"id":"e1","type":"t","tenant_id":"nope","data":{}}`, "body.tenant_id"},
		{"event tenant with a slash", "POST", "/events", `{"id":"e1","type":"t","tenant_id":"a/b","data":{}}`, "body.tenant_id"},
		{"subscription for an unknown tenant", "POST", "/subscriptions", `{"tenant_id":"nope","url":"http://127.0.0.1:9/","event_types":["*"]}`, "body.tenant_id"},
		{"subscription for every tenant", "POST", "/subscriptions", `{"tenant_id":"*","url":"http://127.0.0.1:9/","event_types":["*"]}`, "body.tenant_id"},
		{"key for an unknown tenant", "POST", "/api-keys", `{"name":"k","scopes":["read"],"tenant_id":"nope"}`, "body.tenant_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.do(t, tt.method, tt.path, tt.body)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
			require.Contains(t, r.raw, `"location":"`+tt.location+`"`, r.raw)
		})
	}
	require.Zero(t, b.count(t, "events"), "nothing refused was stored")
	require.Zero(t, b.count(t, "tenants WHERE id = 'x'"))
}

func TestEventsReachOnlyTheirTenant(t *testing.T) {
	b := setup(t)
	for _, id := range []string{"a", "b"} {
		b.putTenant(t, id, `{}`)
	}
	for _, sub := range []struct{ id, tenant string }{{"sub_default", ""}, {"sub_a", "a"}, {"sub_b", "b"}} {
		body := `{"id":"` + sub.id + `","url":"http://127.0.0.1:9/` + sub.id + `","event_types":["order.*"]`
		if sub.tenant != "" {
			body += `,"tenant_id":"` + sub.tenant + `"`
		}
		r := b.do(t, "POST", "/subscriptions", body+`}`)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
	}
	reached := func(t *testing.T, event string) []string {
		t.Helper()
		rows, err := b.db.Pool.Query(context.Background(), `SELECT subscription_id FROM deliveries WHERE event_id = $1 ORDER BY 1`, event)
		require.NoError(t, err)
		defer rows.Close()
		var subs []string
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			subs = append(subs, s)
		}
		require.NoError(t, rows.Err())
		return subs
	}
	post := func(t *testing.T, key, body string) response {
		t.Helper()
		return b.doWithKey(t, key, "POST", "/events", body)
	}

	r := post(t, b.key, `{"id":"untagged","type":"order.created","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.Equal(t, "default", r.body["tenant_id"])
	require.Equal(t, []string{"sub_default"}, reached(t, "untagged"), "an event that names no tenant is the default tenant's")

	r = post(t, b.key, `{"id":"for_a","type":"order.created","tenant_id":"a","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.Equal(t, []string{"sub_a"}, reached(t, "for_a"))

	r = post(t, b.key, `{"id":"for_all","type":"order.created","tenant_id":"*","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.Equal(t, []string{"sub_a", "sub_b", "sub_default"}, reached(t, "for_all"))

	r = post(t, b.key, `{"id":"for_a","type":"order.created","tenant_id":"b","data":{}}`)
	require.Equal(t, http.StatusConflict, r.status, "the same id for another tenant is no repeat: %s", r.raw)
	require.Contains(t, r.raw, "another tenant")
	r = post(t, b.key, `{"id":"for_a","type":"order.created","tenant_id":"a","data":{}}`)
	require.Equal(t, http.StatusOK, r.status, "a repeat for the same tenant is idempotent: %s", r.raw)

	keyA, _ := b.tenantKey(t, "a", `"publish","read"`)
	r = post(t, keyA, `{"id":"by_a","type":"order.created","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.Equal(t, "a", r.body["tenant_id"], "a bound key's event is its tenant's")
	require.Equal(t, []string{"sub_a"}, reached(t, "by_a"))
	for _, tenant := range []string{"b", "*", "default"} {
		r = post(t, keyA, `{"id":"by_a_`+strings.Trim(tenant, "*")+`x","type":"order.created","tenant_id":"`+tenant+`","data":{}}`)
		require.Equal(t, http.StatusForbidden, r.status, "a key bound to a may not post for %q: %s", tenant, r.raw)
	}

	r = b.do(t, "POST", "/events/batch", `{"events":[
		{"id":"batch_a","type":"order.created","tenant_id":"a","data":{}},
		{"id":"batch_b","type":"order.created","tenant_id":"b","data":{}},
		{"id":"batch_all","type":"order.created","tenant_id":"*","data":{}},
		{"id":"batch_default","type":"order.created","data":{}},
		{"id":"batch_unknown","type":"order.created","tenant_id":"nope","data":{}},
		{"id":"for_a","type":"order.created","tenant_id":"b","data":{}},
		{"id":"batch_a","type":"order.created","tenant_id":"b","data":{}}]}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	statuses := func() []string {
		var out []string
		for _, item := range r.body["data"].([]any) {
			out = append(out, item.(map[string]any)["status"].(string))
		}
		return out
	}
	require.Equal(t, []string{"stored", "stored", "stored", "stored", "invalid", "invalid", "invalid"}, statuses(), r.raw)
	require.Equal(t, []string{"sub_a"}, reached(t, "batch_a"))
	require.Equal(t, []string{"sub_b"}, reached(t, "batch_b"))
	require.Equal(t, []string{"sub_a", "sub_b", "sub_default"}, reached(t, "batch_all"))
	require.Equal(t, []string{"sub_default"}, reached(t, "batch_default"))

	r = b.doWithKey(t, keyA, "POST", "/events/batch", `{"events":[{"id":"batch_by_a","type":"order.created","data":{}},{"id":"batch_by_a_all","type":"order.created","tenant_id":"*","data":{}}]}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, []string{"stored", "invalid"}, statuses(), r.raw)
	require.Equal(t, []string{"sub_a"}, reached(t, "batch_by_a"))
}

func TestTenantSubscriptionQuotaAndImmutability(t *testing.T) {
	b := setup(t)
	b.putTenant(t, "small", `{"max_subscriptions":1}`)
	r := b.do(t, "POST", "/subscriptions", `{"id":"s1","tenant_id":"small","url":"http://127.0.0.1:9/","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/subscriptions", `{"id":"s2","tenant_id":"small","url":"http://127.0.0.1:9/","event_types":["*"]}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Contains(t, r.raw, "max_subscriptions")

	r = b.do(t, "PATCH", "/subscriptions/s1", `{"tenant_id":"default"}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Contains(t, r.raw, `"location":"body.tenant_id"`)
	r = b.do(t, "PATCH", "/subscriptions/s1", `{"tenant_id":"small","state":"paused"}`)
	require.Equal(t, http.StatusOK, r.status, "naming its own tenant changes nothing: %s", r.raw)
}

func TestTenantBoundKeySeesOnlyItsTenant(t *testing.T) {
	b := setup(t)
	for _, id := range []string{"a", "b"} {
		b.putTenant(t, id, `{}`)
		r := b.do(t, "POST", "/subscriptions", `{"id":"sub_`+id+`","tenant_id":"`+id+`","url":"http://127.0.0.1:9/","event_types":["*"]}`)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		r = b.do(t, "POST", "/events", `{"id":"evt_`+id+`","type":"order.created","tenant_id":"`+id+`","data":{}}`)
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
	}
	r := b.do(t, "POST", "/events", `{"id":"evt_all","type":"order.created","tenant_id":"*","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	keyA, _ := b.tenantKey(t, "a", `"read","write"`)

	r = b.doWithKey(t, keyA, "GET", "/me", "")
	require.Equal(t, "a", r.body["tenant_id"])
	r = b.doWithKey(t, keyA, "GET", "/subscriptions", "")
	require.Equal(t, []string{"sub_a"}, dataIDs(t, r, "id"))
	r = b.doWithKey(t, keyA, "GET", "/subscriptions?tenant_id=b", "")
	require.Empty(t, dataIDs(t, r, "id"))
	r = b.doWithKey(t, keyA, "GET", "/events", "")
	require.Equal(t, []string{"evt_a"}, dataIDs(t, r, "id"), "a tenant's listing holds its own events")
	// b's receiver fails the event sent to everyone; a's got it.
	_, err := b.db.Pool.Exec(context.Background(), `UPDATE deliveries SET status = CASE subscription_id WHEN 'sub_b' THEN 'failed' ELSE 'delivered' END, next_attempt_at = NULL`)
	require.NoError(t, err)
	r = b.doWithKey(t, keyA, "GET", "/events?subscription_id=sub_a", "")
	require.ElementsMatch(t, []string{"evt_a", "evt_all"}, dataIDs(t, r, "id"), "and, by its subscription, those sent to every tenant")
	for _, e := range r.body["data"].([]any) {
		require.Equal(t, "delivered", e.(map[string]any)["status"], "the status a tenant sees is its own deliveries': %s", r.raw)
	}
	r = b.doWithKey(t, keyA, "GET", "/events/evt_all", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Len(t, r.body["deliveries"], 1, "only its own delivery of an event sent to every tenant: %s", r.raw)
	r = b.doWithKey(t, keyA, "GET", "/tenants/a", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	r = b.doWithKey(t, keyA, "POST", "/subscriptions", `{"id":"sub_a2","url":"http://127.0.0.1:9/","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.Equal(t, "a", r.body["tenant_id"], "a bound key's subscription is its tenant's")
	r = b.doWithKey(t, keyA, "POST", "/subscriptions", `{"id":"sub_b2","tenant_id":"b","url":"http://127.0.0.1:9/","event_types":["*"]}`)
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
}

// TestStatsOfATenant: a key bound to a tenant gets its own tenant's
// figures from GET /stats and /stats/minutes, and zeros when it names
// another tenant; a key bound to no tenant gets any one tenant's with
// tenant_id, and every tenant's without.
func TestStatsOfATenant(t *testing.T) {
	b := setup(t)
	for _, id := range []string{"a", "b"} {
		b.putTenant(t, id, `{}`)
		r := b.do(t, "POST", "/subscriptions", `{"id":"sub_`+id+`","tenant_id":"`+id+`","url":"http://127.0.0.1:9/","event_types":["*"]}`)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
	}
	for _, e := range []struct{ id, tenant string }{{"a1", "a"}, {"a2", "a"}, {"b1", "b"}, {"all", "*"}} {
		r := b.do(t, "POST", "/events", `{"id":"`+e.id+`","type":"order.created","tenant_id":"`+e.tenant+`","data":{}}`)
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
	}
	_, err := b.db.Pool.Exec(context.Background(), `UPDATE deliveries SET status = 'delivered', next_attempt_at = NULL
		WHERE event_id = 'a1' OR (event_id = 'all' AND subscription_id = 'sub_b')`)
	require.NoError(t, err)
	keyA, _ := b.tenantKey(t, "a", `"read"`)

	type figures struct{ received, delivered, backlog, minutesReceived float64 }
	read := func(t *testing.T, key, query string) figures {
		t.Helper()
		r := b.doWithKey(t, key, "GET", "/stats?window=15m"+query, "")
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.Equal(t, "15m", r.body["window"])
		f := figures{received: r.body["events_received"].(float64), delivered: r.body["deliveries_delivered"].(float64),
			backlog: r.body["backlog_due"].(float64)}
		r = b.doWithKey(t, key, "GET", "/stats/minutes?window=15m"+query, "")
		require.Equal(t, http.StatusOK, r.status, r.raw)
		minutes := r.body["data"].([]any)
		require.Len(t, minutes, 16, "every minute of the window and the current one")
		for _, m := range minutes {
			f.minutesReceived += m.(map[string]any)["events_received"].(float64)
		}
		return f
	}
	tests := []struct {
		name, key, query string
		want             figures
	}{
		// a's two events, not the one sent to every tenant, whose
		// pending delivery to sub_a waits with a2's.
		{"bound key, its own", keyA, "", figures{received: 2, delivered: 1, backlog: 2, minutesReceived: 2}},
		{"bound key naming its own", keyA, "&tenant_id=a", figures{received: 2, delivered: 1, backlog: 2, minutesReceived: 2}},
		{"bound key naming another", keyA, "&tenant_id=b", figures{}},
		{"bound key naming none that exists", keyA, "&tenant_id=nope", figures{}},
		{"operator naming a tenant", b.key, "&tenant_id=b", figures{received: 1, delivered: 1, backlog: 1, minutesReceived: 1}},
		{"operator, every tenant", b.key, "", figures{received: 4, delivered: 2, backlog: 3, minutesReceived: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, read(t, tt.key, tt.query))
		})
	}
}

// TestTenantIsolationOnEveryRoute calls every operation the API has
// registered, as a key bound to tenant a that holds every scope, on the
// ids of tenant b's subscription, event, key and tenant, and with b's ids
// in every query parameter that takes one. Each answer must be a 404 or
// a 403, or a listing without anything of b's, and nothing of b's may
// change. The operations come from the API's own OpenAPI document, so a
// route added later is called too; one with a path parameter this test
// does not know fails it until the test is taught its ids.
func TestTenantIsolationOnEveryRoute(t *testing.T) {
	b := setup(t)
	b.putTenant(t, "a", `{"name":"tenant a"}`)
	b.putTenant(t, "b", `{"name":"b-canary-name","metadata":{"canary":"b-canary-meta"}}`)
	r := b.do(t, "POST", "/subscriptions", `{"id":"b-canary-sub","tenant_id":"b","url":"http://127.0.0.1:9/b-canary-url","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/subscriptions", `{"id":"a_sub","tenant_id":"a","url":"http://127.0.0.1:9/a","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/events", `{"id":"b-canary-evt","type":"b.canary","tenant_id":"b","data":{"canary":"b-canary-data"}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	r = b.do(t, "POST", "/events", `{"id":"a_evt","type":"a.event","tenant_id":"a","data":{}}`)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	ctx := context.Background()
	_, err := b.db.Pool.Exec(ctx, `UPDATE deliveries SET status = 'failed', attempts = 1, next_attempt_at = NULL`)
	require.NoError(t, err)
	_, err = b.db.Pool.Exec(ctx, `INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, response_body)
		SELECT id, 1, now(), 5, 500, 'b-canary-answer' FROM deliveries WHERE event_id = 'b-canary-evt'`)
	require.NoError(t, err)
	_, keyB := b.tenantKey(t, "b", `"read"`)
	keyA, _ := b.tenantKey(t, "a", `"admin"`)

	// snapshotB is every row of tenant b's, as text.
	snapshotB := func() string {
		var s string
		require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT concat_ws(' | ',
			(SELECT string_agg(t::text, ',') FROM tenants t WHERE id = 'b'),
			(SELECT string_agg(s::text, ',' ORDER BY id) FROM subscriptions s WHERE tenant_id = 'b'),
			(SELECT string_agg(e::text, ',' ORDER BY id) FROM events e WHERE tenant_id = 'b'),
			(SELECT string_agg(d::text, ',' ORDER BY id) FROM deliveries d WHERE subscription_id = 'b-canary-sub'),
			(SELECT string_agg(a::text, ',' ORDER BY a.id) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.subscription_id = 'b-canary-sub'),
			(SELECT string_agg(k::text, ',' ORDER BY id) FROM api_keys k WHERE tenant_id = 'b'),
			(SELECT string_agg(et::text, ',' ORDER BY name) FROM event_types et))`).Scan(&s))
		return s
	}
	before := snapshotB()

	// Ids of b's for each collection's path parameter, and bodies that
	// would change b's data or reach b's subscriptions.
	// Event types are global: a tenant-bound key reads them all (an
	// unknown name is a 404) and changes none (403).
	pathIDs := map[string]string{"/subscriptions": "b-canary-sub", "/events": "b-canary-evt", "/tenants": "b", "/api-keys": keyB, "/event-types": "b.canary"}
	queryIDs := map[string]string{"subscription_id": "b-canary-sub", "tenant_id": "b", "prefix": "b"}
	bodies := map[string]string{
		"POST /subscriptions":                    `{"tenant_id":"b","url":"http://127.0.0.1:9/x","event_types":["*"]}`,
		"PATCH /subscriptions/{id}":              `{"url":"http://127.0.0.1:9/stolen","state":"paused"}`,
		"POST /subscriptions/{id}/redeliver":     `{"statuses":["failed","delivered"]}`,
		"POST /subscriptions/{id}/secret/rotate": `{}`,
		"POST /subscriptions/{id}/test":          `{}`,
		"POST /events":                           `{"id":"x1","type":"b.canary","tenant_id":"b","data":{}}`,
		"POST /events/batch":                     `{"events":[{"id":"x2","type":"b.canary","tenant_id":"b","data":{}},{"id":"x3","type":"b.canary","tenant_id":"*","data":{}}]}`,
		"POST /events/{id}/redeliver":            `{"subscription_id":"b-canary-sub"}`,
		"PUT /tenants/{id}":                      `{"name":"taken"}`,
		"PUT /event-types/{name}":                `{"schema":{},"examples":[{}]}`,
		"POST /api-keys":                         `{"name":"k","scopes":["admin"],"tenant_id":"b"}`,
		"POST /portal-links/exchange":            `{"token":"dpl_unknown"}`,
	}

	var called []string
	for path, item := range b.api.OpenAPI().Paths {
		for method, op := range map[string]*huma.Operation{"GET": item.Get, "POST": item.Post, "PUT": item.Put, "PATCH": item.Patch, "DELETE": item.Delete} {
			if op == nil {
				continue
			}
			name := method + " " + path
			called = append(called, name)
			target := path
			for _, p := range op.Parameters {
				if p.In != "path" {
					continue
				}
				collection, _, _ := strings.Cut(path, "/{")
				id, ok := pathIDs[collection]
				require.True(t, ok, "%s: this test knows no id of tenant b for the path parameter %q: add one", name, p.Name)
				target = strings.Replace(target, "{"+p.Name+"}", url.PathEscape(id), 1)
			}
			q := url.Values{}
			for _, p := range op.Parameters {
				if v, ok := queryIDs[p.Name]; ok && p.In == "query" {
					q.Set(p.Name, v)
				}
			}
			if len(q) > 0 {
				target += "?" + q.Encode()
			}
			body := bodies[name]
			if body == "" && op.RequestBody != nil {
				body = `{}`
			}
			r := b.doWithKey(t, keyA, method, target, body)
			switch {
			case r.status == http.StatusNotFound || r.status == http.StatusForbidden:
			case r.status < 300 && !strings.Contains(path, "{"):
				// A listing or a creation in a's own tenant: nothing of b's.
				for _, canary := range []string{"b-canary", `"b"`, keyB} {
					require.NotContains(t, r.raw, canary, "%s answered b's data: %s", name, r.raw)
				}
			default:
				t.Errorf("%s as tenant a on b's ids answered %d: %s", name, r.status, r.raw)
			}
		}
	}
	sort.Strings(called)
	t.Logf("called %d operations: %s", len(called), strings.Join(called, ", "))
	require.GreaterOrEqual(t, len(called), 25)
	require.Equal(t, before, snapshotB(), "tenant b's rows changed")
	require.Zero(t, b.count(t, "deliveries WHERE subscription_id = 'b-canary-sub' AND event_id <> 'b-canary-evt'"),
		"an event posted by tenant a reached tenant b's subscription")
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/subscriptions/b-canary-sub", "").status, "b's subscription is still there")
}

// BenchmarkTenantListings measures the tenant listings at scale: 10,000
// tenants of 10 subscriptions each (100,000 subscriptions) and 1,000,000
// events, 100 per tenant over the last day, each with one delivery. It
// reports each listing's p99 over the iterations (run with -benchtime
// 1000x): GET /tenants (first page, a prefix, a page further on), one
// tenant with its counts, and one tenant's GET /events, by an operator's
// filter and by the tenant's own key.
func BenchmarkTenantListings(b *testing.B) {
	bb := newBundle(b)
	ctx := context.Background()
	const tenants, subsEach, eventsEach = 10_000, 10, 100
	for _, q := range []string{
		`INSERT INTO tenants (id, name) SELECT 'tenant_' || lpad(i::text, 5, '0'), 'Tenant ' || i FROM generate_series(1, ` + strconv.Itoa(tenants) + `) i`,
		`INSERT INTO subscriptions (id, tenant_id, url, event_types, secret)
			SELECT t.id || '_sub_' || j, t.id, 'http://127.0.0.1:9/' || t.id, ARRAY['*'], 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
			FROM tenants t, generate_series(1, ` + strconv.Itoa(subsEach) + `) j WHERE t.id <> 'default'`,
		`INSERT INTO events (id, type, data, tenant_id, received_at)
			SELECT t.id || '_evt_' || j, 'order.created', '{"n":1}', t.id, now() - (j * interval '14 minutes')
			FROM tenants t, generate_series(1, ` + strconv.Itoa(eventsEach) + `) j WHERE t.id <> 'default'`,
		`INSERT INTO deliveries (event_id, subscription_id, status, attempts, created_at, updated_at)
			SELECT e.id, e.tenant_id || '_sub_1', 'delivered', 1, e.received_at, e.received_at FROM events e`,
		`ANALYZE`,
	} {
		if _, err := bb.db.Pool.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	tenantKey, hash := apikey.New()
	if _, err := store.New(bb.db.Pool).CreateAPIKey(ctx, domain.APIKey{ID: apikey.NewID(), Name: "k", Scopes: []domain.Scope{domain.ScopeRead},
		Prefix: apikey.Display(tenantKey), TenantID: "tenant_05000"}, hash); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func(key, path string) error {
		req, err := http.NewRequest(http.MethodGet, bb.url+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %d", path, resp.StatusCode)
		}
		return nil
	}
	for _, l := range []struct{ name, key, path string }{
		{"tenants", bb.key, "/tenants?limit=50"},
		{"tenants_prefix", bb.key, "/tenants?prefix=tenant_07&limit=50"},
		{"tenants_after", bb.key, "/tenants?after=tenant_09000&limit=50"},
		{"tenant_with_counts", bb.key, "/tenants/tenant_05000"},
		{"tenant_events_filter", bb.key, "/events?tenant_id=tenant_05000&limit=50"},
		{"tenant_events_own_key", tenantKey, "/events?limit=50"},
	} {
		b.Run(l.name, func(b *testing.B) {
			took := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if err := get(l.key, l.path); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
