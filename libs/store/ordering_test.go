package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// createOrderedSub creates a subscription to every type with ordering per_key.
func createOrderedSub(t *testing.T, st *store.Store, id string) {
	t.Helper()
	_, err := st.CreateSubscription(context.Background(), domain.Subscription{
		ID: id, URL: "http://127.0.0.1:1/" + id, EventTypes: []string{"*"}, Secret: signing.GenerateSecret(), Ordering: domain.OrderingPerKey,
	})
	require.NoError(t, err)
}

func keyed(id, key string) domain.Event {
	e := event(id, "order.updated")
	e.OrderingKey = key
	return e
}

// deliveryOf is the id of an event's delivery to a subscription.
func deliveryOf(t *testing.T, db *testkit.Database, eventID, subID string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		`SELECT id FROM deliveries WHERE event_id = $1 AND subscription_id = $2`, eventID, subID).Scan(&id))
	return id
}

// held reports whether a delivery waits behind its key.
func held(t *testing.T, db *testkit.Database, id int64) bool {
	t.Helper()
	s := stateOf(t, db, id)
	return s.Status == domain.DeliveryPending && s.Next == nil
}

// settle applies one outcome of an ordered claim and returns the delivery
// it released, if any.
func settle(t *testing.T, st *store.Store, o store.Outcome) *store.DeliveryRef {
	t.Helper()
	applied, err := st.ApplyOutcomes(context.Background(), []store.Outcome{o.InOrder()})
	require.NoError(t, err)
	require.NoError(t, applied[0].Err)
	return applied[0].Next
}

// openCount is a key's count of open ordered deliveries.
func openCount(t *testing.T, db *testkit.Database, subID, key string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM deliveries WHERE subscription_id = $1 AND ordering_key = $2 AND seq IS NOT NULL
		   AND status IN ('pending', 'processing', 'retrying')`, subID, key).Scan(&n))
	return n
}

func TestOrderedKeyGoesOneAtATimeInAcceptanceOrder(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createOrderedSub(t, st, "o")
	createSub(t, st, "u", "*")
	for _, e := range []domain.Event{keyed("e1", "k"), keyed("e2", "k"), keyed("e3", "k"), keyed("f1", "j"), event("n1", "order.updated")} {
		_, err := st.IngestEvent(ctx, e)
		require.NoError(t, err)
	}
	d := func(eventID string) int64 { return deliveryOf(t, db, eventID, "o") }

	for _, id := range []string{"e1", "e2", "e3", "f1", "n1"} {
		require.False(t, held(t, db, deliveryOf(t, db, id, "u")), "an unordered subscription holds nothing (%s)", id)
	}
	require.False(t, held(t, db, d("e1")), "the first of a key is its head")
	require.True(t, held(t, db, d("e2")))
	require.True(t, held(t, db, d("e3")))
	require.False(t, held(t, db, d("f1")), "another key has a head of its own")
	require.False(t, held(t, db, d("n1")), "an event without a key is not ordered")
	require.EqualValues(t, 3, openCount(t, db, "o", "k"))

	_, err := st.ClaimDelivery(ctx, d("e2"), time.Minute, 0)
	require.ErrorIs(t, err, domain.ErrNotClaimable, "a held delivery cannot be claimed")

	job := claim(t, st, d("e1"))
	require.True(t, job.Ordered)
	require.Equal(t, "k", job.Event.OrderingKey)
	next := settle(t, st, store.Delivered(attemptOf(job, 200)))
	require.NotNil(t, next)
	require.Equal(t, store.DeliveryRef{ID: d("e2"), EventID: "e2", SubscriptionID: "o"}, *next)
	require.True(t, held(t, db, d("e3")), "only the next one goes")

	job = claim(t, st, d("e2"))
	require.Nil(t, settle(t, st, store.Retrying(attemptOf(job, 500), time.Now().Add(-time.Second))), "a retry keeps the key")
	require.True(t, held(t, db, d("e3")))

	job = claim(t, st, d("e2"))
	next = settle(t, st, store.Failed(attemptOf(job, 500)))
	require.NotNil(t, next, "a head that failed for good lets the next go")
	require.Equal(t, d("e3"), next.ID)

	job = claim(t, st, d("e3"))
	require.Nil(t, settle(t, st, store.Delivered(attemptOf(job, 200))))
	require.Zero(t, openCount(t, db, "o", "k"))

	_, err = st.IngestEvent(ctx, keyed("e4", "k"))
	require.NoError(t, err)
	require.False(t, held(t, db, d("e4")), "a key with nothing open starts with a head")
}

func TestOrderedBatchTakesTheBatchOrder(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createOrderedSub(t, st, "o")
	// Ids against their alphabetical order: the batch's order counts.
	_, err := st.IngestEvents(ctx, []domain.Event{keyed("z1", "k"), keyed("m2", "k"), event("plain", "order.updated"), keyed("a3", "k"), keyed("b1", "j")})
	require.NoError(t, err)
	_, err = st.IngestEvents(ctx, []domain.Event{keyed("y4", "k"), keyed("c2", "j")})
	require.NoError(t, err)

	var order []string
	ref := &store.DeliveryRef{ID: deliveryOf(t, db, "z1", "o"), EventID: "z1"}
	require.False(t, held(t, db, ref.ID))
	for ref != nil {
		order = append(order, ref.EventID)
		ref = settle(t, st, store.Delivered(attemptOf(claim(t, st, ref.ID), 200)))
	}
	require.Equal(t, []string{"z1", "m2", "a3", "y4"}, order)

	require.False(t, held(t, db, deliveryOf(t, db, "b1", "o")))
	require.True(t, held(t, db, deliveryOf(t, db, "c2", "o")))
	require.False(t, held(t, db, deliveryOf(t, db, "plain", "o")))
}

// heads are the ids of a subscription's ordered deliveries that are
// open and not held: each key's head.
func heads(t *testing.T, db *testkit.Database, subID string) []int64 {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT id FROM deliveries WHERE subscription_id = $1 AND seq IS NOT NULL
		AND next_attempt_at IS NOT NULL AND status IN ('pending', 'processing', 'retrying')`, subID)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	return ids
}

