package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

func ingest(t *testing.T, st *store.Store, id string) int64 {
	t.Helper()
	res, err := st.IngestEvent(context.Background(), event(id, "x.y"))
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 1)
	return res.Deliveries[0].ID
}

func fail(t *testing.T, st *store.Store, job store.Job, next time.Time) {
	t.Helper()
	code := 500
	require.NoError(t, st.RecordAttempt(context.Background(), store.Retrying(
		domain.Attempt{DeliveryID: job.DeliveryID, Number: job.Attempt, StartedAt: time.Now(), StatusCode: &code, ErrorClass: domain.ErrorHTTPStatus}, next)))
}

func dueIDs(due []store.DueDelivery) map[int64]store.DueKind {
	out := map[int64]store.DueKind{}
	for _, d := range due {
		out[d.ID] = d.Kind
	}
	return out
}

func TestClaimDueFindsRetriesAndStrandedWork(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "s", "*")

	fresh := ingest(t, st, "fresh")       // published at ingest: not due for republishing
	strandedPending := ingest(t, st, "p") // its publish was lost
	_, err := db.Pool.Exec(ctx, `UPDATE deliveries SET enqueued_at = now() - interval '1 hour' WHERE id = $1`, strandedPending)
	require.NoError(t, err)

	dueRetry := ingest(t, st, "r")
	job, err := st.ClaimDelivery(ctx, dueRetry, time.Minute, 0)
	require.NoError(t, err)
	fail(t, st, job, time.Now().Add(-time.Second))

	laterRetry := ingest(t, st, "later")
	job, err = st.ClaimDelivery(ctx, laterRetry, time.Minute, 0)
	require.NoError(t, err)
	fail(t, st, job, time.Now().Add(time.Hour))

	deadWorker := ingest(t, st, "dead")
	_, err = st.ClaimDelivery(ctx, deadWorker, time.Millisecond, lapsed)
	require.NoError(t, err)
	liveWorker := ingest(t, st, "live")
	_, err = st.ClaimDelivery(ctx, liveWorker, time.Minute, 0)
	require.NoError(t, err)

	due, err := st.ClaimDue(ctx, 100, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, map[int64]store.DueKind{
		strandedPending: store.DueStranded,
		dueRetry:        store.DueRetry,
		deadWorker:      store.DueStranded,
	}, dueIDs(due))
	require.NotContains(t, dueIDs(due), fresh)

	again, err := st.ClaimDue(ctx, 100, 30*time.Second)
	require.NoError(t, err)
	require.Empty(t, again, "claimed rows are not republished until they go stale")

	// The republished retry is claimable by a worker; the fresh one always was.
	job, err = st.ClaimDelivery(ctx, dueRetry, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, 2, job.Attempt)
	_, err = st.ClaimDelivery(ctx, deadWorker, time.Minute, 0)
	require.NoError(t, err, "a lapsed claim is taken over")
}

