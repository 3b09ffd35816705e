package api_test

import (
	"net/http"
	"regexp"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDocsNeedNoInternet pins that /docs loads only what the API serves.
func TestDocsNeedNoInternet(t *testing.T) {
	b := setup(t)
	page := b.do(t, "GET", "/docs", "")
	require.Equal(t, http.StatusOK, page.status)
	require.Contains(t, page.header.Get("Content-Type"), "text/html")
	require.Contains(t, page.header.Get("Content-Security-Policy"), "script-src 'self'")
	require.NotRegexp(t, `(src|href)="(https?:)?//`, page.raw, "nothing is loaded from elsewhere")
	for _, m := range regexp.MustCompile(`(?:src|spec-url)="([^"]+)"`).FindAllStringSubmatch(page.raw, -1) {
		r := b.do(t, "GET", m[1], "")
		require.Equal(t, http.StatusOK, r.status, m[1])
		require.Greater(t, len(r.raw), 1000, m[1])
	}
	require.Contains(t, b.do(t, "GET", "/docs/redoc.standalone.js", "").header.Get("Content-Type"), "javascript")
}

// TestFirstDocumentRequestsAtOnce: the document's first requests may
// arrive together (a client generator, the docs page, a health probe);
// under -race this fails if they share an unguarded cache.
func TestFirstDocumentRequestsAtOnce(t *testing.T) {
	b := setup(t) // parallel, as setup makes every test

	paths := []string{"/openapi.json", "/openapi.json", "/openapi-3.0.json", "/openapi-3.0.json", "/openapi.yaml", "/openapi-3.0.yaml"}
	statuses, errs := make([]int, len(paths)), make([]error, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Go(func() {
			r, err := b.try(b.key, "GET", path, "")
			statuses[i], errs[i] = r.status, err
		})
	}
	wg.Wait()
	for i, path := range paths {
		require.NoError(t, errs[i], path)
		require.Equal(t, http.StatusOK, statuses[i], path)
	}
}
