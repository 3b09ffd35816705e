package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	t.Parallel()
	begin := snapshot{at: 2 * time.Second}
	tests := []struct {
		name      string
		prev, cur snapshot
		recent    []time.Duration
		want      string
	}{
		{
			"posting and delivering",
			snapshot{at: 13 * time.Second, posted: 8800, failed: 1, delivered: 6392},
			snapshot{at: 14 * time.Second, posted: 9600, failed: 1, delivered: 7012},
			[]time.Duration{ms(900), ms(1930), ms(1200)},
			"[  12s] posted 9600 (1 failed), delivered 7012 | last 1.0s: 800 posted/s, 620 delivered/s, p99 1.93 s",
		},
		{
			"nothing delivered in the last second",
			snapshot{at: 3 * time.Second, posted: 100},
			snapshot{at: 3500 * time.Millisecond, posted: 200},
			nil,
			"[   2s] posted 200 (0 failed), delivered 0 | last 0.5s: 200 posted/s, 0 delivered/s, p99 -",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := progressLine(begin, tt.prev, tt.cur, newLatencies(tt.recent)); got != tt.want {
				t.Errorf("progressLine =\n%q, want\n%q", got, tt.want)
			}
		})
	}
}

func TestStartProgressWritesLinesUntilCancelled(t *testing.T) {
	t.Parallel()
	led := newLedger("run", 1)
	var b strings.Builder
	ctx, cancel := context.WithCancel(context.Background())
	lines := make(chan struct{}, 2)
	w := &syncWriter{w: &b, wrote: lines}
	wg := startProgress(ctx, w, led, time.Millisecond)
	<-lines
	<-lines
	cancel()
	wg.Wait()
	w.mu.Lock()
	out := b.String()
	w.mu.Unlock()
	if n := strings.Count(out, "\n"); n < 2 {
		t.Errorf("%d progress lines, want at least the two waited for:\n%s", n, out)
	}
	if !strings.HasPrefix(out, "[") || !strings.Contains(out, "posted 0 (0 failed), delivered 0") {
		t.Errorf("unexpected progress:\n%s", out)
	}
}
