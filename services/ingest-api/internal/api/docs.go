package api

import (
	"embed"
	"net/http"
	"strings"
)

// docsUI is the vendored API reference renderer (see docsui/README.md).
//
//go:embed docsui/redoc.standalone.js
var docsUI embed.FS

// docsPage renders /openapi.json with the embedded Redoc: nothing is
// loaded from elsewhere, so the page works without Internet access.
const docsPage = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="referrer" content="no-referrer">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Dispatch API Reference</title>
  </head>
  <body>
    <redoc spec-url="/openapi.json"></redoc>
    <script src="/docs/redoc.standalone.js"></script>
  </body>
</html>
`

// docsCSP lets the page run only the embedded script. Redoc styles
// itself inline and runs its search in a worker made from a blob.
var docsCSP = strings.Join([]string{
	"default-src 'none'",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'",
	"connect-src 'self'",
	"script-src 'self'",
	"style-src 'unsafe-inline'",
	"img-src 'self' data:",
	"font-src 'self' data:",
	"worker-src blob:",
}, "; ")

// registerDocs serves the API reference at /docs.
func registerDocs(mux *http.ServeMux) {
	mux.HandleFunc("GET /docs", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Security-Policy", docsCSP)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(docsPage))
	})
	mux.HandleFunc("GET /docs/redoc.standalone.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		http.ServeFileFS(w, r, docsUI, "docsui/redoc.standalone.js")
	})
}
