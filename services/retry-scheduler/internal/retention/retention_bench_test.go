package retention_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/retry-scheduler/internal/retention"
)

// pruneBenchEvents expired events of two deliveries with two attempts each:
// 1,000,000 attempts.
const pruneBenchEvents = 250_000

// seedPrune stores events events received between 60 and 31 days ago, each
// with deliveries to two of the 20 subscriptions and two attempts per
// delivery; 1 event in 100 keeps a retrying delivery, so the prune passes
// over it. Then 50,000 events of the last day, delivered, as the table's
// live part. Two subscriptions take every type, the others none, so an
// ingest creates two deliveries.
func seedPrune(events int64) []testkit.Statement {
	return []testkit.Statement{{SQL: `INSERT INTO subscriptions (id, url, event_types, secret)
	 SELECT format('sub_%s', lpad(i::text, 2, '0')), 'https://example.com/' || i,
	        CASE WHEN i < 2 THEN ARRAY['*'] ELSE ARRAY['never.*'] END, 'whsec_x'
	 FROM generate_series(0, 19) i`},
		{SQL: `INSERT INTO events (id, type, source, data, received_at)
	 SELECT format('old_%s', lpad(i::text, 7, '0')), 'order.created', 'seed', '{"n": 1}'::jsonb,
	        now() - interval '31 days' - ($1 - i) * interval '29 days' / $1
	 FROM generate_series(1::bigint, $1) i
	 UNION ALL
	 SELECT format('new_%s', lpad(i::text, 7, '0')), 'order.created', 'seed', '{"n": 1}'::jsonb,
	        now() - (50000 - i) * interval '1 day' / 50000
	 FROM generate_series(1::bigint, 50000) i`, Args: []any{events}},
		{SQL: `INSERT INTO deliveries (event_id, subscription_id, status, attempts, next_attempt_at, last_status_code, created_at, updated_at)
	 SELECT e.id, format('sub_%s', lpad(v.s::text, 2, '0')),
	        CASE WHEN v.s = 0 AND n.i % 100 = 0 AND e.id LIKE 'old%' THEN 'retrying' ELSE 'delivered' END, 2,
	        CASE WHEN v.s = 0 AND n.i % 100 = 0 AND e.id LIKE 'old%' THEN now() + interval '1 hour' END,
	        204, e.received_at, e.received_at + interval '2 seconds'
	 FROM events e,
	      LATERAL (SELECT substr(e.id, 5)::bigint AS i) n,
	      LATERAL (VALUES (n.i % 20), ((n.i + 7) % 20)) v(s)`},
		{SQL: `INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, response_body, instance)
	 SELECT d.id, k, d.created_at + k * interval '1 second', 25, CASE k WHEN 1 THEN 500 ELSE 204 END, 'ok', 'worker-1'
	 FROM deliveries d, generate_series(1, 2) k`},
	}
}

// BenchmarkPrune1M stores 1,000,000 expired attempts (250,000 events, 500,000
// deliveries) and 50,000 recent events, then measures ingest latency from
// four goroutines calling store.IngestEvent for 15 s without pruning, and
// again while a Pruner's pass deletes everything expired, reporting the p50
// and p99 of both, the prune's rate and its batches' durations. Seeding
// takes about a minute; run it on its own:
//
//	cd services/retry-scheduler && go test -run '^$' -bench Prune1M -benchtime 1x ./internal/retention/
func BenchmarkPrune1M(b *testing.B) {
	db := testkit.Postgres(b)
	ctx := context.Background()
	testkit.Seed(b, db.Pool, seedPrune(pruneBenchEvents)...)
	b.Logf("seeded %d expired events with 1,000,000 attempts", pruneBenchEvents)
	st := store.New(db.Pool)

	for b.Loop() {
		// The baseline is ingestion's real throughput over 15 real
		// seconds, to set beside the same while pruning runs.
		base := ingestWhile(ctx, b, st, "base", func() { time.Sleep(15 * time.Second) })
		b.Logf("without pruning: %s", base)

		batches := &timedStore{Store: st}
		p := retention.New(batches, retention.Config{Period: 30 * 24 * time.Hour, Registerer: prometheus.NewRegistry()})
		var (
			tot  retention.Totals
			err  error
			took time.Duration
		)
		during := ingestWhile(ctx, b, st, "prune", func() {
			t0 := time.Now()
			tot, err = p.Pass(ctx)
			took = time.Since(t0)
		})
		if err != nil {
			b.Fatalf("prune: %v", err)
		}
		b.Logf("during the prune: %s", during)
		slices.Sort(batches.took)
		q := func(f float64) time.Duration {
			return batches.took[min(len(batches.took)-1, int(f*float64(len(batches.took))))]
		}
		b.Logf("pruned %d events, %d deliveries, %d attempts (%d kept) in %s, %d batches: p50 %s, p99 %s, max %s",
			tot.Events, tot.Deliveries, tot.Attempts, tot.Examined-int(tot.Events), took.Round(time.Millisecond), tot.Batches,
			q(0.5).Round(time.Millisecond/10), q(0.99).Round(time.Millisecond/10), batches.took[len(batches.took)-1].Round(time.Millisecond/10))
		b.ReportMetric(ms(base.p99), "ingest-p99-ms")
		b.ReportMetric(ms(during.p99), "ingest-p99-pruning-ms")
		b.ReportMetric(float64(tot.Attempts)/took.Seconds(), "attempts-pruned/s")
		b.ReportMetric(ms(q(0.99)), "batch-p99-ms")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// timedStore times each batch.
type timedStore struct {
	*store.Store
	took []time.Duration
}

func (s *timedStore) PruneEvents(ctx context.Context, olderThan time.Duration, after *store.Position, limit int) (store.Pruned, error) {
	t0 := time.Now()
	p, err := s.Store.PruneEvents(ctx, olderThan, after, limit)
	s.took = append(s.took, time.Since(t0))
	return p, err
}

// latencies summarises the ingests of one run.
type latencies struct {
	n             int
	rate          float64
	p50, p99, max time.Duration
}

func (l latencies) String() string {
	return fmt.Sprintf("%d ingests, %.0f/s, p50 %s, p99 %s, max %s", l.n, l.rate,
		l.p50.Round(time.Millisecond/10), l.p99.Round(time.Millisecond/10), l.max.Round(time.Millisecond/10))
}

// ingestWhile ingests events from four goroutines for as long as work runs,
// and summarises their latencies.
func ingestWhile(ctx context.Context, b *testing.B, st *store.Store, prefix string, work func()) latencies {
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
		mu   sync.Mutex
		all  []time.Duration
		errs atomic.Int64
	)
	t0 := time.Now()
	for g := range 4 {
		wg.Go(func() {
			var mine []time.Duration
			for i := 0; !stop.Load(); i++ {
				e := domain.Event{ID: fmt.Sprintf("%s_%d_%d", prefix, g, i), Type: "order.created", Source: "bench", Data: []byte(`{"n": 1}`)}
				s := time.Now()
				if _, err := st.IngestEvent(ctx, e); err != nil {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(s))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	work()
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(t0)
	if n := errs.Load(); n > 0 {
		b.Fatalf("%d ingests failed", n)
	}
	slices.Sort(all)
	at := func(q float64) time.Duration { return all[min(len(all)-1, int(q*float64(len(all))))] }
	return latencies{n: len(all), rate: float64(len(all)) / elapsed.Seconds(), p50: at(0.5), p99: at(0.99), max: all[len(all)-1]}
}
