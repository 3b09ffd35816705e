// Package lifecycle runs a service process: its parts side by side until a
// signal or a failure, then a bounded, orderly stop. Signals and shutdown
// deadlines live here, once, for every service.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Main runs run with a context that ends on SIGINT or SIGTERM, and exits
// with status 1 and the error, prefixed by the service name, if it fails.
func Main(name string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Part is a long-running piece of a service. It runs until ctx ends, then
// stops within its own bounds and returns nil, or returns an error early.
type Part func(ctx context.Context) error

// Run runs every part until ctx ends or one of them fails, then stops the
// others and waits for them. It returns the first failure.
func Run(ctx context.Context, parts ...Part) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, p := range parts {
		wg.Go(func() {
			if err := p(ctx); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		})
	}
	wg.Wait()
	return first
}

// HTTP is a Part serving srv until ctx ends, then shutting it down within
// timeout so that requests in flight finish.
func HTTP(srv *http.Server, timeout time.Duration) Part {
	return func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.ListenAndServe() }()
		select {
		case err := <-errc:
			return fmt.Errorf("listen on %s: %w", srv.Addr, err)
		case <-ctx.Done():
		}
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("shut down %s: %w", srv.Addr, err)
		}
		return nil
	}
}
