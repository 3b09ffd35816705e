package store_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/seal"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// lapsed is a lease margin that puts a claim's lease a minute in the past
// on the server's clock: the claim has lapsed as soon as it is made, which
// is what a worker that died long ago leaves, without waiting for it.
const lapsed = -time.Minute

func setup(t *testing.T) (*store.Store, *testkit.Database) {
	t.Helper()
	t.Parallel()
	db := testkit.Postgres(t)
	return store.New(db.Pool), db
}

// deliveriesOf returns every delivery of an event (the tests' events
// have a few), by subscription id.
func deliveriesOf(t *testing.T, st *store.Store, eventID string) []domain.Delivery {
	t.Helper()
	ds, err := st.ListEventDeliveries(context.Background(), store.Unscoped, store.EventDeliveryFilter{EventID: eventID, Limit: 250})
	require.NoError(t, err)
	return ds
}

// attemptsOf returns every attempt of an event (the tests' events have a
// few), oldest first.
func attemptsOf(t *testing.T, st *store.Store, eventID string) []domain.Attempt {
	t.Helper()
	as, err := st.ListAttempts(context.Background(), store.Unscoped, store.AttemptFilter{EventID: eventID, Limit: 250})
	require.NoError(t, err)
	return as
}

func createSub(t *testing.T, st *store.Store, id string, patterns ...string) domain.Subscription {
	t.Helper()
	sub, err := st.CreateSubscription(context.Background(), domain.Subscription{
		ID: id, URL: "http://127.0.0.1:1/" + id, EventTypes: patterns, Secret: signing.GenerateSecret(),
	})
	require.NoError(t, err)
	return sub
}

func event(id, typ string) domain.Event {
	return domain.Event{ID: id, Type: typ, Source: "test", Data: []byte(`{"n": 1}`)}
}

func TestSubscriptionCRUD(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	created := createSub(t, st, "sub_a", "order.*", "invoice.paid")
	require.Equal(t, domain.SubscriptionActive, created.State)
	require.False(t, created.CreatedAt.IsZero())

	_, err := st.CreateSubscription(ctx, domain.Subscription{ID: "sub_a", URL: "http://x", EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
	require.ErrorIs(t, err, domain.ErrConflict)

	got, err := st.GetSubscription(ctx, store.Unscoped, "sub_a")
	require.NoError(t, err)
	require.Equal(t, []string{"order.*", "invoice.paid"}, got.EventTypes)
	require.Empty(t, got.Secret, "reads never carry the secret")

	_, err = st.GetSubscription(ctx, store.Unscoped, "nope")
	require.ErrorIs(t, err, domain.ErrNotFound)

	for _, id := range []string{"sub_c", "sub_b", "sub_d"} {
		createSub(t, st, id, "*")
	}
	page1, err := st.ListSubscriptions(ctx, store.Unscoped, "", 3)
	require.NoError(t, err)
	require.Equal(t, []string{"sub_a", "sub_b", "sub_c"}, ids(page1))
	page2, err := st.ListSubscriptions(ctx, store.Unscoped, page1[2].ID, 3)
	require.NoError(t, err)
	require.Equal(t, []string{"sub_d"}, ids(page2))

	deleted, err := st.DeleteSubscription(ctx, store.Unscoped, "sub_b")
	require.NoError(t, err)
	require.Equal(t, page1[1], deleted, "the deleted subscription as it was")
	_, err = st.DeleteSubscription(ctx, store.Unscoped, "sub_b")
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = st.GetSubscription(ctx, store.Unscoped, "sub_b")
	require.ErrorIs(t, err, domain.ErrNotFound)
	existing, err := st.ExistingSubscriptions(ctx, []string{"sub_a", "sub_b", "sub_x", "sub_d"})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"sub_a", "sub_d"}, existing)
}

func ids(subs []domain.Subscription) []string {
	out := make([]string, len(subs))
	for i, s := range subs {
		out[i] = s.ID
	}
	return out
}