// deliverAlong claims and delivers the head id, then each delivery that
// released, and returns their sequence numbers in that order.
func deliverAlong(t *testing.T, st *store.Store, db *testkit.Database, id int64) []int64 {
	t.Helper()
	var seqs []int64
	for ref := (&store.DeliveryRef{ID: id}); ref != nil; {
		var seq int64
		require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT seq FROM deliveries WHERE id = $1`, ref.ID).Scan(&seq))
		seqs = append(seqs, seq)
		ref = settle(t, st, store.Delivered(attemptOf(claim(t, st, ref.ID), 200)))
	}
	return seqs
}

// sequence is 1..n.
func sequence(n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = int64(i + 1)
	}
	return s
}

// postOneKey posts events of key "k" from writers connections at once,
// each posting each times: writer w's i-th post is a batch of two events
// when batch(w, i), a single event otherwise. The channel gives the first
// error, or nil, once every post is done.
func postOneKey(st *store.Store, writers, each int, batch func(w, i int) bool) <-chan error {
	ctx := context.Background()
	errs := make(chan error, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				var err error
				if batch(w, i) {
					_, err = st.IngestEvents(ctx, []domain.Event{keyed(id, "k"), keyed(id+"b", "k")})
				} else {
					_, err = st.IngestEvent(ctx, keyed(id, "k"))
				}
				errs <- err
			}
		})
	}
	done := make(chan error, 1)
	go func() {
		wg.Wait()
		close(errs)
		var first error
		for err := range errs {
			if first == nil {
				first = err
			}
		}
		done <- first
	}()
	return done
}

// TestConcurrentIngestOfOneKeyHasOneHead posts one key's events from many
// connections at once, singly and in batches: exactly one is due, and
// settling each head releases exactly the next, in sequence order, until
// all went.
func TestConcurrentIngestOfOneKeyHasOneHead(t *testing.T) {
	st, db := setup(t)
	createOrderedSub(t, st, "o")
	const writers, each = 8, 6
	require.NoError(t, <-postOneKey(st, writers, each, func(w, _ int) bool { return w%2 == 1 }))
	const total = writers/2*each + writers/2*each*2

	h := heads(t, db, "o")
	require.Len(t, h, 1, "one head")
	require.Equal(t, sequence(total), deliverAlong(t, st, db, h[0]), "every event once, in the order of the sequence")
	require.Zero(t, openCount(t, db, "o", "k"))
}

// TestIngestRacingTheHeadNeverStallsAKey posts one key's events from
// several connections while the test settles each head as soon as it
// appears, so that ingests keep arriving just as a head becomes final:
// the key never has two heads, never stalls with held deliveries and no
// head, and goes in sequence order.
func TestIngestRacingTheHeadNeverStallsAKey(t *testing.T) {
	st, db := setup(t)
	createOrderedSub(t, st, "o")
	const writers, each = 4, 40
	done := postOneKey(st, writers, each, func(_, i int) bool { return i%4 == 3 })
	posted := make(chan struct{})
	var postErr error
	go func() { postErr = <-done; close(posted) }()
	const total = writers*each + writers*each/4

	var seqs []int64
	for len(seqs) < total {
		h := heads(t, db, "o")
		require.LessOrEqual(t, len(h), 1, "one head at most")
		if len(h) == 0 {
			select {
			case <-posted:
				if len(heads(t, db, "o")) > 0 {
					continue // the last post made one after the look above
				}
				require.Zero(t, openCount(t, db, "o", "k"), "every event posted, some held and no head: the key stalled")
				require.Len(t, seqs, total, "every event posted and nothing open, yet some were not delivered")
			default:
			}
			continue
		}
		seqs = append(seqs, deliverAlong(t, st, db, h[0])...)
	}
	<-posted
	require.NoError(t, postErr)
	require.Equal(t, sequence(total), seqs, "every event once, in the order of the sequence")
	require.Zero(t, openCount(t, db, "o", "k"))
}

// TestIngestWaitsForAHeadBeingFinished: an ingest that meets its key's
// head locked by the statement making it final waits for that commit,
// then reads the head final and makes its own delivery the head. Had it
// read the head as it was, its delivery would wait held with nothing left
// to release it: the worker's release ran before the ingest committed.
func TestIngestWaitsForAHeadBeingFinished(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createOrderedSub(t, st, "o")
	_, err := st.IngestEvent(ctx, keyed("a1", "k"))
	require.NoError(t, err)
	head := deliveryOf(t, db, "a1", "o")
	claim(t, st, head)

	// An outcome batch before its commit: the head locked and final, and
	// nothing after it to release yet.
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	_, err = tx.Exec(ctx, `UPDATE deliveries SET status = 'delivered', next_attempt_at = NULL WHERE id = $1`, head)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		_, err := st.IngestEvent(ctx, keyed("a2", "k"))
		done <- err
	}()
	waits := func() bool {
		var n int
		// A wait for a row's lock is a wait for its holder's transaction
		// id, which names no database: the waiting session does.
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE NOT l.granted AND a.datname = current_database()`).Scan(&n))
		return n > 0
	}
	deadline := time.Now().Add(30 * time.Second)
	for !waits() {
		require.True(t, time.Now().Before(deadline), "the ingest neither waited nor finished")
		select {
		case err := <-done:
			require.NoError(t, err)
			t.Fatal("the ingest did not wait for the head being made final")
		default:
		}
	}
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, <-done)
	require.False(t, held(t, db, deliveryOf(t, db, "a2", "o")), "it read the head final and made its own delivery the head")
}

