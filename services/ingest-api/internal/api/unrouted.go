package api

import (
	"encoding/json"
	"net/http"
	"path"
	"strings"
)

// AnswerUnrouted answers, as problem+json like every other error, the
// requests mux has no route for: 404 for an unknown path, 405 with Allow
// for a known path and another method. http.ServeMux answers those in
// plain text, which a client parsing problem+json cannot read. A path
// that is not clean (an empty, "." or ".." segment, as in /events//x) is
// a 404 too: the mux would redirect it to its cleaned form with an HTML
// body, sending a client that follows, key and all, to a path it did not
// name.
func AnswerUnrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect && !isClean(r.URL.EscapedPath()) {
			writeProblem(w, r, http.StatusNotFound, "no such resource: "+r.URL.Path)
			return
		}
		h, pattern := mux.Handler(r)
		if pattern != "" {
			// Served through the mux, not h, so the request carries its
			// pattern and path values.
			mux.ServeHTTP(w, r)
			return
		}
		// The mux's own answer tells which: its status and Allow header.
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		detail := "no such resource: " + r.URL.Path
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			detail = r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + probe.header.Get("Allow")
		}
		writeProblem(w, r, probe.status, detail)
	})
}

// isClean reports whether http.ServeMux takes a request path as it is:
// otherwise it redirects to the path cleaned as path.Clean cleans it,
// keeping a trailing slash.
func isClean(p string) bool {
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return p == clean
}

// writeProblem answers an unrouted request with a problem of status.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	body := ErrorModel{RequestID: RequestID(r.Context())}
	body.Status, body.Title, body.Detail = status, http.StatusText(status), detail
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// statusProbe records the status and headers a handler answers with and
// drops its body.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }

func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}

func (p *statusProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}
