package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func oauth2Body(t *testing.T, id string, settings any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"id": id, "url": "https://public.example/hook", "event_types": []string{"*"}, "oauth2": settings})
	require.NoError(t, err)
	return string(b)
}

// TestOAuth2Settings pins the oauth2 field: stored on create with the
// secret masked in every answer, removed by null; each bad value a 422
// naming it, a token URL the address policy refuses included, with
// nothing stored.
func TestOAuth2Settings(t *testing.T) {
	b := setup(t)
	good := map[string]any{"token_url": "https://public.example/oauth/token", "client_id": "dispatch", "client_secret": "cs-e2a91f", "scopes": []string{"webhooks:write"}, "audience": "https://api.example"}
	r := b.do(t, "POST", "/subscriptions", oauth2Body(t, "s1", good))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	for _, r := range []response{r, b.do(t, "GET", "/subscriptions/s1", "")} {
		require.Equal(t, map[string]any{"token_url": "https://public.example/oauth/token", "client_id": "dispatch", "client_secret": "********",
			"scopes": []any{"webhooks:write"}, "audience": "https://api.example"}, r.body["oauth2"])
		require.NotContains(t, r.raw, "cs-e2a91f")
	}

	with := func(field string, v any) map[string]any {
		m := map[string]any{}
		for k, x := range good {
			m[k] = x
		}
		m[field] = v
		return m
	}
	tests := []struct {
		name     string
		settings map[string]any
		location string
	}{
		{"token URL at cloud metadata", with("token_url", "http://metadata.example/token"), "body.oauth2.token_url"},
		{"token URL in the private network", with("token_url", "https://internal.example/token"), "body.oauth2.token_url"},
		{"token URL at loopback by number", with("token_url", "http://2130706433/token"), "body.oauth2.token_url"},
		{"token URL not absolute", with("token_url", "/token"), "body.oauth2.token_url"},
		{"empty client id", with("client_id", ""), "body.oauth2.client_id"},
		{"client secret with a newline", with("client_secret", "a\nb"), "body.oauth2.client_secret"},
		{"scope with a space", with("scopes", []string{"a b"}), "body.oauth2.scopes[0]"},
	}
	for _, tt := range tests {
		for _, req := range []struct{ method, path, body string }{
			{"POST", "/subscriptions", oauth2Body(t, "s2", tt.settings)},
			{"PATCH", "/subscriptions/s1", `{"oauth2":` + must(json.Marshal(tt.settings)) + `}`},
		} {
			before := b.snapshot(t, "subscriptions")
			r := b.do(t, req.method, req.path, req.body)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, tt.name+" "+req.method+": "+r.raw)
			detail := r.body["errors"].([]any)[0].(map[string]any)
			require.Equal(t, tt.location, detail["location"], tt.name+" "+req.method)
			require.NotContains(t, r.raw, "cs-e2a91f")
			require.Equal(t, before, b.snapshot(t, "subscriptions"), tt.name+" "+req.method+": nothing stored")
		}
	}
	r = b.do(t, "PATCH", "/subscriptions/s1", `{"oauth2":null}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Nil(t, r.body["oauth2"])
	require.NotContains(t, b.snapshot(t, "subscriptions"), "token_url")
}

// TestOAuth2PatchKeepsSecret pins that a PATCH sending the settings
// without the client secret keeps the stored secret when the token URL
// and client id are those stored, so that scopes or the audience can
// change without the secret being typed again; a secret is never kept
// for another token URL or client (it would go where it did not), where
// none is stored, nor by a key that may not read the subscription.
func TestOAuth2PatchKeepsSecret(t *testing.T) {
	b := setup(t)
	good := map[string]any{"token_url": "https://public.example/oauth/token", "client_id": "dispatch", "client_secret": "cs-e2a91f"}
	r := b.do(t, "POST", "/subscriptions", oauth2Body(t, "s1", good))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	r = b.do(t, "POST", "/subscriptions", oauth2Body(t, "bare", nil))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	secret := func() string {
		var s string
		require.NoError(t, b.db.Pool.QueryRow(t.Context(), `SELECT oauth2->>'client_secret' FROM subscriptions WHERE id = 's1'`).Scan(&s))
		return s
	}
	sealed := secret()
	r = b.do(t, "PATCH", "/subscriptions/s1", `{"oauth2":{"token_url":"https://public.example/oauth/token","client_id":"dispatch","scopes":["a","b"],"audience":"aud"}}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, map[string]any{"token_url": "https://public.example/oauth/token", "client_id": "dispatch", "client_secret": "********",
		"scopes": []any{"a", "b"}, "audience": "aud"}, r.body["oauth2"])
	require.Equal(t, sealed, secret(), "the stored secret kept as it was")

	writer, _ := b.newKey(t, `"write"`)
	for _, tt := range []struct {
		name, key, path, body string
	}{
		{"another token URL", "", "/subscriptions/s1", `{"oauth2":{"token_url":"https://other.example/token","client_id":"dispatch"}}`},
		{"another client", "", "/subscriptions/s1", `{"oauth2":{"token_url":"https://public.example/oauth/token","client_id":"else"}}`},
		{"no secret stored", "", "/subscriptions/bare", `{"oauth2":{"token_url":"https://public.example/oauth/token","client_id":"dispatch"}}`},
		{"a key without read", writer, "/subscriptions/s1", `{"oauth2":{"token_url":"https://public.example/oauth/token","client_id":"dispatch"}}`},
	} {
		before := b.snapshot(t, "subscriptions")
		if tt.key == "" {
			r = b.do(t, "PATCH", tt.path, tt.body)
		} else {
			r = b.doWithKey(t, tt.key, "PATCH", tt.path, tt.body)
		}
		require.Equal(t, http.StatusUnprocessableEntity, r.status, tt.name+": "+r.raw)
		detail := r.body["errors"].([]any)[0].(map[string]any)
		require.Equal(t, "body.oauth2.client_secret", detail["location"], tt.name)
		require.Equal(t, before, b.snapshot(t, "subscriptions"), tt.name+": nothing stored")
	}
	// Created without a secret: refused as before.
	r = b.do(t, "POST", "/subscriptions", oauth2Body(t, "s3", map[string]any{"token_url": "https://public.example/oauth/token", "client_id": "dispatch"}))
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Contains(t, r.raw, "body.oauth2.client_secret")
}

func must(b []byte, err error) string {
	if err != nil {
		panic(err)
	}
	return string(b)
}