func TestOrderingKeyOperations(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	_, _, err := st.PutTenant(ctx, domain.Tenant{ID: "other"})
	require.NoError(t, err)
	createOrderedSub(t, st, "o")
	for _, e := range []domain.Event{keyed("a1", "a"), keyed("a2", "a"), keyed("a3", "a"), keyed("b1", "b"), keyed("c1", "c")} {
		_, err := st.IngestEvent(ctx, e)
		require.NoError(t, err)
	}
	d := func(eventID string) int64 { return deliveryOf(t, db, eventID, "o") }
	settle(t, st, store.Retrying(attemptOf(claim(t, st, d("a1")), 503), time.Now().Add(time.Hour)))
	settle(t, st, store.Retrying(attemptOf(claim(t, st, d("b1")), 500), time.Now().Add(time.Hour)))
	claim(t, st, d("c1")) // being attempted now

	blocked, err := st.ListOrderingKeys(ctx, store.Unscoped, store.OrderingKeyFilter{SubscriptionID: "o", State: store.KeyBlocked, Limit: 10})
	require.NoError(t, err)
	require.Len(t, blocked, 2)
	require.Equal(t, "a", blocked[0].Key)
	require.Equal(t, "a1", blocked[0].Head.EventID)
	require.Equal(t, domain.DeliveryRetrying, blocked[0].Head.Status)
	require.EqualValues(t, 2, blocked[0].Waiting)
	require.Equal(t, "b", blocked[1].Key)
	page, err := st.ListOrderingKeys(ctx, store.Unscoped, store.OrderingKeyFilter{SubscriptionID: "o", State: store.KeyOpen, After: "a", Limit: 10})
	require.NoError(t, err)
	require.Len(t, page, 2, "b and c after a")
	n, err := st.CountBlockedKeys(ctx, store.Unscoped, "o")
	require.NoError(t, err)
	require.EqualValues(t, 2, n)

	_, err = st.ListOrderingKeys(ctx, store.TenantScope("other"), store.OrderingKeyFilter{SubscriptionID: "o", State: store.KeyBlocked, Limit: 10})
	require.ErrorIs(t, err, domain.ErrNotFound, "another tenant's subscription is not found")
	_, _, err = st.SkipOrderingKey(ctx, store.TenantScope("other"), "o", "a", "x")
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, _, err = st.SkipOrderingKey(ctx, store.Unscoped, "o", "nope", "x")
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, _, err = st.SkipOrderingKey(ctx, store.Unscoped, "o", "c", "x")
	require.ErrorIs(t, err, domain.ErrConflict, "a head being attempted is not skipped under its worker")
	_, err = st.RetryOrderingKeyNow(ctx, store.Unscoped, "o", "c")
	require.ErrorIs(t, err, domain.ErrConflict)

	skipped, next, err := st.SkipOrderingKey(ctx, store.Unscoped, "o", "a", "bad payload")
	require.NoError(t, err)
	require.Equal(t, "a1", skipped.EventID)
	require.NotNil(t, next)
	require.Equal(t, "a2", next.EventID)
	s := stateOf(t, db, d("a1"))
	require.Equal(t, domain.DeliveryFailed, s.Status)
	require.Equal(t, "skipped: bad payload", s.LastErr)
	require.True(t, held(t, db, d("a3")))
	require.EqualValues(t, 2, openCount(t, db, "o", "a"))

	head, err := st.RetryOrderingKeyNow(ctx, store.Unscoped, "o", "b")
	require.NoError(t, err)
	require.Equal(t, "b1", head.EventID)
	job := claim(t, st, d("b1"))
	require.Equal(t, 2, job.Attempt, "sent now, as its second attempt")
}

