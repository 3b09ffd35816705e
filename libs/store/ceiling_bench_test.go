package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// The storage ceiling: what one delivery must write at best, grouped as
// the services group their statements, with nothing else. Against it an
// end-to-end figure says how much of the database's capacity the services
// turn into deliveries, which means the same on any host (PERFORMANCE.md,
// "Storage ceiling").
const (
	// ceilingDeliveries is how many deliveries one iteration stores.
	ceilingDeliveries = 20_000
	// ceilingOutcomeGroup is the worker's group: up to 64 outcomes a
	// statement.
	ceilingOutcomeGroup = 64
	// ceilingStreams is how many streams run at once, each storing a
	// group and then settling what it stored: about as many statements
	// at once as a stack keeps open (the API's one ingest statement, the
	// worker's one claim and one outcome), plus one.
	ceilingStreams = 4
)

// ceilingIngestSQL stores a group of events, one delivery each, in one
// statement: the event and delivery rows written once.
const ceilingIngestSQL = `
WITH ev AS (
	INSERT INTO events (id, type, source, data)
	SELECT id, 'load.test', 'ceiling', data::jsonb FROM unnest($1::text[], $2::text[]) AS i(id, data)
	RETURNING id
)
INSERT INTO deliveries (event_id, subscription_id, next_attempt_at)
SELECT id, $3, now() FROM ev
RETURNING id`

// ceilingOutcomeSQL records a group of deliveries' one attempt each and
// their final state in one statement.
const ceilingOutcomeSQL = `
WITH a AS (
	INSERT INTO attempts (delivery_id, number, started_at, duration_ms, duration_us, status_code, instance)
	SELECT id, 1, now(), 5, 5000, 204, 'ceiling' FROM unnest($1::bigint[]) AS id
)
UPDATE deliveries SET status = 'delivered', attempts = 1, next_attempt_at = NULL, last_status_code = 204,
	enqueued_at = '-infinity', updated_at = now()
WHERE id = ANY($1::bigint[])`

// BenchmarkStorageCeiling stores deliveries with only the statements one
// delivery needs at best (ceilingIngestSQL, ceilingOutcomeSQL) on the
// project's schema and the server's settings, through pools set as the
// services set theirs (ingest with synchronous commit, outcomes without,
// ADR 25; both reading by key alone), in groups as the services make them at their
// largest: 64 single posts per ingest statement (the API's group commit,
// ADR 23) or a batch of 100 per statement, and 64 outcomes per statement
// (the worker's). It reports deliveries/s and the WAL each delivery
// wrote (pg_stat_wal, so run it on a database server doing nothing
// else):
//
//	go tool task ceiling
func BenchmarkStorageCeiling(b *testing.B) {
	for _, c := range []struct {
		name        string
		ingestGroup int
	}{{"singles", 64}, {"batches", 100}} {
		b.Run(c.name, func(b *testing.B) { benchmarkStorageCeiling(b, c.ingestGroup) })
	}
}

func benchmarkStorageCeiling(b *testing.B, ingestGroup int) {
	db := testkit.Postgres(b)
	ctx := context.Background()
	const sub = "sub_ceiling"
	if _, err := db.Pool.Exec(ctx, `INSERT INTO subscriptions (id, tenant_id, url, event_types, secret)
		VALUES ($1, 'default', 'https://example.com/hook', ARRAY['*'], 'whsec_x')`, sub); err != nil {
		b.Fatal(err)
	}
	ingest, err := store.Connect(ctx, db.URL, ceilingStreams, store.KeyedReads())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ingest.Close)
	outcomes, err := store.Connect(ctx, db.URL, ceilingStreams, store.AsynchronousCommit(), store.KeyedReads())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(outcomes.Close)
	// The payload loadgen posts.
	data := func(i int) string {
		return fmt.Sprintf(`{"i": %d, "pad": "0123456789abcdef0123456789abcdef"}`, i)
	}
	var (
		rate, walPer float64
		round        int
	)
	for b.Loop() {
		round++
		var next atomic.Int64
		walBefore := walBytes(b, db)
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, ceilingStreams)
		for range ceilingStreams {
			wg.Go(func() {
				var settled []int64
				for {
					first := int(next.Add(int64(ingestGroup))) - ingestGroup
					if first >= ceilingDeliveries {
						break
					}
					n := min(ingestGroup, ceilingDeliveries-first)
					ids, bodies := make([]string, n), make([]string, n)
					for k := range n {
						ids[k], bodies[k] = fmt.Sprintf("evt_%d_%d", round, first+k), data(first+k)
					}
					rows, err := ingest.Query(ctx, ceilingIngestSQL, ids, bodies, sub)
					if err != nil {
						errs <- err
						return
					}
					stored, err := pgx.CollectRows(rows, pgx.RowTo[int64])
					if err != nil {
						errs <- err
						return
					}
					settled = append(settled, stored...)
					for len(settled) >= ceilingOutcomeGroup {
						if _, err := outcomes.Exec(ctx, ceilingOutcomeSQL, settled[:ceilingOutcomeGroup]); err != nil {
							errs <- err
							return
						}
						settled = settled[ceilingOutcomeGroup:]
					}
				}
				if len(settled) > 0 {
					if _, err := outcomes.Exec(ctx, ceilingOutcomeSQL, settled); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		rate = ceilingDeliveries / elapsed.Seconds()
		walPer = float64(walBytes(b, db)-walBefore) / ceilingDeliveries
	}
	var delivered int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE status = 'delivered'`).Scan(&delivered); err != nil {
		b.Fatal(err)
	}
	if delivered != round*ceilingDeliveries {
		b.Fatalf("%d deliveries delivered, want %d", delivered, round*ceilingDeliveries)
	}
	b.ReportMetric(rate, "deliveries/s")
	b.ReportMetric(walPer, "WAL-bytes/delivery")
}

// walBytes is the WAL the server has written so far.
func walBytes(b *testing.B, db *testkit.Database) int64 {
	b.Helper()
	var n int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT wal_bytes::bigint FROM pg_stat_wal`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
