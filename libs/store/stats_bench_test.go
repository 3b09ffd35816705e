package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// seedBusyMinuteSQL stores, in the minute that starts at $2, 60,000 events
// of $1 tenants (tenant_00000 and on, ten subscriptions each) and a
// delivery of each to one of its tenant's subscriptions, settled in that
// minute: 95 % delivered, 4 % retrying, 1 % failed. About 1,000 events and
// 1,000 deliveries a second; the roll-up was seen taking 1.6 s on a minute
// of twice as many deliveries (docs/PERFORMANCE.md).
var seedBusyMinuteSQL = []string{
	`INSERT INTO tenants (id) SELECT format('tenant_%s', lpad(i::text, 5, '0')) FROM generate_series(0, $1 - 1) i`,
	`INSERT INTO subscriptions (id, tenant_id, url, event_types, secret)
	 SELECT format('sub_%s_%s', lpad(i::text, 5, '0'), j), format('tenant_%s', lpad(i::text, 5, '0')),
	        'https://example.com/' || i, ARRAY['*'], 'whsec_x'
	 FROM generate_series(0, $1 - 1) i, generate_series(0, 9) j`,
	`INSERT INTO events (id, type, source, data, tenant_id, received_at)
	 SELECT format('evt_%s', lpad(i::text, 5, '0')), 'order.created', 'seed', '{"n": 1}',
	        format('tenant_%s', lpad((i % $1)::text, 5, '0')), $2::timestamptz + i * interval '1 millisecond'
	 FROM generate_series(0, 59999) i`,
	`INSERT INTO deliveries (event_id, subscription_id, status, attempts, next_attempt_at, last_status_code, created_at, updated_at)
	 SELECT format('evt_%s', lpad(i::text, 5, '0')), format('sub_%s_%s', lpad((i % $1)::text, 5, '0'), (i / $1) % 10),
	        x.st, 1, CASE x.st WHEN 'retrying' THEN $2::timestamptz + interval '1 hour' END,
	        CASE x.st WHEN 'delivered' THEN 204 ELSE 500 END,
	        $2::timestamptz + i * interval '1 millisecond', $2::timestamptz + i * interval '1 millisecond'
	 FROM generate_series(0, 59999) i,
	      LATERAL (SELECT CASE WHEN i % 100 < 4 THEN 'retrying' WHEN i % 100 = 4 THEN 'failed' ELSE 'delivered' END AS st) x`,
}

// BenchmarkRollUpBusyMinute times the activity roll-up (ADR 18) of one
// busy minute (seedBusyMinuteSQL) three minutes ago, with 100 tenants and
// with 10,000 (100,000 subscriptions), rolled up again in each iteration
// after its rows in activity_minutes are deleted, and reports the median
// and the slowest iteration. "fresh" is as the roll-up meets a minute 30 to
// 90 s after it closed: the rows are analyzed but not vacuumed yet, so
// index-only scans still read the table; "vacuumed" is after a vacuum.
// Run it on its own:
//
//	cd libs/store && go test -run '^$' -bench RollUpBusyMinute -benchtime 20x .
func BenchmarkRollUpBusyMinute(b *testing.B) {
	for _, tenants := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("tenants=%d", tenants), func(b *testing.B) { benchmarkRollUpBusyMinute(b, tenants) })
	}
}

func benchmarkRollUpBusyMinute(b *testing.B, tenants int) {
	db := testkit.Postgres(b)
	ctx := context.Background()
	// Autovacuum would otherwise mark the rows visible at a moment of its
	// choosing, between or during the runs.
	for _, table := range []string{"events", "deliveries", "activity_minutes", "tenant_activity_minutes"} {
		if _, err := db.Pool.Exec(ctx, `ALTER TABLE `+table+` SET (autovacuum_enabled = false)`); err != nil {
			b.Fatal(err)
		}
	}
	var minute time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT date_trunc('minute', now()) - interval '3 minutes'`).Scan(&minute); err != nil {
		b.Fatal(err)
	}
	for i, sql := range seedBusyMinuteSQL {
		args := []any{tenants}
		if i >= 2 {
			args = append(args, minute)
		}
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	st := store.New(db.Pool)
	// The week before, as the scheduler would have rolled it up; this also
	// reads the minute once, as the first reader of fresh rows sets their
	// hint bits.
	for {
		n, err := st.RollUpActivity(ctx, 720)
		if err != nil {
			b.Fatalf("roll up: %v", err)
		}
		if n < 720 {
			break
		}
	}
	rollUp := func(b *testing.B) {
		took := make([]time.Duration, 0, b.N)
		for b.Loop() {
			b.StopTimer()
			// Without the vacuum each iteration would find the dead
			// rows of all the earlier ones in the unique indexes.
			for _, table := range []string{"activity_minutes", "tenant_activity_minutes"} {
				if _, err := db.Pool.Exec(ctx, `DELETE FROM `+table+` WHERE minute >= $1`, minute); err != nil {
					b.Fatal(err)
				}
				if _, err := db.Pool.Exec(ctx, `VACUUM `+table); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			t0 := time.Now()
			if _, err := st.RollUpActivity(ctx, 720); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(t0))
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
	}
	b.Run("fresh", rollUp)
	if _, err := db.Pool.Exec(ctx, `VACUUM ANALYZE events, deliveries`); err != nil {
		b.Fatal(err)
	}
	b.Run("vacuumed", rollUp)
}