func TestIngestFansOutToMatchingActiveSubscriptions(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "all", "*")
	createSub(t, st, "orders", "order.*")
	createSub(t, st, "exact", "order.created")
	createSub(t, st, "other", "invoice.*", "order")
	createSub(t, st, "paused", "*")
	_, err := db.Pool.Exec(ctx, `UPDATE subscriptions SET state = 'paused' WHERE id = 'paused'`)
	require.NoError(t, err)

	res, err := st.IngestEvent(ctx, event("evt_1", "order.created"))
	require.NoError(t, err)
	require.True(t, res.Created)
	require.False(t, res.Event.ReceivedAt.IsZero())
	var subs []string
	for _, d := range res.Deliveries {
		subs = append(subs, d.SubscriptionID)
	}
	require.ElementsMatch(t, []string{"all", "orders", "exact"}, subs)

	ev, status, err := st.GetEvent(ctx, store.Unscoped, "evt_1")
	require.NoError(t, err)
	require.Equal(t, "order.created", ev.Type)
	require.JSONEq(t, `{"n": 1}`, string(ev.Data))
	require.Equal(t, domain.EventPending, status)
	deliveries := deliveriesOf(t, st, "evt_1")
	require.Len(t, deliveries, 3)
	for _, d := range deliveries {
		require.Equal(t, domain.DeliveryPending, d.Status)
	}

	res, err = st.IngestEvent(ctx, event("evt_2", "user.signed_up"))
	require.NoError(t, err)
	require.True(t, res.Created)
	require.Len(t, res.Deliveries, 1)
	require.Equal(t, "all", res.Deliveries[0].SubscriptionID)
}

func TestIngestIsIdempotent(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "all", "*")

	first, err := st.IngestEvent(ctx, event("evt_dup", "a.b"))
	require.NoError(t, err)
	require.True(t, first.Created)

	again := event("evt_dup", "c.d")
	second, err := st.IngestEvent(ctx, again)
	require.NoError(t, err)
	require.False(t, second.Created)
	require.Empty(t, second.Deliveries)
	require.Equal(t, "a.b", second.Event.Type, "the stored event is returned, not the new body")
	require.True(t, first.Event.ReceivedAt.Equal(second.Event.ReceivedAt))

	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM deliveries`).Scan(&n))
	require.Equal(t, 1, n)
}

func TestConcurrentDuplicateIngestCreatesOneEvent(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "all", "*")
	createSub(t, st, "orders", "order.*")

	const posts = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
	)
	for range posts {
		wg.Go(func() {
			res, err := st.IngestEvent(ctx, event("evt_race", "order.created"))
			if err != nil {
				t.Error(err)
				return
			}
			if res.Created {
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Equal(t, 1, created)
	var events, deliveries int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries)`).Scan(&events, &deliveries))
	require.Equal(t, 1, events)
	require.Equal(t, 2, deliveries)
}

