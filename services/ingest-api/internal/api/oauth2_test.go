package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
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
	require.False(t, strings.Contains(b.snapshot(t, "subscriptions"), "token_url"))
}

func must(b []byte, err error) string {
	if err != nil {
		panic(err)
	}
	return string(b)
}
