package resilience_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch-webhooks/dispatch/libs/resilience"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// BenchmarkAdmitBatch compares deciding 64 admissions (8 destinations, 8
// each, limits never reached) one Admit at a time with one AdmitBatch, and
// ending them one Done at a time with one FinishBatch. Each op is 64
// admissions or 64 ends; the other half of the cycle is not timed.
func BenchmarkAdmitBatch(b *testing.B) {
	const n = 64
	rdb, prefix := testkit.Redis(b)
	g := resilience.New(rdb, resilience.Config{Prefix: prefix, Registerer: prometheus.NewRegistry()})
	ctx := context.Background()
	huge := resilience.Limits{RatePerSecond: 1 << 30, MaxConcurrency: 1 << 30}
	batch := make([]resilience.AdmitRequest, n)
	for i := range batch {
		batch[i] = resilience.AdmitRequest{Target: tgt(fmt.Sprintf("d%d", i%8)), Limits: huge, Timeout: time.Second}
	}
	one := func() []resilience.Admission {
		out := make([]resilience.Admission, n)
		for i, r := range batch {
			out[i] = g.Admit(ctx, r.Target, r.Limits, r.Timeout)
		}
		return out
	}
	many := func() []resilience.Admission { return g.AdmitBatch(ctx, batch) }
	ends := func(b *testing.B, as []resilience.Admission) []resilience.Finished {
		fs := make([]resilience.Finished, len(as))
		for i, a := range as {
			if !a.Allowed {
				b.Fatalf("admission %d refused: %s", i, a.Reason)
			}
			fs[i] = resilience.Finished{Admission: a, Report: true, Success: true}
		}
		return fs
	}
	g.FinishBatch(ctx, ends(b, many())) // the scripts are cached before timing

	for _, bm := range []struct {
		name  string
		admit func() []resilience.Admission
	}{{"64xAdmit", one}, {"AdmitBatch64", many}} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				as := bm.admit()
				b.StopTimer()
				g.FinishBatch(ctx, ends(b, as))
				b.StartTimer()
			}
		})
	}
	for _, bm := range []struct {
		name   string
		finish func([]resilience.Finished)
	}{
		{"64xDone", func(fs []resilience.Finished) {
			for _, f := range fs {
				g.Done(ctx, f.Admission, f.Success)
			}
		}},
		{"FinishBatch64", func(fs []resilience.Finished) { g.FinishBatch(ctx, fs) }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				fs := ends(b, many())
				b.StartTimer()
				bm.finish(fs)
			}
		})
	}
}