func TestConcurrentSchedulersNeverClaimTheSameRow(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "s", "*")
	const n = 300
	for i := range n {
		ingest(t, st, "e"+string(rune('a'+i%26))+time.Now().Format("150405.000000000"))
	}
	_, err := db.Pool.Exec(ctx, `UPDATE deliveries SET enqueued_at = '-infinity'`)
	require.NoError(t, err)

	var (
		mu    sync.Mutex
		seen  = map[int64]int{}
		wg    sync.WaitGroup
		total int
	)
	for range 4 {
		wg.Go(func() {
			for {
				due, err := st.ClaimDue(ctx, 25, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if len(due) == 0 {
					return
				}
				mu.Lock()
				for _, d := range due {
					seen[d.ID]++
					total++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, seen, n, "every row claimed")
	require.Equal(t, n, total, "no row claimed twice")
}

func TestReleaseGivesTheAttemptBack(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	createSub(t, st, "s", "*")
	id := ingest(t, st, "e")
	job, err := st.ClaimDelivery(ctx, id, time.Minute, 0)
	require.NoError(t, err)
	require.NoError(t, st.ReleaseDelivery(ctx, id, job.Attempt, time.Now()))
	ds := deliveriesOf(t, st, "e")
	require.Equal(t, domain.DeliveryPending, ds[0].Status)
	require.Equal(t, 0, ds[0].Attempts)
	due, err := st.ClaimDue(ctx, 10, time.Hour)
	require.NoError(t, err)
	require.Len(t, due, 1, "a released delivery is republished when due")
	job, err = st.ClaimDelivery(ctx, id, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, 1, job.Attempt)

	require.NoError(t, st.ReleaseDelivery(ctx, id, job.Attempt, time.Now().Add(time.Hour)))
	due, err = st.ClaimDue(ctx, 10, time.Hour)
	require.NoError(t, err)
	require.Empty(t, due, "a delivery released for later waits until then")
}

func TestRedeliver(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	createSub(t, st, "a", "*")
	createSub(t, st, "b", "*")
	res, err := st.IngestEvent(ctx, event("e", "x"))
	require.NoError(t, err)
	for _, d := range res.Deliveries {
		job, err := st.ClaimDelivery(ctx, d.ID, time.Minute, 0)
		require.NoError(t, err)
		code := 200
		require.NoError(t, st.RecordAttempt(ctx, store.Delivered(domain.Attempt{DeliveryID: d.ID, Number: job.Attempt, StartedAt: time.Now(), StatusCode: &code})))
	}
	refs, err := st.Redeliver(ctx, store.Unscoped, "e", "b", false)
	require.NoError(t, err)
	require.Len(t, refs, 1)
	require.Equal(t, "b", refs[0].SubscriptionID)
	job, err := st.ClaimDelivery(ctx, refs[0].ID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, 2, job.Attempt, "a redelivery is a new attempt")

	refs, err = st.Redeliver(ctx, store.Unscoped, "e", "", false)
	require.NoError(t, err)
	require.Len(t, refs, 1, "only finished deliveries are redelivered; b is in flight")
	_, err = st.Redeliver(ctx, store.Unscoped, "nope", "", false)
	require.ErrorIs(t, err, domain.ErrNotFound)
}

func TestRedeliverBulkQueuesForTheScheduler(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "s", "*")
	createSub(t, st, "other", "*")
	for i := range 50 {
		ingest2 := func(id string) {
			_, err := st.IngestEvent(ctx, event(id, "x"))
			require.NoError(t, err)
		}
		ingest2("bulk" + time.Now().Format("150405.000000") + string(rune('a'+i%26)))
	}
	_, err := db.Pool.Exec(ctx, `UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, attempts = 16`)
	require.NoError(t, err)

	res, err := st.RedeliverBulk(ctx, store.Unscoped, store.RedeliverFilter{SubscriptionID: "s", From: time.Now().Add(-time.Hour), Limit: 1000})
	require.NoError(t, err)
	require.EqualValues(t, 50, res.Queued)
	require.Nil(t, res.Next, "none remain")
	res, err = st.RedeliverBulk(ctx, store.Unscoped, store.RedeliverFilter{SubscriptionID: "s", To: time.Now().Add(-time.Hour), Limit: 1000})
	require.NoError(t, err)
	require.EqualValues(t, 0, res.Queued, "the time range bounds the selection")

	due, err := st.ClaimDue(ctx, 1000, time.Hour)
	require.NoError(t, err)
	require.Len(t, due, 50, "the scheduler publishes them; the other subscription's stay failed")
	_, err = st.RedeliverBulk(ctx, store.Unscoped, store.RedeliverFilter{SubscriptionID: "nope", Limit: 1000})
	require.ErrorIs(t, err, domain.ErrNotFound)
	_, err = db.Pool.Exec(ctx, `UPDATE subscriptions SET state = 'paused' WHERE id = 'other'`)
	require.NoError(t, err)
	_, err = st.RedeliverBulk(ctx, store.Unscoped, store.RedeliverFilter{SubscriptionID: "other", Limit: 1000})
	require.ErrorIs(t, err, domain.ErrConflict)
	require.Zero(t, count(t, db, `SELECT count(*) FROM deliveries WHERE subscription_id = 'other' AND status <> 'failed'`), "a paused subscription's deliveries stay")
}

// count runs a counting query.
func count(t *testing.T, db *testkit.Database, sql string) int {
	t.Helper()
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), sql).Scan(&n))
	return n
}

