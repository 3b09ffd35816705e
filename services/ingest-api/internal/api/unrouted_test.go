package api_test

import (
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