func TestIngestEventsReportsEachEvent(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "all", "*")
	createSub(t, st, "orders", "order.*")
	createSub(t, st, "paused", "*")
	_, err := db.Pool.Exec(ctx, `UPDATE subscriptions SET state = 'paused' WHERE id = 'paused'`)
	require.NoError(t, err)
	known, err := st.IngestEvent(ctx, event("evt_known", "a.b"))
	require.NoError(t, err)

	res, err := st.IngestEvents(ctx, []domain.Event{
		event("evt_b", "order.created"),
		event("evt_known", "order.created"),
		event("evt_a", "user.signed_up"),
		event("evt_b", "other.type"), // the first occurrence wins
		{ID: "evt_c", Type: "order.item.added", Data: []byte(`{"x":[1,{"y":null}]}`)},
	})
	require.NoError(t, err)
	require.Equal(t, []bool{true, false, true, false, true}, res.Created)
	got := map[string][]string{}
	for _, d := range res.Deliveries {
		got[d.EventID] = append(got[d.EventID], d.SubscriptionID)
	}
	require.Len(t, got, 3)
	require.ElementsMatch(t, []string{"all", "orders"}, got["evt_b"])
	require.ElementsMatch(t, []string{"all"}, got["evt_a"])
	require.ElementsMatch(t, []string{"all", "orders"}, got["evt_c"])

	b, _, err := st.GetEvent(ctx, store.Unscoped, "evt_b")
	require.NoError(t, err)
	require.Equal(t, "order.created", b.Type)
	require.Equal(t, "test", b.Source)
	require.Len(t, deliveriesOf(t, st, "evt_b"), 2)
	require.True(t, res.ReceivedAt[0].Equal(b.ReceivedAt), "the stored event's received_at is reported")
	require.True(t, res.ReceivedAt[1].IsZero(), "an event not stored has no received_at")
	c, _, err := st.GetEvent(ctx, store.Unscoped, "evt_c")
	require.NoError(t, err)
	require.JSONEq(t, `{"x":[1,{"y":null}]}`, string(c.Data))
	require.Empty(t, c.Source)
	k, _, err := st.GetEvent(ctx, store.Unscoped, "evt_known")
	require.NoError(t, err)
	require.Equal(t, "a.b", k.Type, "a known id is left as it was")
	require.True(t, known.Event.ReceivedAt.Equal(k.ReceivedAt))
	require.Len(t, deliveriesOf(t, st, "evt_known"), 1)

	var events, mismatched int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM events),
		(SELECT count(*) FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.created_at <> e.received_at)`).Scan(&events, &mismatched))
	require.Equal(t, 4, events)
	require.Zero(t, mismatched, "deliveries are created with their events, so their created_at is the event's received_at")

	res, err = st.IngestEvents(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, res.Created)
}

// TestConcurrentBatchesStoreEachEventOnce posts overlapping batches, each in
// another order, at once: every id is created exactly once, and batches
// that share ids wait for each other rather than deadlock.
func TestConcurrentBatchesStoreEachEventOnce(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "all", "*")
	const batches, size = 8, 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created = map[string]int{}
	)
	for b := range batches {
		wg.Go(func() {
			events := make([]domain.Event, size)
			for i := range size {
				events[i] = event(fmt.Sprintf("evt_%03d", (i*(b+1)+b)%size), "x")
			}
			res, err := st.IngestEvents(ctx, events)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for i, c := range res.Created {
				if c {
					created[events[i].ID]++
				}
			}
		})
	}
	wg.Wait()
	require.Len(t, created, size)
	for id, n := range created {
		require.Equal(t, 1, n, id)
	}
	var events, deliveries int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries)`).Scan(&events, &deliveries))
	require.Equal(t, size, events)
	require.Equal(t, size, deliveries)
}

func TestGetEventUnknown(t *testing.T) {
	st, _ := setup(t)
	_, _, err := st.GetEvent(context.Background(), store.Unscoped, "missing")
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = st.ListAttempts(context.Background(), store.Unscoped, store.AttemptFilter{EventID: "missing", Limit: 1})
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = st.ListEventDeliveries(context.Background(), store.Unscoped, store.EventDeliveryFilter{EventID: "missing", Limit: 1})
	require.ErrorIs(t, err, domain.ErrNotFound)
}

