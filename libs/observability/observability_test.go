package observability_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/observability"
)

func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	healthy := true
	mux := http.NewServeMux()
	observability.Register(mux, map[string]observability.Check{
		"database": func(context.Context) error {
			if healthy {
				return nil
			}
			return errors.New("connection refused")
		},
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz = %d", code)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"database":"ok"`) {
		t.Fatalf("readyz = %d %s", code, body)
	}
	healthy = false
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "connection refused") {
		t.Fatalf("readyz with a dead dependency = %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics = %d", code)
	}
}

// TestServerDropsSilentAndIdleClients: a client that connects and says
// nothing, or keeps a connection idle, does not hold it forever.
func TestServerDropsSilentAndIdleClients(t *testing.T) {
	t.Parallel()
	srv := observability.NewServer("127.0.0.1:0", http.NewServeMux())
	require.Positive(t, srv.ReadTimeout)
	require.Positive(t, srv.WriteTimeout)
	require.Positive(t, srv.IdleTimeout)
	ln, err := net.Listen("tcp", srv.Addr)
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })

	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	start := time.Now()
	require.NoError(t, conn.SetReadDeadline(start.Add(3*observability.ReadHeaderTimeout)))
	_, err = conn.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the server closes a silent connection")
	require.Less(t, time.Since(start), 2*observability.ReadHeaderTimeout)
}
