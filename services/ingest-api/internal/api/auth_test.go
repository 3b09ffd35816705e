package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/api"
)

// newKey creates a stored key with the scopes through the API.
func (b *bundle) newKey(t *testing.T, scopes string) (key, id string) {
	t.Helper()
	r := b.do(t, "POST", "/api-keys", `{"name":"k","scopes":[`+scopes+`]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	return r.body["key"].(string), r.body["id"].(string)
}

func TestRequestsNeedAKey(t *testing.T) {
	b := setup(t)
	for _, key := range []string{"", "dsp_unknown", "Basic abc"} {
		r := b.doWithKey(t, key, "GET", "/subscriptions", "")
		require.Equal(t, http.StatusUnauthorized, r.status, r.raw)
		require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
		require.Contains(t, r.header.Get("WWW-Authenticate"), "Bearer")
	}
	r := b.doWithKey(t, "", "POST", "/events", `{"id":"e","type":"t","data":{}}`)
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Zero(t, b.count(t, "events"), "a refused request writes nothing")
	for _, open := range []string{"/openapi.json", "/openapi-3.0.json", "/docs"} {
		require.Equal(t, http.StatusOK, b.doWithKey(t, "", "GET", open, "").status, open)
	}
}

// TestFailedAuthenticationIsThrottledPerClient: a client that keeps
// failing authentication gets 401s, then 429 problem+json with
// Retry-After; a real key that client used before is still accepted. The
// clock stands still: on the real one, a loaded machine that took over
// 200 ms for the first 20 requests gave back a failure (5 a second) and a
// 21st 401 (seen once).
func TestFailedAuthenticationIsThrottledPerClient(t *testing.T) {
	t.Parallel()
	b := newBundle(t, func(c *api.Config) { c.Clock = clock.NewFake(time.Now()) })
	valid, _ := b.newKey(t, `"read"`)
	require.Equal(t, http.StatusOK, b.doWithKey(t, valid, "GET", "/subscriptions", "").status)
	var statuses []int
	var last response
	for i := range 25 {
		made := "dsp_" + strings.Repeat(string(rune('a'+i)), 52)
		last = b.doWithKey(t, made, "GET", "/subscriptions", "")
		statuses = append(statuses, last.status)
	}
	want := append(slices.Repeat([]int{http.StatusUnauthorized}, 20), slices.Repeat([]int{http.StatusTooManyRequests}, 5)...)
	require.Equal(t, want, statuses)
	require.Equal(t, "application/problem+json", last.header.Get("Content-Type"))
	require.Equal(t, "1", last.header.Get("Retry-After"))
	require.Contains(t, last.body["detail"], "failed authentication")
	require.Equal(t, http.StatusOK, b.doWithKey(t, valid, "GET", "/subscriptions", "").status, "a real key still works")
}

// TestRotateRefusesASealedLookingSecret: a new secret that starts as
// sealed secrets are stored is refused at rotation as at creation, and the
// subscription keeps its secret.
func TestRotateRefusesASealedLookingSecret(t *testing.T) {
	b := setup(t)
	created := b.do(t, "POST", "/subscriptions", `{"id":"s","url":"http://h/","event_types":["*"]}`)
	require.Equal(t, http.StatusCreated, created.status, created.raw)
	r := b.do(t, "POST", "/subscriptions/s/secret/rotate", `{"secret":"sealed:v1:0badc0de:my-secret"}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Contains(t, r.raw, "must not start with 'sealed:'")
	revealed := b.do(t, "POST", "/subscriptions/s/secret/reveal", "")
	require.Equal(t, created.body["secret"], revealed.body["secret"])
}

func TestScopes(t *testing.T) {
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.do(t, "POST", "/subscriptions", `{"id":"s","url":"http://h/","event_types":["*"]}`).status)
	read, _ := b.newKey(t, `"read"`)
	publish, _ := b.newKey(t, `"publish"`)
	write, _ := b.newKey(t, `"write"`)
	readWrite, _ := b.newKey(t, `"read","write"`)
	tests := []struct {
		key, method, path, body string
		want                    int
	}{
		{read, "GET", "/subscriptions", "", 200},
		{read, "GET", "/subscriptions/s", "", 200},
		{read, "POST", "/events", `{"id":"r","type":"t","data":{}}`, 403},
		{read, "POST", "/subscriptions", `{"url":"http://h/","event_types":["*"]}`, 403},
		{read, "GET", "/api-keys", "", 403},
		{publish, "POST", "/events", `{"id":"p","type":"t","data":{}}`, 202},
		{publish, "POST", "/events/batch", `{"events":[{"id":"pb","type":"t","data":{}}]}`, 200},
		{read, "POST", "/events/batch", `{"events":[{"id":"rb","type":"t","data":{}}]}`, 403},
		{publish, "GET", "/events/p", "", 403},
		{publish, "PATCH", "/subscriptions/s", `{"state":"paused"}`, 403},
		{publish, "DELETE", "/subscriptions/s", "", 403},
		{write, "POST", "/events", `{"id":"w","type":"t","data":{}}`, 202},
		{write, "PATCH", "/subscriptions/s", `{"state":"active"}`, 200},
		{write, "POST", "/events/w/redeliver", "", 202},
		{write, "GET", "/subscriptions", "", 403},
		{write, "POST", "/api-keys", `{"name":"x","scopes":["admin"]}`, 403},
		{readWrite, "GET", "/events/w", "", 200},
		{readWrite, "DELETE", "/api-keys/key_x", "", 403},
		{publish, "GET", "/me", "", 200},
		{read, "GET", "/me", "", 200},
	}
	for _, tt := range tests {
		r := b.doWithKey(t, tt.key, tt.method, tt.path, tt.body)
		require.Equal(t, tt.want, r.status, "%s %s: %s", tt.method, tt.path, r.raw)
		if tt.want == http.StatusForbidden {
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
		}
	}
	require.Equal(t, 3, b.count(t, "events"), "refused requests wrote nothing")
	me := b.doWithKey(t, publish, "GET", "/me", "")
	require.Equal(t, []any{"publish"}, me.body["scopes"], me.raw)
	require.Equal(t, []any{"admin"}, b.do(t, "GET", "/me", "").body["scopes"])
	require.Equal(t, http.StatusUnauthorized, b.doWithKey(t, "", "GET", "/me", "").status)
}

func TestAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	b := newBundle(t, func(c *api.Config) { c.Clock = clk })
	r := b.do(t, "POST", "/api-keys", `{"name":"billing","scopes":["publish"]}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	key, id := r.body["key"].(string), r.body["id"].(string)
	require.True(t, strings.HasPrefix(key, "dsp_"), key)
	require.Equal(t, key[:10], r.body["prefix"])

	list := b.do(t, "GET", "/api-keys", "")
	require.Equal(t, http.StatusOK, list.status)
	require.NotContains(t, list.raw, key, "the key is shown only once")
	require.Contains(t, list.raw, id)
	var stored []byte
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT key_hash FROM api_keys WHERE id = $1`, id).Scan(&stored))
	require.NotContains(t, string(stored), key, "only a hash is stored")

	require.Equal(t, http.StatusAccepted, b.doWithKey(t, key, "POST", "/events", `{"id":"e1","type":"t","data":{}}`).status)
	require.Equal(t, http.StatusNoContent, b.do(t, "DELETE", "/api-keys/"+id, "").status)
	require.Equal(t, http.StatusUnauthorized, b.doWithKey(t, key, "POST", "/events", `{"id":"e2","type":"t","data":{}}`).status,
		"revoked at once on the instance that revoked it")
	require.Equal(t, http.StatusNotFound, b.do(t, "DELETE", "/api-keys/"+id, "").status)

	// An hour on the API's clock: the database, which reads its own
	// clock, still finds the key while the test moves the API's.
	soon := clk.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	r = b.do(t, "POST", "/api-keys", `{"name":"short-lived","scopes":["read"],"expires_at":"`+soon+`"}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	shortLived := r.body["key"].(string)
	require.Equal(t, http.StatusOK, b.doWithKey(t, shortLived, "GET", "/subscriptions", "").status)
	clk.Advance(time.Hour - time.Microsecond)
	require.Equal(t, http.StatusOK, b.doWithKey(t, shortLived, "GET", "/subscriptions", "").status, "a key works until it expires")
	clk.Advance(time.Microsecond)
	require.Equal(t, http.StatusUnauthorized, b.doWithKey(t, shortLived, "GET", "/subscriptions", "").status, "an expired key still works")

	for _, bad := range []struct{ body, field string }{
		{`{"name":"x","scopes":["root"]}`, "body.scopes[0]"},
		{`{"name":"","scopes":["read"]}`, "body.name"},
		{`{"name":"ci\u001b[31m","scopes":["read"]}`, "body.name"},
		{`{"name":"ci\nadmin","scopes":["read"]}`, "body.name"},
		{`{"name":"ci\u0085","scopes":["read"]}`, "body.name"},
		{`{"name":"x","scopes":[]}`, "body.scopes"},
		{`{"name":"x","scopes":["read"],"expires_at":"2001-01-01T00:00:00Z"}`, "body.expires_at"},
	} {
		r := b.do(t, "POST", "/api-keys", bad.body)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
		require.Contains(t, r.raw, bad.field)
	}
}

// TestRevocationReachesEveryInstanceWithinASecond runs a second API
// instance on the same database: a key revoked through the first stops
// working on the second within a second, although the second had it cached.
func TestRevocationReachesEveryInstanceWithinASecond(t *testing.T) {
	b := setup(t)
	clk := clock.NewFake(time.Now())
	mux := http.NewServeMux()
	api.New(mux, api.Config{Store: store.New(b.db.Pool), Registerer: prometheus.NewRegistry(), Version: "test", Clock: clk})
	other := httptest.NewServer(mux)
	t.Cleanup(other.Close)
	second := &bundle{url: other.URL, db: b.db}

	key, id := b.newKey(t, `"read"`)
	require.Equal(t, http.StatusOK, second.doWithKey(t, key, "GET", "/subscriptions", "").status)
	require.Equal(t, http.StatusNoContent, b.do(t, "DELETE", "/api-keys/"+id, "").status)
	clk.Advance(time.Second)
	require.Equal(t, http.StatusUnauthorized, second.doWithKey(t, key, "GET", "/subscriptions", "").status,
		"the revoked key still works on another instance a second later")
	require.Equal(t, http.StatusUnauthorized, second.doWithKey(t, adminKey, "GET", "/subscriptions", "").status,
		"ADMIN_API_KEY holds only where it is configured")
}

func TestRotateSecret(t *testing.T) {
	b := setup(t)
	r := b.do(t, "POST", "/subscriptions", `{"id":"s","url":"http://h/","event_types":["*"],"secret":"first-secret"}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)

	r = b.do(t, "POST", "/subscriptions/s/secret/rotate", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.True(t, strings.HasPrefix(r.body["secret"].(string), "whsec_"), "a generated secret")
	until, err := time.Parse(time.RFC3339Nano, r.body["previous_secret_expires_at"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(24*time.Hour), until, time.Minute, "24 hours of grace by default")
	require.NotContains(t, b.do(t, "GET", "/subscriptions/s", "").raw, r.body["secret"], "the secret is shown only once")

	r = b.do(t, "POST", "/subscriptions/s/secret/rotate", `{"secret":"my-own-secret","grace_period_ms":0}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "my-own-secret", r.body["secret"])

	for _, bad := range []struct{ body, field string }{
		{`{"secret":"short"}`, "body.secret"},
		{`{"grace_period_ms":604800001}`, "body.grace_period_ms"},
		{`{"grace_period_ms":-1}`, "body.grace_period_ms"},
	} {
		r := b.do(t, "POST", "/subscriptions/s/secret/rotate", bad.body)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
		require.Contains(t, r.raw, bad.field)
	}
	require.Equal(t, http.StatusNotFound, b.do(t, "POST", "/subscriptions/nope/secret/rotate", "").status)
}