// seedAttempts gives event e (deliveries to a, b and c) 120 attempts to a
// and 45 to b, started in threes at the same microsecond so that ids
// break ties, and event other 10, all straight in SQL.
func seedAttempts(t *testing.T, st *store.Store, db *testkit.Database) {
	t.Helper()
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		createSub(t, st, id, "*")
	}
	for _, id := range []string{"e", "other"} {
		_, err := st.IngestEvent(ctx, event(id, "x"))
		require.NoError(t, err)
	}
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, instance)
		SELECT d.id, n, timestamptz '2026-03-01 12:00:00Z' + (n / 3) * interval '1 second', n, 500, 'w' || n
		FROM deliveries d, generate_series(1, 120) n
		WHERE (d.event_id = 'e' AND (d.subscription_id = 'a' OR d.subscription_id = 'b' AND n <= 45))
		   OR (d.event_id = 'other' AND d.subscription_id = 'a' AND n <= 10)`)
	require.NoError(t, err)
}

// TestListAttemptsPages walks an event's attempts in pages of every size,
// in both orders, for the whole event and for each delivery: each attempt
// comes exactly once, in the order of (started_at, id).
func TestListAttemptsPages(t *testing.T) {
	st, db := setup(t)
	seedAttempts(t, st, db)
	ctx := context.Background()
	for _, sub := range []string{"", "a", "b", "c", "nosuch"} {
		for _, newest := range []bool{false, true} {
			order := "a.started_at, a.id"
			if newest {
				order = "a.started_at DESC, a.id DESC"
			}
			rows, err := db.Pool.Query(ctx, `SELECT a.id FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
				WHERE d.event_id = 'e' AND ($1 = '' OR d.subscription_id = $1) ORDER BY `+order, sub)
			require.NoError(t, err)
			want, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			require.NoError(t, err)
			for _, limit := range []int{1, 7, 250} {
				t.Run(fmt.Sprintf("sub=%s newest=%v limit=%d", sub, newest, limit), func(t *testing.T) {
					f := store.AttemptFilter{EventID: "e", SubscriptionID: sub, Newest: newest, Limit: limit}
					got := []int64{}
					for range 1000 {
						page, err := st.ListAttempts(ctx, store.Unscoped, f)
						require.NoError(t, err)
						require.LessOrEqual(t, len(page), limit)
						for _, a := range page {
							require.Equal(t, "e", a.EventID)
							if sub != "" {
								require.Equal(t, sub, a.SubscriptionID)
							}
							got = append(got, a.ID)
						}
						if len(page) < limit {
							break
						}
						p := store.AttemptPositionOf(page[len(page)-1])
						f.After = &p
					}
					if want == nil {
						want = []int64{}
					}
					require.Equal(t, want, got)
				})
			}
		}
	}
	first, err := st.ListAttempts(ctx, store.Unscoped, store.AttemptFilter{EventID: "e", SubscriptionID: "b", Newest: true, Limit: 1})
	require.NoError(t, err)
	require.Equal(t, 45, first[0].Number)
	require.Equal(t, 500, *first[0].StatusCode)
	require.Equal(t, 45*time.Millisecond, first[0].Duration)
	require.Equal(t, "w45", first[0].Instance)
}

func TestClaimAndRecordLifecycle(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	sub := createSub(t, st, "s1", "*")
	res, err := st.IngestEvent(ctx, event("evt_l", "x.y"))
	require.NoError(t, err)
	dID := res.Deliveries[0].ID

	require.Empty(t, attemptsOf(t, st, "evt_l"))

	job, err := st.ClaimDelivery(ctx, dID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, 1, job.Attempt)
	require.Equal(t, sub.URL, job.URL)
	require.Equal(t, []string{sub.Secret}, job.Secrets)
	require.Equal(t, "x.y", job.Event.Type)

	_, err = st.ClaimDelivery(ctx, dID, time.Minute, 0)
	require.ErrorIs(t, err, domain.ErrNotClaimable, "a live claim excludes others")

	code := 500
	started := time.Now().Add(-time.Second)
	require.NoError(t, st.RecordAttempt(ctx, store.Retrying(
		domain.Attempt{DeliveryID: dID, Number: 1, StartedAt: started, Duration: 120 * time.Millisecond,
			StatusCode: &code, ErrorClass: domain.ErrorHTTPStatus, Error: "HTTP 500", ResponseBody: "boom", Instance: "w1"},
		time.Now().Add(time.Hour))))
	ds := deliveriesOf(t, st, "evt_l")
	require.Equal(t, domain.DeliveryRetrying, ds[0].Status)
	require.Equal(t, 1, ds[0].Attempts)
	require.Equal(t, 500, *ds[0].LastStatusCode)
	require.NotNil(t, ds[0].NextAttemptAt)

	_, err = st.ClaimDelivery(ctx, dID, time.Minute, 0)
	require.ErrorIs(t, err, domain.ErrNotClaimable, "a retry that is not due is not claimable")

	_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET next_attempt_at = now() - interval '1 second' WHERE id = $1`, dID)
	require.NoError(t, err)
	job, err = st.ClaimDelivery(ctx, dID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, 2, job.Attempt)

	ok := 204
	require.NoError(t, st.RecordAttempt(ctx, store.Delivered(
		domain.Attempt{DeliveryID: dID, Number: 2, StartedAt: time.Now(), Duration: 312 * time.Microsecond, StatusCode: &ok, Instance: "w2"})))
	_, err = st.ClaimDelivery(ctx, dID, time.Minute, 0)
	require.ErrorIs(t, err, domain.ErrNotClaimable, "a delivered delivery is final")

	attempts := attemptsOf(t, st, "evt_l")
	require.Len(t, attempts, 2)
	require.Equal(t, 1, attempts[0].Number)
	require.Equal(t, domain.ErrorHTTPStatus, attempts[0].ErrorClass)
	require.Equal(t, "boom", attempts[0].ResponseBody)
	require.Equal(t, 120*time.Millisecond, attempts[0].Duration)
	require.Equal(t, "w1", attempts[0].Instance)
	require.Equal(t, "s1", attempts[0].SubscriptionID)
	require.True(t, attempts[1].Succeeded())
	require.Equal(t, 312*time.Microsecond, attempts[1].Duration, "an attempt under a millisecond keeps its microseconds")

	// An attempt recorded before durations were kept in microseconds has
	// only its milliseconds.
	_, err = db.Pool.Exec(ctx, `UPDATE attempts SET duration_us = NULL WHERE number = 1`)
	require.NoError(t, err)
	require.Equal(t, 120*time.Millisecond, attemptsOf(t, st, "evt_l")[0].Duration)
}

