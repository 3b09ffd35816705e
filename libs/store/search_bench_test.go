package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// searchBenchEvents is how many events BenchmarkSearch1M stores.
const searchBenchEvents = 1_000_000

// seedSearch stores events events spread evenly over the 7 days up to now,
// in 10 common types and one rare one (audit.export, 1 in 5,000), and
// their deliveries: none for 1 event in 100, otherwise two of the
// subscriptions sub_00..sub_17 and, for 1 event in 1,000, sub_19 too
// (sub_18 has none). The last 1,000 events' deliveries are pending; of the
// others 0.5% are retrying, 2% failed and the rest delivered. Ids, types and
// statuses follow from the event's number, so every run stores the same data.
func seedSearch(events int64) []testkit.Statement {
	return []testkit.Statement{{SQL: `INSERT INTO subscriptions (id, url, event_types, secret)
	 SELECT format('sub_%s', lpad(i::text, 2, '0')), 'https://example.com/' || i, ARRAY['*'], 'whsec_x'
	 FROM generate_series(0, 19) i`},
		{SQL: `INSERT INTO events (id, type, source, data, received_at)
	 SELECT format('evt_%s', lpad(i::text, 7, '0')),
	        CASE WHEN i % 5000 = 0 THEN 'audit.export'
	             ELSE (ARRAY['order.created','order.updated','order.paid','order.refunded','invoice.created',
	                         'invoice.paid','user.signup','user.deleted','shipment.sent','shipment.delivered'])[1 + (i * 7919) % 10] END,
	        'seed', '{"n": 1}', now() - ($1 - 1 - i) * interval '7 days' / $1
	 FROM generate_series(0::bigint, $1 - 1) i`, Args: []any{events}},
		{SQL: `INSERT INTO deliveries (event_id, subscription_id, status, attempts, next_attempt_at, last_status_code, created_at, updated_at)
	 SELECT e.id, format('sub_%s', lpad(v.s::text, 2, '0')), x.st,
	        CASE x.st WHEN 'pending' THEN 0 WHEN 'delivered' THEN 1 ELSE 3 END,
	        CASE x.st WHEN 'pending' THEN e.received_at WHEN 'retrying' THEN e.received_at + interval '1 hour' END,
	        CASE x.st WHEN 'delivered' THEN 204 WHEN 'pending' THEN NULL ELSE 500 END,
	        e.received_at, e.received_at + interval '2 seconds'
	 FROM events e,
	      LATERAL (SELECT substr(e.id, 5)::bigint AS i) n,
	      LATERAL (VALUES (n.i % 18), ((n.i + 9) % 18), (CASE WHEN n.i % 1000 = 7 THEN 19 END)) v(s),
	      LATERAL (SELECT CASE WHEN n.i > $1 - 1000 THEN 'pending'
	                           WHEN (n.i * 7 + v.s) % 1000 < 5 THEN 'retrying'
	                           WHEN (n.i * 7 + v.s) % 1000 < 25 THEN 'failed'
	                           ELSE 'delivered' END AS st) x
	 WHERE v.s IS NOT NULL AND (n.i * 31) % 100 <> 0`, Args: []any{events}},
	}
}

