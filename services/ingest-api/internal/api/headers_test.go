package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCustomHeaders pins the headers field: set on create, masked in
// every answer, shown by an explicit reveal to the keys allowed to, and
// replaced, kept or removed by PATCH.
func TestCustomHeaders(t *testing.T) {
	b := setup(t)
	const value = "receiver-api-key-4f2a"
	r := b.do(t, "POST", "/subscriptions", `{"id":"s1","url":"http://127.0.0.1:9/","event_types":["*"],"headers":{"X-Api-Key":"`+value+`"}}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.Equal(t, map[string]any{"X-Api-Key": "********"}, r.body["headers"])
	require.NotContains(t, r.raw, value)

	for _, path := range []string{"/subscriptions/s1", "/subscriptions"} {
		r := b.do(t, "GET", path, "")
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.Contains(t, r.raw, `"X-Api-Key":"********"`)
		require.NotContains(t, r.raw, value)
	}

	writer, _ := b.newKey(t, `"write","read"`)
	r = b.doWithKey(t, writer, "POST", "/subscriptions/s1/headers/reveal", "")
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
	require.NotContains(t, r.raw, value)
	r = b.do(t, "POST", "/subscriptions/s1/headers/reveal", "")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, map[string]any{"X-Api-Key": value}, r.body["headers"])
	require.Equal(t, http.StatusNotFound, b.do(t, "POST", "/subscriptions/nope/headers/reveal", "").status)

	reveal := func() map[string]any {
		t.Helper()
		r := b.do(t, "POST", "/subscriptions/s1/headers/reveal", "")
		require.Equal(t, http.StatusOK, r.status, r.raw)
		return r.body["headers"].(map[string]any)
	}
	steps := []struct {
		name, body string
		want       map[string]any
	}{
		{"replaced", `{"headers":{"Authorization":"Bearer t0k3n","X-Tenant":"acme"}}`, map[string]any{"Authorization": "Bearer t0k3n", "X-Tenant": "acme"}},
		{"kept without the field", `{"url":"http://127.0.0.1:10/"}`, map[string]any{"Authorization": "Bearer t0k3n", "X-Tenant": "acme"}},
		{"removed by {}", `{"headers":{}}`, map[string]any{}},
		{"set again", `{"headers":{"X-A":"value-one"}}`, map[string]any{"X-A": "value-one"}},
		{"removed by null", `{"headers":null}`, map[string]any{}},
	}
	for _, st := range steps {
		r := b.do(t, "PATCH", "/subscriptions/s1", st.body)
		require.Equal(t, http.StatusOK, r.status, st.name+": "+r.raw)
		for _, v := range st.want {
			require.NotContains(t, r.raw, v.(string), st.name)
		}
		require.Equal(t, st.want, reveal(), st.name)
	}
}

// TestCustomHeadersBadInput pins that each bad header is a 422 naming it,
// on create and on PATCH, with nothing stored.
func TestCustomHeadersBadInput(t *testing.T) {
	b := setup(t)
	r := b.do(t, "POST", "/subscriptions", `{"id":"s1","url":"http://127.0.0.1:9/","event_types":["*"],"headers":{"X-Keep":"kept"}}`)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	many := map[string]string{}
	for _, c := range "abcdefghijklmnopqrstu" {
		many["X-"+string(c)] = "v"
	}
	manyJSON, err := json.Marshal(many)
	require.NoError(t, err)
	tests := []struct {
		name, headers, location, says string
	}{
		{"name with CR LF", `{"X-A\r\nX-B":"v"}`, "body.headers", "HTTP token"},
		{"name with NUL", `{"X-A\u0000":"v"}`, "body.headers", "NUL"},
		{"value with CR LF", `{"X-A":"v\r\nX-B: 1"}`, "body.headers.X-A", "control characters"},
		{"value of 1 MB", `{"X-A":"` + strings.Repeat("v", 1<<20) + `"}`, "body.headers.X-A", "at most 4096 bytes"},
		{"host", `{"Host":"evil.example"}`, "body.headers.Host", "cannot be set"},
		{"signature", `{"webhook-signature":"v1,forged"}`, "body.headers.webhook-signature", "cannot be set"},
		{"twenty-one", string(manyJSON), "body.headers", "20"},
		{"not strings", `{"X-A":1}`, "body.headers.X-A", ""},
	}
	for _, tt := range tests {
		for _, req := range []struct{ method, path, body string }{
			{"POST", "/subscriptions", `{"id":"s2","url":"http://127.0.0.1:9/","event_types":["*"],"headers":` + tt.headers + `}`},
			{"PATCH", "/subscriptions/s1", `{"headers":` + tt.headers + `}`},
		} {
			before := b.snapshot(t, "subscriptions")
			r := b.do(t, req.method, req.path, req.body)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, tt.name+" "+req.method+": "+r.raw[:min(len(r.raw), 300)])
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
			errs := r.body["errors"].([]any)
			detail := errs[0].(map[string]any)
			require.Equal(t, tt.location, detail["location"], tt.name+" "+req.method)
			require.Contains(t, detail["message"], tt.says, tt.name+" "+req.method)
			require.Equal(t, before, b.snapshot(t, "subscriptions"), tt.name+" "+req.method+": nothing stored")
		}
	}
}