func TestLapsedClaimIsTakenOver(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	createSub(t, st, "s1", "*")
	res, err := st.IngestEvent(ctx, event("evt_lapse", "x"))
	require.NoError(t, err)
	dID := res.Deliveries[0].ID

	first, err := st.ClaimDelivery(ctx, dID, time.Millisecond, lapsed)
	require.NoError(t, err)
	second, err := st.ClaimDelivery(ctx, dID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, first.Attempt+1, second.Attempt)

	code := 200
	late := domain.Attempt{DeliveryID: dID, Number: first.Attempt, StartedAt: time.Now(), StatusCode: &code}
	require.ErrorIs(t, st.RecordAttempt(ctx, store.Delivered(late)), domain.ErrNotClaimable, "the lapsed worker may not move the delivery")
	current := late
	current.Number = second.Attempt
	require.NoError(t, st.RecordAttempt(ctx, store.Delivered(current)))

	require.Len(t, attemptsOf(t, st, "evt_lapse"), 2, "both attempts really happened and both are recorded")
}

func TestRecordAttemptForDeletedSubscription(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	createSub(t, st, "gone", "*")
	res, err := st.IngestEvent(ctx, event("evt_gone", "x"))
	require.NoError(t, err)
	job, err := st.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, res.Deliveries[0].SubscriptionID, job.SubscriptionID)
	require.False(t, job.SubscriptionCreatedAt.IsZero(), "the claim tells this subscription from a later one of the same id")
	_, err = st.DeleteSubscription(ctx, store.Unscoped, "gone")
	require.NoError(t, err)
	code := 200
	err = st.RecordAttempt(ctx, store.Delivered(domain.Attempt{DeliveryID: job.DeliveryID, Number: job.Attempt, StartedAt: time.Now(), StatusCode: &code}))
	require.ErrorIs(t, err, domain.ErrNotFound)
}

func TestConnectRefusesMoreConnectionsThanAPoolCounts(t *testing.T) {
	t.Parallel()
	// DB_MAX_CONNS has no upper bound of its own: such a value must fail
	// rather than wrap around to another pool size.
	_, err := store.Connect(context.Background(), "postgres://127.0.0.1:1/none", math.MaxInt32+1)
	require.ErrorContains(t, err, "more than a pool can hold")
}

