package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// snapshot is the ledger's counters at one moment.
type snapshot struct {
	at                        time.Duration // since the ledger's start
	posted, failed, delivered int64         // delivered: events delivered at least once
}

func (l *ledger) snapshot() snapshot {
	return snapshot{at: time.Since(l.start), posted: l.posted.Load(), failed: l.failed.Load(), delivered: l.distinct.Load()}
}

// startProgress writes a progress line to w every interval until ctx ends;
// Wait on the result before writing anything else to w.
func startProgress(ctx context.Context, w io.Writer, led *ledger, every time.Duration) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		begin := led.snapshot()
		prev := begin
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cur := led.snapshot()
			fmt.Fprintln(w, progressLine(begin, prev, cur, newLatencies(led.takeRecent())))
			prev = cur
		}
	})
	return &wg
}

// progressLine describes the run at cur: totals since begin, and the rates
// and latency since prev, e.g.
//
//	[  12s] posted 9600 (0 failed), delivered 7012 | last 1.0s: 800 posted/s, 620 delivered/s, p99 1.93 s
func progressLine(begin, prev, cur snapshot, recent latencies) string {
	span := cur.at - prev.at
	p99 := "-"
	if len(recent) > 0 {
		p99 = formatDuration(recent.pct(99))
	}
	return fmt.Sprintf("[%4.0fs] posted %d (%d failed), delivered %d | last %.1fs: %s posted/s, %s delivered/s, p99 %s",
		(cur.at - begin.at).Seconds(), cur.posted, cur.failed, cur.delivered,
		span.Seconds(), rate(int(cur.posted-prev.posted), span), rate(int(cur.delivered-prev.delivered), span), p99)
}
