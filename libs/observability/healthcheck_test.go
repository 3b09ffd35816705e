package observability_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/observability"
)

// TestHealthcheck asks a real server, as a container's health check does
// with the service's own ADDR.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	healthy.Store(true)
	mux := http.NewServeMux()
	observability.Register(mux, map[string]observability.Check{
		"database": func(context.Context) error {
			if healthy.Load() {
				return nil
			}
			return errors.New("connection refused")
		},
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)

	for _, addr := range []string{srv.Listener.Addr().String(), ":" + port, "0.0.0.0:" + port, "[::]:" + port} {
		require.NoError(t, observability.Healthcheck(context.Background(), addr), addr)
		require.Equal(t, 0, observability.HealthcheckCommand(addr), addr)
	}

	healthy.Store(false)
	err = observability.Healthcheck(context.Background(), ":"+port)
	require.ErrorContains(t, err, "503")
	require.ErrorContains(t, err, "connection refused", "the failing check is named")
	require.Equal(t, 1, observability.HealthcheckCommand(":"+port))
}

func TestHealthcheckNothingListening(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	require.Error(t, observability.Healthcheck(context.Background(), addr))
	require.Equal(t, 1, observability.HealthcheckCommand(addr))
	require.Equal(t, 1, observability.HealthcheckCommand("8080"), "not host:port")
}