func BenchmarkIngestEvent(b *testing.B) {
	db := testkit.Postgres(b)
	ctx := context.Background()
	pool, err := store.Connect(ctx, db.URL, 30) // DB_MAX_CONNS's default
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	st := store.New(pool)
	for i := range 10 {
		_, err := st.CreateSubscription(ctx, domain.Subscription{ID: fmt.Sprintf("s%d", i), URL: "http://127.0.0.1:1/", EventTypes: []string{fmt.Sprintf("t%d.*", i), "order.*"}, Secret: signing.GenerateSecret()})
		if err != nil {
			b.Fatal(err)
		}
	}
	var n int64
	var mu sync.Mutex
	b.ReportAllocs()
	b.SetParallelism(16) // concurrent requests, as an API instance sees them
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			id := fmt.Sprintf("evt_%d", n)
			mu.Unlock()
			if _, err := st.IngestEvent(ctx, event(id, "order.created")); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkIngestEvents is BenchmarkIngestEvent with 100 events per call:
// one statement and one commit per batch. ns/op is per batch.
func BenchmarkIngestEvents(b *testing.B) {
	db := testkit.Postgres(b)
	ctx := context.Background()
	pool, err := store.Connect(ctx, db.URL, 30)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	st := store.New(pool)
	for i := range 10 {
		_, err := st.CreateSubscription(ctx, domain.Subscription{ID: fmt.Sprintf("s%d", i), URL: "http://127.0.0.1:1/", EventTypes: []string{fmt.Sprintf("t%d.*", i), "order.*"}, Secret: signing.GenerateSecret()})
		if err != nil {
			b.Fatal(err)
		}
	}
	const size = 100
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		events := make([]domain.Event, size)
		for pb.Next() {
			for i := range events {
				events[i] = event(fmt.Sprintf("evt_%d", n.Add(1)), "order.created")
			}
			if _, err := st.IngestEvents(ctx, events); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
}

func TestUnreachableDatabaseIsUnavailableNotAFailure(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@"+addr+"/x?connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := store.New(pool)
	ctx := context.Background()
	calls := []struct {
		name string
		call func() error
	}{
		{"IngestEvent", func() error { _, err := st.IngestEvent(ctx, event("e", "x")); return err }},
		{"IngestEvents", func() error { _, err := st.IngestEvents(ctx, []domain.Event{event("e", "x")}); return err }},
		{"GetEvent", func() error { _, _, err := st.GetEvent(ctx, store.Unscoped, "e"); return err }},
		{"ListAttempts", func() error {
			_, err := st.ListAttempts(ctx, store.Unscoped, store.AttemptFilter{EventID: "e", Limit: 1})
			return err
		}},
		{"ListEventDeliveries", func() error {
			_, err := st.ListEventDeliveries(ctx, store.Unscoped, store.EventDeliveryFilter{EventID: "e", Limit: 1})
			return err
		}},
		{"CreateSubscription", func() error {
			_, err := st.CreateSubscription(ctx, domain.Subscription{ID: "s", URL: "http://h/", EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
			return err
		}},
		{"GetSubscription", func() error { _, err := st.GetSubscription(ctx, store.Unscoped, "s"); return err }},
		{"ListSubscriptions", func() error { _, err := st.ListSubscriptions(ctx, store.Unscoped, "", 10); return err }},
		{"UpdateSubscription", func() error {
			_, err := st.UpdateSubscription(ctx, store.Unscoped, "s", store.SubscriptionPatch{})
			return err
		}},
		{"DeleteSubscription", func() error { _, err := st.DeleteSubscription(ctx, store.Unscoped, "s"); return err }},
		{"Redeliver", func() error { _, err := st.Redeliver(ctx, store.Unscoped, "e", "", false); return err }},
		{"RedeliverBulk", func() error {
			_, err := st.RedeliverBulk(ctx, store.Unscoped, store.RedeliverFilter{SubscriptionID: "s", Limit: 1})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := c.call()
			require.ErrorIs(t, err, domain.ErrUnavailable, "got %v", err)
		})
	}
}

func TestUpdateSubscription(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	createSub(t, st, "s", "a.*")
	require.NoError(t, st.DisableSubscription(ctx, "s", "endpoint answered 410 Gone"))

	url := "https://example.com/new"
	active := domain.SubscriptionActive
	got, err := st.UpdateSubscription(ctx, store.Unscoped, "s", store.SubscriptionPatch{
		URL: &url, State: &active, Settings: &domain.DeliverySettings{RatePerSecond: 7},
	})
	require.NoError(t, err)
	require.Equal(t, url, got.URL)
	require.Equal(t, []string{"a.*"}, got.EventTypes, "absent fields stay")
	require.Equal(t, domain.SubscriptionActive, got.State)
	require.Empty(t, got.StateReason, "re-enabling clears the reason")
	require.Equal(t, 7, got.Settings.RatePerSecond)

	got, err = st.UpdateSubscription(ctx, store.Unscoped, "s", store.SubscriptionPatch{EventTypes: []string{"b"}, Settings: &domain.DeliverySettings{MaxConcurrency: 3}})
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, got.EventTypes)
	require.Equal(t, 7, got.Settings.RatePerSecond, "settings change field by field")
	require.Equal(t, 3, got.Settings.MaxConcurrency)

	_, err = st.UpdateSubscription(ctx, store.Unscoped, "nope", store.SubscriptionPatch{URL: &url})
	require.ErrorIs(t, err, domain.ErrNotFound)
}

func TestRotateSecretSignsWithBothDuringGrace(t *testing.T) {
	t.Parallel()
	st := store.New(testkit.Postgres(t).Pool)
	ctx := context.Background()
	sub := createSub(t, st, "rot", "*")
	res, err := st.IngestEvent(ctx, event("evt_rot_1", "x"))
	require.NoError(t, err)

	rotated, until, err := st.RotateSecret(ctx, store.Unscoped, "rot", "new-secret-value", time.Hour)
	require.NoError(t, err)
	require.Equal(t, "new-secret-value", rotated.Secret)
	require.WithinDuration(t, time.Now().Add(time.Hour), until, time.Minute)
	job, err := st.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"new-secret-value", sub.Secret}, job.Secrets, "the new secret first, the old one during the grace period")

	_, _, err = st.RotateSecret(ctx, store.Unscoped, "rot", "newer-secret-value", 0)
	require.NoError(t, err)
	res, err = st.IngestEvent(ctx, event("evt_rot_2", "x"))
	require.NoError(t, err)
	job, err = st.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"newer-secret-value"}, job.Secrets, "no grace: only the new secret")

	_, _, err = st.RotateSecret(ctx, store.Unscoped, "nope", "x-secret-value", 0)
	require.ErrorIs(t, err, domain.ErrNotFound)
}

