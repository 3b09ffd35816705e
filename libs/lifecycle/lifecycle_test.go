package lifecycle_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/lifecycle"
)

func TestRunStopsEveryPartWhenOneFails(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	stopped := make(chan struct{})
	err := lifecycle.Run(context.Background(),
		func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil },
		func(context.Context) error { return boom },
	)
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the failure", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("the healthy part was not stopped")
	}
}

func TestHTTPServesUntilCancelledThenFinishesRequests(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// Signals from the server: it listens, a request is in its handler,
	// and its shutdown has begun; the handler answers only when the test
	// lets it, so the request is in flight when the stop comes.
	listening, started, finish, stopping := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-finish
		w.WriteHeader(http.StatusNoContent)
	})}
	srv.BaseContext = func(net.Listener) context.Context { close(listening); return context.Background() }
	srv.RegisterOnShutdown(func() { close(stopping) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lifecycle.Run(ctx, lifecycle.HTTP(srv, 5*time.Second)) }()

	<-listening
	var resp *http.Response
	got := make(chan error, 1)
	go func() {
		var err error
		resp, err = http.Get("http://" + addr)
		got <- err
	}()
	<-started
	cancel()
	select {
	case <-stopping:
		close(finish)
	case err := <-done:
		close(finish)
		t.Fatalf("Run = %v before the request in flight finished", err)
	}
	if err := <-got; err != nil {
		t.Fatalf("request in flight failed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestHTTPReportsAnAddressInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = lifecycle.Run(context.Background(), lifecycle.HTTP(&http.Server{Addr: ln.Addr().String()}, time.Second))
	if err == nil {
		t.Fatal("want an error for a taken address")
	}
}