func TestGoneFailsAKeysHeldDeliveries(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createOrderedSub(t, st, "o")
	for _, e := range []domain.Event{keyed("a1", "a"), keyed("a2", "a"), keyed("b1", "b"), keyed("b2", "b")} {
		_, err := st.IngestEvent(ctx, e)
		require.NoError(t, err)
	}
	d := func(eventID string) int64 { return deliveryOf(t, db, eventID, "o") }
	b1 := claim(t, st, d("b1"))
	require.Nil(t, settle(t, st, store.Gone(attemptOf(claim(t, st, d("a1")), 410), "gone")))
	for _, id := range []string{"a2", "b2"} {
		require.Equal(t, domain.DeliveryFailed, stateOf(t, db, d(id)).Status, id)
	}
	require.Zero(t, openCount(t, db, "o", "a"))
	require.EqualValues(t, 1, openCount(t, db, "o", "b"), "b1, being attempted, is still open")
	require.Nil(t, settle(t, st, store.Delivered(attemptOf(b1, 200))))
	require.Zero(t, openCount(t, db, "o", "b"))

	active := domain.SubscriptionActive
	_, err := st.UpdateSubscription(ctx, store.Unscoped, "o", store.SubscriptionPatch{State: &active})
	require.NoError(t, err)
	_, err = st.IngestEvent(ctx, keyed("a3", "a"))
	require.NoError(t, err)
	require.False(t, held(t, db, d("a3")), "after re-enabling, a key starts afresh")

	require.NoError(t, st.DisableSubscription(ctx, "o", "by hand"))
	require.Equal(t, domain.DeliveryFailed, stateOf(t, db, d("a3")).Status)
	require.Zero(t, openCount(t, db, "o", "a"))
}