func TestSecretsAreSealedAtRest(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	key, err := seal.ParseKey(seal.NewKey())
	require.NoError(t, err)
	keys, err := seal.NewKeyring(key)
	require.NoError(t, err)
	st := store.New(db.Pool, store.WithSecretKeys(keys))
	ctx := context.Background()
	const secret = "plain-secret-of-sub"
	created, err := st.CreateSubscription(ctx, domain.Subscription{ID: "sealed", URL: "http://h/", EventTypes: []string{"*"}, Secret: secret})
	require.NoError(t, err)
	require.Equal(t, secret, created.Secret)
	_, _, err = st.RotateSecret(ctx, store.Unscoped, "sealed", "rotated-secret-value", time.Hour)
	require.NoError(t, err)
	var current, previous string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT secret, previous_secret FROM subscriptions WHERE id = 'sealed'`).Scan(&current, &previous))
	require.NotContains(t, current+previous, "secret", "a database dump shows the secrets")

	res, err := st.IngestEvent(ctx, event("evt_sealed", "x"))
	require.NoError(t, err)
	job, err := st.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"rotated-secret-value", secret}, job.Secrets, "the worker signs with the secrets as given")

	got, err := st.GetSubscription(ctx, store.Unscoped, "sealed")
	require.NoError(t, err)
	require.Empty(t, got.Secret, "reads never carry the secret")

	// Rows written before sealing was configured still work.
	_, err = db.Pool.Exec(ctx, `INSERT INTO subscriptions (id, url, event_types, secret) VALUES ('legacy', 'http://h/', '{legacy}', 'legacy-secret')`)
	require.NoError(t, err)
	res, err = st.IngestEvent(ctx, event("evt_legacy", "legacy"))
	require.NoError(t, err)
	legacy := res.Deliveries[len(res.Deliveries)-1]
	require.Equal(t, "legacy", legacy.SubscriptionID)
	job, err = st.ClaimDelivery(ctx, legacy.ID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"legacy-secret"}, job.Secrets)

	// Without the key, the subscription stays readable, and a claim gives
	// the delivery back without spending its attempt.
	other, err := seal.ParseKey(seal.NewKey())
	require.NoError(t, err)
	wrong, err := seal.NewKeyring(other)
	require.NoError(t, err)
	withoutKey := store.New(db.Pool, store.WithSecretKeys(wrong))
	_, err = withoutKey.GetSubscription(ctx, store.Unscoped, "sealed")
	require.NoError(t, err)
	res, err = st.IngestEvent(ctx, event("evt_no_key", "x"))
	require.NoError(t, err)
	_, err = withoutKey.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
	require.ErrorIs(t, err, domain.ErrSecretUnavailable)
	require.ErrorIs(t, err, seal.ErrUnknownKey)
	var (
		status   string
		attempts int
		due      time.Time
	)
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT status, attempts, next_attempt_at FROM deliveries WHERE id = $1`, res.Deliveries[0].ID).Scan(&status, &attempts, &due))
	require.Equal(t, "pending", status)
	require.Zero(t, attempts, "no attempt spent")
	require.WithinDuration(t, time.Now().Add(time.Minute), due, 10*time.Second)
}

