package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
)

// TestPosterCatchesUpWithTheRate: with -rate, a request that falls behind
// (here the first answer takes half a second, with one client) is followed
// by the requests due meanwhile at once, so the run keeps the rate asked
// on average; the others go each at its time, none before. A ticker would
// have dropped the ticks of that half second.
func TestPosterCatchesUpWithTheRate(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	arrived, answer := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			close(arrived)
			<-answer
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	const n, rate = 60, 100 // a request due every 10 ms
	const every = 10 * time.Millisecond
	fake := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	p := &poster{client: srv.Client(), api: srv.URL, led: newLedger("pace", n), typ: "load.test", n: n, batch: 1, rate: rate, clock: fake}
	done := make(chan posting, 1)
	go func() { done <- p.run(ctx, 1) }()

	<-arrived
	fake.Advance(500 * time.Millisecond) // the first answer takes half a second
	close(answer)
	// waiting returns how many requests were made once the poster waits
	// for the next one's time.
	waiting := func() int64 {
		t.Helper()
		if err := fake.BlockUntilWaiting(ctx, 1); err != nil {
			t.Fatalf("the poster does not wait for the next request's time: %v", err)
		}
		return calls.Load()
	}
	if got := waiting(); got != 51 {
		t.Fatalf("%d requests made by 500 ms, want the 51 due by then", got)
	}
	for k := int64(51); k < n; k++ {
		if got := waiting(); got != k {
			t.Fatalf("%d requests made by %v, want %d: a request went before it was due", got, time.Duration(k-1)*every, k)
		}
		fake.Advance(every)
	}
	got := <-done
	if len(got.latency) != n || got.stopped {
		t.Fatalf("made %d of %d requests (stopped %v)", len(got.latency), n, got.stopped)
	}
}