func TestRedeliveredOrderedDeliveryGoesUnordered(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createOrderedSub(t, st, "o")
	for _, e := range []domain.Event{keyed("a1", "a"), keyed("a2", "a"), keyed("a3", "a")} {
		_, err := st.IngestEvent(ctx, e)
		require.NoError(t, err)
	}
	d := func(eventID string) int64 { return deliveryOf(t, db, eventID, "o") }
	require.NotNil(t, settle(t, st, store.Delivered(attemptOf(claim(t, st, d("a1")), 200))))

	refs, err := st.Redeliver(ctx, store.Unscoped, "a1", "o", false)
	require.NoError(t, err)
	require.Len(t, refs, 1)
	job := claim(t, st, d("a1"))
	require.False(t, job.Ordered, "a redelivery neither waits for its key nor holds it")
	require.Equal(t, "a", job.Event.OrderingKey, "it still carries its key")
	applied, err := st.ApplyOutcomes(ctx, []store.Outcome{store.Delivered(attemptOf(job, 200))})
	require.NoError(t, err)
	require.Nil(t, applied[0].Next)
	require.False(t, held(t, db, d("a2")), "a2 is still the head")
	require.True(t, held(t, db, d("a3")))
}

func TestOrderingAppliesToEventsAcceptedAfterTheSwitch(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "s", "*")
	for _, e := range []domain.Event{keyed("a1", "a"), keyed("a2", "a")} {
		_, err := st.IngestEvent(ctx, e)
		require.NoError(t, err)
	}
	perKey := domain.OrderingPerKey
	sub, err := st.UpdateSubscription(ctx, store.Unscoped, "s", store.SubscriptionPatch{Ordering: &perKey})
	require.NoError(t, err)
	require.Equal(t, domain.OrderingPerKey, sub.Ordering)
	for _, e := range []domain.Event{keyed("a3", "a"), keyed("a4", "a")} {
		_, err := st.IngestEvent(ctx, e)
		require.NoError(t, err)
	}
	d := func(eventID string) int64 { return deliveryOf(t, db, eventID, "s") }
	require.False(t, held(t, db, d("a2")), "accepted before the switch")
	require.False(t, held(t, db, d("a3")), "the first ordered one is the key's head")
	require.True(t, held(t, db, d("a4")))

	none := domain.OrderingNone
	_, err = st.UpdateSubscription(ctx, store.Unscoped, "s", store.SubscriptionPatch{Ordering: &none})
	require.NoError(t, err)
	_, err = st.IngestEvent(ctx, keyed("a5", "a"))
	require.NoError(t, err)
	require.False(t, held(t, db, d("a5")), "accepted after switching back")
	require.True(t, held(t, db, d("a4")), "held ones keep their order")
	next := settle(t, st, store.Delivered(attemptOf(claim(t, st, d("a3")), 200)))
	require.NotNil(t, next)
	require.Equal(t, "a4", next.EventID)
}