// TestRedeliverBulkIsBoundedAndContinues: one call queues at most its limit,
// newest first, and says where the next one continues; following it queues
// each matching delivery exactly once, across both statuses and across
// deliveries created together (one batch: one created_at).
func TestRedeliverBulkIsBoundedAndContinues(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "s", "*")
	createSub(t, st, "other", "*")
	var batch []domain.Event
	for i := range 24 {
		batch = append(batch, event(fmt.Sprintf("b%02d", i), "x"))
	}
	_, err := st.IngestEvents(ctx, batch)
	require.NoError(t, err)
	for i := range 6 {
		ingest2, err := st.IngestEvent(ctx, event(fmt.Sprintf("single%d", i), "x"))
		require.NoError(t, err)
		require.True(t, ingest2.Created)
	}
	// 30 each: every third delivered, the rest failed; one of s's still in flight.
	_, err = db.Pool.Exec(ctx, `
		UPDATE deliveries SET status = CASE WHEN id % 3 = 0 THEN 'delivered' ELSE 'failed' END, next_attempt_at = NULL`)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET status = 'retrying', next_attempt_at = now() + interval '1 hour' WHERE event_id = 'b05' AND subscription_id = 's'`)
	require.NoError(t, err)

	f := store.RedeliverFilter{SubscriptionID: "s", Statuses: []domain.DeliveryStatus{domain.DeliveryFailed, domain.DeliveryDelivered}, Limit: 7}
	var pages []int64
	for {
		res, err := st.RedeliverBulk(ctx, store.Unscoped, f)
		require.NoError(t, err)
		pages = append(pages, res.Queued)
		if res.Next == nil {
			break
		}
		require.Less(t, len(pages), 10, "the continuation does not end")
		f.After = res.Next
	}
	require.Equal(t, []int64{7, 7, 7, 7, 1}, pages, "29 finished deliveries, 7 at a time")
	require.Equal(t, 29, count(t, db, `SELECT count(*) FROM deliveries WHERE subscription_id = 's' AND status = 'pending'`))
	require.Zero(t, count(t, db, `SELECT count(*) FROM deliveries WHERE subscription_id = 'other' AND status = 'pending'`))

	// Exactly the limit left: one call, and nothing to continue with.
	_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET status = 'failed' WHERE subscription_id = 's' AND event_id IN ('b00', 'b01', 'single0')`)
	require.NoError(t, err)
	res, err := st.RedeliverBulk(ctx, store.Unscoped, store.RedeliverFilter{SubscriptionID: "s", Limit: 3})
	require.NoError(t, err)
	require.EqualValues(t, 3, res.Queued)
	require.Nil(t, res.Next)

	// Newest first: the first page of one is the last single event.
	_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET status = 'failed' WHERE subscription_id = 's'`)
	require.NoError(t, err)
	res, err = st.RedeliverBulk(ctx, store.Unscoped, store.RedeliverFilter{SubscriptionID: "s", Limit: 1})
	require.NoError(t, err)
	require.Equal(t, "single5", res.Next.ID)
}

func TestDisableSubscriptionFailsWaitingDeliveries(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	createSub(t, st, "gone", "*")
	waiting := ingest(t, st, "w")
	inflight := ingest(t, st, "f")
	job, err := st.ClaimDelivery(ctx, inflight, time.Minute, 0)
	require.NoError(t, err)
	require.NoError(t, st.DisableSubscription(ctx, "gone", "endpoint answered 410 Gone"))

	sub, err := st.GetSubscription(ctx, store.Unscoped, "gone")
	require.NoError(t, err)
	require.Equal(t, domain.SubscriptionDisabled, sub.State)
	require.Equal(t, "endpoint answered 410 Gone", sub.StateReason)
	ds := deliveriesOf(t, st, "w")
	require.Equal(t, domain.DeliveryFailed, ds[0].Status)
	require.Contains(t, ds[0].LastError, "410")
	_, err = st.ClaimDelivery(ctx, waiting, time.Minute, 0)
	require.ErrorIs(t, err, domain.ErrNotClaimable)
	code := 410
	require.NoError(t, st.RecordAttempt(ctx, store.Failed(domain.Attempt{DeliveryID: inflight, Number: job.Attempt, StartedAt: time.Now(), StatusCode: &code})),
		"the attempt in flight is recorded normally")
	res, err := st.IngestEvent(ctx, event("after", "x"))
	require.NoError(t, err)
	require.Empty(t, res.Deliveries, "a disabled subscription gets no new deliveries")
	require.ErrorIs(t, st.DisableSubscription(ctx, "nope", "x"), domain.ErrNotFound)
}

func TestUntilNextDueIsTheEarliestWaitingRetry(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	createSub(t, st, "s", "*")

	_, ok, err := st.UntilNextDue(ctx, time.Second)
	require.NoError(t, err)
	require.False(t, ok, "nothing waiting")

	ingest(t, st, "fresh") // published at ingest: nothing to wake for
	soon := time.Now().Add(2 * time.Second)
	for id, at := range map[string]time.Time{"soon": soon, "later": time.Now().Add(time.Hour), "long-ago": time.Now().Add(-time.Minute)} {
		job, err := st.ClaimDelivery(ctx, ingest(t, st, id), time.Minute, 0)
		require.NoError(t, err)
		fail(t, st, job, at)
	}

	wait, ok, err := st.UntilNextDue(ctx, time.Second)
	require.NoError(t, err)
	require.True(t, ok)
	require.WithinDuration(t, soon, time.Now().Add(wait), 100*time.Millisecond, "the earliest retry due since the last claim or later")

	wait, ok, err = st.UntilNextDue(ctx, 2*time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.Less(t, wait, -50*time.Second, "one that came due since the last claim counts, as already due")
}

// urlChangedAt reads when a subscription's URL last changed.
func urlChangedAt(t *testing.T, db *testkit.Database, id string) time.Time {
	t.Helper()
	var at time.Time
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT url_changed_at FROM subscriptions WHERE id = $1`, id).Scan(&at))
	return at
}

