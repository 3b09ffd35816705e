package api

import (
	"encoding/json"
	"net/http"
)

// AnswerUnrouted answers, as problem+json like every other error, the
// requests mux has no route for: 404 for an unknown path, 405 with Allow
// for a known path and another method. http.ServeMux answers those in
// plain text, which a client parsing problem+json cannot read.
func AnswerUnrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		if probe.status < 400 {
			// A redirect (a path that needs cleaning or its trailing
			// slash): the mux answers it as usual.
			mux.ServeHTTP(w, r)
			return
		}
		detail := "no such resource: " + r.URL.Path
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			detail = r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + probe.header.Get("Allow")
		}
		body := ErrorModel{RequestID: RequestID(r.Context())}
		body.Status, body.Title, body.Detail = probe.status, http.StatusText(probe.status), detail
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(probe.status)
		_ = json.NewEncoder(w).Encode(body)
	})
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
