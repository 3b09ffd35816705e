package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUnroutedRequestsAreProblems: a path the API does not have, or a
// method a path does not take, is answered as problem+json like every other
// error, with the request's id, and 405 names the methods allowed.
func TestUnroutedRequestsAreProblems(t *testing.T) {
	b := setup(t)
	for _, tc := range []struct {
		name, method, path string
		status             int
		allow              string
	}{
		{"unknown path", http.MethodGet, "/nope", http.StatusNotFound, ""},
		{"unknown path under a known one", http.MethodGet, "/events/evt_1/nope", http.StatusNotFound, ""},
		{"method not allowed", http.MethodPut, "/events", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do(t, tc.method, tc.path, "", "X-Request-ID", "req-unrouted-1")
			require.Equal(t, tc.status, r.status, r.raw)
			require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
			require.EqualValues(t, tc.status, r.body["status"], r.raw)
			require.Equal(t, http.StatusText(tc.status), r.body["title"])
			require.Equal(t, "req-unrouted-1", r.body["request_id"])
			require.Equal(t, tc.allow, r.header.Get("Allow"))
		})
	}
	// Routed requests are untouched.
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/events", "").status)
}

// TestUncleanPathsAreProblems: a path with an empty, "." or ".." segment
// is a 404 problem like any other path the API does not have, not the
// mux's redirect to the cleaned path with an HTML body (which a client
// would follow, with its key, somewhere it did not name).
func TestUncleanPathsAreProblems(t *testing.T) {
	b := setup(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/events//x"},
		{http.MethodGet, "//events"},
		{http.MethodGet, "/events/"},
		{http.MethodPost, "/events//x/redeliver"},
		{http.MethodGet, "/events/./evt_1"},
		{http.MethodGet, "/events/evt_1/.."},
		{http.MethodDelete, "/subscriptions/../api-keys/key_1"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, b.url+tc.path, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+b.key)
			req.Header.Set("X-Request-ID", "req-unclean-1")
			resp, err := noFollow.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var body map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			require.Equal(t, http.StatusNotFound, resp.StatusCode, "%v", body)
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			require.Empty(t, resp.Header.Get("Location"))
			require.EqualValues(t, http.StatusNotFound, body["status"])
			require.Equal(t, "req-unclean-1", body["request_id"])
		})
	}
}