// TestURLChangedAtFollowsTheURL: set on creation, moved by a new URL and
// by nothing else.
func TestURLChangedAtFollowsTheURL(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	sub := createSub(t, st, "s", "*")
	created := urlChangedAt(t, db, "s")
	require.True(t, created.Equal(sub.CreatedAt), "set on creation")

	same, paused := sub.URL, domain.SubscriptionPaused
	for _, p := range []store.SubscriptionPatch{
		{URL: &same},
		{State: &paused, EventTypes: []string{"x"}, Settings: &domain.DeliverySettings{RatePerSecond: 3}},
	} {
		_, err := st.UpdateSubscription(ctx, store.Unscoped, "s", p)
		require.NoError(t, err)
		require.True(t, urlChangedAt(t, db, "s").Equal(created), "%+v is no change of URL", p)
	}
	_, _, err := st.RotateSecret(ctx, store.Unscoped, "s", "another-secret", 0)
	require.NoError(t, err)
	require.True(t, urlChangedAt(t, db, "s").Equal(created), "a rotation is no change of URL")

	other := "http://127.0.0.1:2/elsewhere"
	got, err := st.UpdateSubscription(ctx, store.Unscoped, "s", store.SubscriptionPatch{URL: &other})
	require.NoError(t, err)
	require.True(t, urlChangedAt(t, db, "s").Equal(got.UpdatedAt), "a new URL moves it")
}

