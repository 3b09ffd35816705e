package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

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

// openCount is a key's count of open deliveries.
func openCount(t *testing.T, db *testkit.Database, subID, key string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		`SELECT coalesce((SELECT open FROM ordering_keys WHERE subscription_id = $1 AND key = $2), 0)`, subID, key).Scan(&n))
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

// TestConcurrentIngestOfOneKeyHasOneHead posts one key's events from many
// connections at once, singly and in batches: exactly one is due, and
// settling each head releases exactly the next, in sequence order, until
// all went.
func TestConcurrentIngestOfOneKeyHasOneHead(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createOrderedSub(t, st, "o")
	const writers, each = 8, 6
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if w%2 == 0 {
					_, err := st.IngestEvent(ctx, keyed(fmt.Sprintf("w%d-%d", w, i), "k"))
					errs <- err
					continue
				}
				_, err := st.IngestEvents(ctx, []domain.Event{keyed(fmt.Sprintf("w%d-%d", w, i), "k"), keyed(fmt.Sprintf("w%d-%db", w, i), "k")})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	const total = writers/2*each + writers/2*each*2

	rows, err := db.Pool.Query(ctx, `SELECT id FROM deliveries WHERE subscription_id = 'o' AND next_attempt_at IS NOT NULL`)
	require.NoError(t, err)
	var heads []int64
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		heads = append(heads, id)
	}
	require.NoError(t, rows.Err())
	require.Len(t, heads, 1, "one head")

	var seqs []int64
	ref := &store.DeliveryRef{ID: heads[0]}
	for ref != nil {
		var seq int64
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT seq FROM deliveries WHERE id = $1`, ref.ID).Scan(&seq))
		seqs = append(seqs, seq)
		ref = settle(t, st, store.Delivered(attemptOf(claim(t, st, ref.ID), 200)))
	}
	want := make([]int64, total)
	for i := range want {
		want[i] = int64(i + 1)
	}
	require.Equal(t, want, seqs, "every event once, in the order of the sequence")
	require.Zero(t, openCount(t, db, "o", "k"))
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