// BenchmarkSearch1M times every listing and stats query (for every tenant
// and for one) against 1,000,000 stored events (about 2,000,000
// deliveries), each iteration with other filter values and another page,
// and reports the p50 and p99 latency.
// Seeding takes about a minute; run it on its own:
//
//	cd libs/store && go test -run '^$' -bench Search1M -benchtime 100x .
func BenchmarkSearch1M(b *testing.B) {
	db := testkit.Postgres(b)
	ctx := context.Background()
	testkit.Seed(b, db.Pool, seedSearch(searchBenchEvents)...)

	st := store.New(db.Pool)
	// As the retry scheduler would have by now: every closed minute of the
	// week rolled up for GET /stats.
	start := time.Now()
	for {
		n, err := st.RollUpActivity(ctx, 1440)
		if err != nil {
			b.Fatalf("roll up: %v", err)
		}
		if n < 1440 {
			break
		}
	}
	b.Logf("rolled up a week of minutes in %s", time.Since(start).Round(time.Millisecond))
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	// somewhere returns a random page start within the stored week.
	somewhere := func() *store.Position {
		return &store.Position{Time: now.Add(-time.Duration(rng.Int64N(int64(7 * 24 * time.Hour)))), ID: "evt_9"}
	}
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	sub := func() string { return fmt.Sprintf("sub_%02d", rng.IntN(20)) }
	types := []string{"order.created", "order.paid", "invoice.paid", "user.signup", "shipment.sent", "audit.export"}
	patterns := []string{"order.*", "invoice.*", "user.*", "shipment.*", "audit.*"}
	eventStatuses := []string{"unmatched", "pending", "retrying", "failed", "delivered"}
	deliveryStatuses := []string{"pending", "delivered", "retrying", "failed"}
	events := func(f store.EventFilter) error {
		f.Limit = 51 // a page of 50 and one more to know whether another page follows
		_, err := st.ListEvents(ctx, store.Unscoped, f)
		return err
	}
	deliveries := func(f store.DeliveryFilter) error {
		f.Limit = 51
		_, err := st.ListDeliveries(ctx, store.Unscoped, f)
		return err
	}
	stats := func(scope store.Scope, window time.Duration) func() error {
		return func() error { _, err := st.Stats(ctx, scope, window); return err }
	}
	// Every seeded event and subscription is the default tenant's: its
	// figures are the whole deployment's, counted through the tenant's
	// rows and conditions, the most a tenant's stats can cost.
	tenant := store.TenantScope(domain.DefaultTenant)
	cases := []struct {
		name string
		run  func() error
	}{
		{"events/first-page", func() error { return events(store.EventFilter{}) }},
		{"events/any-page", func() error { return events(store.EventFilter{After: somewhere()}) }},
		{"events/type", func() error { return events(store.EventFilter{Type: pick(types...), After: somewhere()}) }},
		{"events/pattern", func() error { return events(store.EventFilter{Type: pick(patterns...), After: somewhere()}) }},
		{"events/status", func() error {
			return events(store.EventFilter{Status: domain.EventStatus(pick(eventStatuses...)), After: somewhere()})
		}},
		{"events/subscription", func() error { return events(store.EventFilter{SubscriptionID: sub(), After: somewhere()}) }},
		{"events/hour", func() error {
			p := somewhere()
			return events(store.EventFilter{Since: p.Time.Add(-time.Hour), Until: p.Time})
		}},
		{"events/combined", func() error {
			return events(store.EventFilter{Type: pick(patterns...), Status: domain.EventStatus(pick(eventStatuses...)), SubscriptionID: sub(), After: somewhere()})
		}},
		{"deliveries/any-page", func() error { return deliveries(store.DeliveryFilter{SubscriptionID: sub(), After: somewhere()}) }},
		{"deliveries/status", func() error {
			return deliveries(store.DeliveryFilter{SubscriptionID: sub(), Status: domain.DeliveryStatus(pick(deliveryStatuses...)), After: somewhere()})
		}},
		{"deliveries/hour", func() error {
			p := somewhere()
			return deliveries(store.DeliveryFilter{SubscriptionID: sub(), Since: p.Time.Add(-time.Hour), Until: p.Time})
		}},
		{"stats/1h", stats(store.Unscoped, time.Hour)},
		{"stats/24h", stats(store.Unscoped, 24*time.Hour)},
		{"stats/7d", stats(store.Unscoped, 7*24*time.Hour)},
		{"stats/tenant/1h", stats(tenant, time.Hour)},
		{"stats/tenant/24h", stats(tenant, 24*time.Hour)},
		{"stats/tenant/7d", stats(tenant, 7*24*time.Hour)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			took := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(t0))
			}
			slices.Sort(took)
			at := func(q float64) float64 {
				return float64(took[min(len(took)-1, int(q*float64(len(took))))].Microseconds()) / 1000
			}
			b.ReportMetric(at(0.50), "p50-ms")
			b.ReportMetric(at(0.99), "p99-ms")
		})
	}
}
