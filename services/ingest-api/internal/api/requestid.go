package api

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"time"
)

// MaxRequestIDLength bounds an X-Request-ID taken from a client; a longer
// one, or one with other characters than [A-Za-z0-9._:-], is replaced.
const MaxRequestIDLength = 128

type requestIDKey struct{}

// RequestID returns the id WithRequestID gave the request, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithRequestID gives every request an id: the client's X-Request-ID when
// it is safe to echo and log, a fresh one otherwise. The id is set on the
// answer, carried in the request's context (error answers and log lines
// include it) and logged with the request's outcome, at requestLevel;
// logRequests (LOG_REQUESTS) logs the answers that went as asked at info
// instead of debug, as an access log.
func WithRequestID(log *slog.Logger, logRequests bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !validRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set("X-Request-ID", id)
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		log.LogAttrs(r.Context(), requestLevel(rec.status, logRequests), "request",
			slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Duration("duration", time.Since(start)))
	})
}

// requestLevel is the level of a request's line: answers that went as
// asked are debug, since at thousands of events a second a line each
// costs the API about a tenth of its throughput and says nothing the
// metrics do not (ADR 27), unless logRequests asks for an access log at
// info; a client's error is info, the API's own a warning.
func requestLevel(status int, logRequests bool) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelWarn
	case status >= 400, logRequests:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// validRequestID reports whether a client's id can be echoed in a header
// and written to logs as it is.
func validRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLength {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// statusRecorder remembers the status an answer was sent with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