// TestRedeliverSinceURLChange: for a caller that may not read, deliveries
// accepted before their subscription's URL changed are not sent to the
// new URL, by a single or a bulk redelivery; later ones are, and a caller
// that may read sends either.
func TestRedeliverSinceURLChange(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "s", "*")
	createSub(t, st, "other", "*")
	ingest2 := func(id string) {
		_, err := st.IngestEvent(ctx, event(id, "x"))
		require.NoError(t, err)
	}
	finish := func() {
		_, err := db.Pool.Exec(ctx, `UPDATE deliveries SET status = 'failed', next_attempt_at = NULL`)
		require.NoError(t, err)
	}
	ingest2("before")
	finish()
	url := "http://127.0.0.1:2/new"
	_, err := st.UpdateSubscription(ctx, store.Unscoped, "s", store.SubscriptionPatch{URL: &url})
	require.NoError(t, err)
	changed := urlChangedAt(t, db, "s")
	ingest2("after")
	finish()

	_, err = st.Redeliver(ctx, store.Unscoped, "before", "", true)
	require.ErrorIs(t, err, domain.ErrBeforeURLChange)
	_, err = st.Redeliver(ctx, store.Unscoped, "before", "s", true)
	require.ErrorIs(t, err, domain.ErrBeforeURLChange)
	require.Zero(t, count(t, db, `SELECT count(*) FROM deliveries WHERE status = 'pending'`), "refused: nothing queued, not even the other subscription's")
	refs, err := st.Redeliver(ctx, store.Unscoped, "before", "other", true)
	require.NoError(t, err)
	require.Len(t, refs, 1, "the other subscription's URL did not change")
	refs, err = st.Redeliver(ctx, store.Unscoped, "after", "", true)
	require.NoError(t, err)
	require.Len(t, refs, 2)
	finish()
	refs, err = st.Redeliver(ctx, store.Unscoped, "before", "", false)
	require.NoError(t, err)
	require.Len(t, refs, 2, "a caller that may read sends history anywhere")
	finish()

	_, err = st.RedeliverBulk(ctx, store.Unscoped, store.RedeliverFilter{SubscriptionID: "s", Limit: 1, SinceURLChange: true})
	require.ErrorIs(t, err, domain.ErrBeforeURLChange, "refused at the first page, though it holds only the later delivery")
	require.Zero(t, count(t, db, `SELECT count(*) FROM deliveries WHERE status = 'pending'`))
	res, err := st.RedeliverBulk(ctx, store.Unscoped, store.RedeliverFilter{SubscriptionID: "s", Limit: 10, From: changed, SinceURLChange: true})
	require.NoError(t, err)
	require.EqualValues(t, 1, res.Queued, "from the change on")
	finish()
	res, err = st.RedeliverBulk(ctx, store.Unscoped, store.RedeliverFilter{SubscriptionID: "s", Limit: 10})
	require.NoError(t, err)
	require.EqualValues(t, 2, res.Queued)
}

// TestURLOnlyWhenIdle: a caller that may not read cannot give a
// subscription a new URL while deliveries wait, which would then go there.
func TestURLOnlyWhenIdle(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	sub := createSub(t, st, "s", "*")
	ingest(t, st, "waiting")
	created := urlChangedAt(t, db, "s")

	url := "http://127.0.0.1:2/new"
	_, err := st.UpdateSubscription(ctx, store.Unscoped, "s", store.SubscriptionPatch{URL: &url, URLOnlyWhenIdle: true})
	require.ErrorIs(t, err, domain.ErrBeforeURLChange)
	got, err := st.GetSubscription(ctx, store.Unscoped, "s")
	require.NoError(t, err)
	require.Equal(t, sub.URL, got.URL, "nothing changed")
	require.True(t, urlChangedAt(t, db, "s").Equal(created))

	same := sub.URL
	_, err = st.UpdateSubscription(ctx, store.Unscoped, "s", store.SubscriptionPatch{URL: &same, EventTypes: []string{"y"}, URLOnlyWhenIdle: true})
	require.NoError(t, err, "the same URL is no change")

	_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET status = 'delivered', next_attempt_at = NULL`)
	require.NoError(t, err)
	got, err = st.UpdateSubscription(ctx, store.Unscoped, "s", store.SubscriptionPatch{URL: &url, URLOnlyWhenIdle: true})
	require.NoError(t, err, "no delivery waits")
	require.Equal(t, url, got.URL)
}

// TestClaimDueCarriesTheEventsTraceContext: the trace context an event was
// stored with, alone or in a batch, comes back with each of its deliveries
// the scheduler claims, so it can republish them in that trace; an event
// stored without one gives none.
func TestClaimDueCarriesTheEventsTraceContext(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "s", "*")
	createSub(t, st, "s2", "*")
	const single, batched = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	e := event("traced", "x.y")
	e.TraceParent = single
	_, err := st.IngestEvent(ctx, e)
	require.NoError(t, err)
	b1, b2 := event("batched", "x.y"), event("untraced", "x.y")
	b1.TraceParent = batched
	_, err = st.IngestEvents(ctx, []domain.Event{b1, b2})
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET enqueued_at = now() - interval '1 hour'`)
	require.NoError(t, err)

	due, err := st.ClaimDue(ctx, 100, 30*time.Second)
	require.NoError(t, err)
	got := map[string][]string{}
	for _, d := range due {
		got[d.EventID] = append(got[d.EventID], d.TraceParent)
	}
	require.Equal(t, map[string][]string{"traced": {single, single}, "batched": {batched, batched}, "untraced": {"", ""}}, got)
}