// TestUpdateSubscriptionRetryDelays pins that a patch of one retry delay is
// checked against the other, stored one, and that a refused patch changes
// nothing, not even its other fields. With RetryDelaysTogether (a caller
// that may not read the stored delays) a patch of one delay is refused
// whatever its value, so the answer tells nothing of the stored one, and
// two delays are checked against each other only.
func TestUpdateSubscriptionRetryDelays(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	_, err := st.CreateSubscription(ctx, domain.Subscription{ID: "s", URL: "http://h/", EventTypes: []string{"*"}, Secret: signing.GenerateSecret(),
		Settings: domain.DeliverySettings{RetryBaseDelay: 10 * time.Second, RetryMaxDelay: time.Minute}})
	require.NoError(t, err)
	tests := []struct {
		name      string
		patch     domain.DeliverySettings
		together  bool
		wantField string
	}{
		{"max below stored base", domain.DeliverySettings{RetryMaxDelay: 5 * time.Second, RatePerSecond: 3}, false, "retry_max_delay_ms"},
		{"base above stored max", domain.DeliverySettings{RetryBaseDelay: 2 * time.Minute, RatePerSecond: 3}, false, "retry_base_delay_ms"},
		{"both, max below base", domain.DeliverySettings{RetryBaseDelay: 2 * time.Minute, RetryMaxDelay: time.Minute}, false, "retry_max_delay_ms"},
		{"both, in order", domain.DeliverySettings{RetryBaseDelay: 2 * time.Minute, RetryMaxDelay: 3 * time.Minute}, false, ""},
		{"max equal to stored base", domain.DeliverySettings{RetryMaxDelay: 2 * time.Minute}, false, ""},
		{"together: max alone, above the stored base", domain.DeliverySettings{RetryMaxDelay: time.Hour}, true, "retry_base_delay_ms"},
		{"together: max alone, below the stored base", domain.DeliverySettings{RetryMaxDelay: time.Second}, true, "retry_base_delay_ms"},
		{"together: base alone, below the stored max", domain.DeliverySettings{RetryBaseDelay: time.Second, RatePerSecond: 3}, true, "retry_max_delay_ms"},
		{"together: base alone, above the stored max", domain.DeliverySettings{RetryBaseDelay: time.Hour}, true, "retry_max_delay_ms"},
		{"together: both, above the stored ones", domain.DeliverySettings{RetryBaseDelay: time.Hour, RetryMaxDelay: 2 * time.Hour}, true, ""},
		{"together: both, below the stored ones", domain.DeliverySettings{RetryBaseDelay: time.Second, RetryMaxDelay: time.Second}, true, ""},
		{"together: neither", domain.DeliverySettings{RatePerSecond: 4}, true, ""},
	}
	for _, tt := range tests { // in order: each case starts from the one before
		before, err := st.GetSubscription(ctx, store.Unscoped, "s")
		require.NoError(t, err)
		patch := tt.patch
		got, err := st.UpdateSubscription(ctx, store.Unscoped, "s", store.SubscriptionPatch{Settings: &patch, RetryDelaysTogether: tt.together})
		if tt.wantField == "" {
			require.NoError(t, err, tt.name)
			require.GreaterOrEqual(t, got.Settings.RetryMaxDelay, got.Settings.RetryBaseDelay, tt.name)
			continue
		}
		var ve *domain.ValidationError
		require.ErrorAs(t, err, &ve, tt.name)
		require.Equal(t, tt.wantField, ve.Field, tt.name)
		after, err := st.GetSubscription(ctx, store.Unscoped, "s")
		require.NoError(t, err)
		require.Equal(t, before, after, "%s: a refused patch writes nothing", tt.name)
	}
}
