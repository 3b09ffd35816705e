package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestPosterCatchesUpWithTheRate: with -rate, a request that falls behind
// (here the first answer takes half a second, with one client) is followed
// by the requests due meanwhile at once, so the run keeps the rate asked
// on average. A ticker would have dropped the ticks of that half second and
// taken about 1.1 s in all.
func TestPosterCatchesUpWithTheRate(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			time.Sleep(500 * time.Millisecond)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)

	const n, rate = 60, 100 // the last request is due 590 ms after the first
	p := &poster{client: srv.Client(), api: srv.URL, led: newLedger("pace", n), typ: "load.test", n: n, batch: 1, rate: rate}
	got := p.run(context.Background(), 1)
	if len(got.latency) != n || got.stopped {
		t.Fatalf("made %d of %d requests (stopped %v)", len(got.latency), n, got.stopped)
	}
	if got.took < 590*time.Millisecond {
		t.Fatalf("took %s: requests went out before they were due", got.took)
	}
	if got.took > 850*time.Millisecond {
		t.Fatalf("took %s: the requests due during the slow answer were not caught up", got.took)
	}
}
