package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/seal"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// deliveryState is a delivery's row as the tests check it, with the number
// of attempts stored for it.
type deliveryState struct {
	Status   domain.DeliveryStatus
	Attempts int
	Next     *time.Time
	LastErr  string
	Stored   int
}

func stateOf(t *testing.T, db *testkit.Database, id int64) deliveryState {
	t.Helper()
	var (
		s    deliveryState
		next pgtype.Timestamptz
	)
	require.NoError(t, db.Pool.QueryRow(context.Background(), `
		SELECT status, attempts, next_attempt_at, last_error, (SELECT count(*) FROM attempts WHERE delivery_id = d.id)
		FROM deliveries d WHERE id = $1`, id).Scan(&s.Status, &s.Attempts, &next, &s.LastErr, &s.Stored))
	if next.Valid {
		s.Next = &next.Time
	}
	return s
}

// ingestFor stores an event of type typ (matched by one subscription) and
// returns its one delivery.
func ingestFor(t *testing.T, st *store.Store, eventID, typ string) int64 {
	t.Helper()
	res, err := st.IngestEvent(context.Background(), event(eventID, typ))
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 1)
	return res.Deliveries[0].ID
}

func claim(t *testing.T, st *store.Store, id int64) store.Job {
	t.Helper()
	job, err := st.ClaimDelivery(context.Background(), id, time.Minute, 0)
	require.NoError(t, err)
	return job
}

// attemptOf is an attempt made under job's claim that got code.
func attemptOf(job store.Job, code int) domain.Attempt {
	a := domain.Attempt{DeliveryID: job.DeliveryID, Number: job.Attempt, StartedAt: time.Now(), Duration: 7 * time.Millisecond, StatusCode: &code, Instance: "w1"}
	if code >= 300 {
		a.ErrorClass, a.Error = domain.ErrorHTTPStatus, fmt.Sprintf("HTTP %d", code)
	}
	return a
}

// apply applies outcomes in one call and requires the call to succeed.
func apply(t *testing.T, st *store.Store, outcomes ...store.Outcome) []error {
	t.Helper()
	applied, err := st.ApplyOutcomes(context.Background(), outcomes)
	require.NoError(t, err)
	require.Len(t, applied, len(outcomes))
	return errorsOf(applied)
}

// errorsOf is each outcome's error; nil for nil.
func errorsOf(applied []store.Applied) []error {
	if applied == nil {
		return nil
	}
	errs := make([]error, len(applied))
	for i, a := range applied {
		errs[i] = a.Err
	}
	return errs
}

func TestApplyOutcomesByKind(t *testing.T) {
	st, db := setup(t)
	due := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	tests := []struct {
		name string
		// failedBefore is how many attempts failed before the claim the
		// outcome is about.
		failedBefore int
		outcome      func(store.Job) store.Outcome
		want         deliveryState
		wantSub      domain.SubscriptionState
	}{
		{name: "delivered", outcome: func(j store.Job) store.Outcome { return store.Delivered(attemptOf(j, 204)) },
			want: deliveryState{Status: domain.DeliveryDelivered, Attempts: 1, Stored: 1}},
		{name: "retrying", outcome: func(j store.Job) store.Outcome { return store.Retrying(attemptOf(j, 503), due) },
			want: deliveryState{Status: domain.DeliveryRetrying, Attempts: 1, Next: &due, LastErr: "HTTP 503", Stored: 1}},
		{name: "failed", failedBefore: 2, outcome: func(j store.Job) store.Outcome { return store.Failed(attemptOf(j, 500)) },
			want: deliveryState{Status: domain.DeliveryFailed, Attempts: 3, LastErr: "HTTP 500", Stored: 3}},
		{name: "gone", outcome: func(j store.Job) store.Outcome { return store.Gone(attemptOf(j, 410), "endpoint answered 410 Gone") },
			want:    deliveryState{Status: domain.DeliveryFailed, Attempts: 1, LastErr: "HTTP 410", Stored: 1},
			wantSub: domain.SubscriptionDisabled},
		{name: "released first attempt", outcome: func(j store.Job) store.Outcome { return store.Released(j.DeliveryID, j.Attempt, due) },
			want: deliveryState{Status: domain.DeliveryPending, Attempts: 0, Next: &due}},
		{name: "released later attempt", failedBefore: 1, outcome: func(j store.Job) store.Outcome { return store.Released(j.DeliveryID, j.Attempt, due) },
			want: deliveryState{Status: domain.DeliveryRetrying, Attempts: 1, Next: &due, Stored: 1}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sub, typ := fmt.Sprintf("s%d", i), fmt.Sprintf("t%d", i)
			createSub(t, st, sub, typ)
			id := ingestFor(t, st, "e"+typ, typ)
			for range tt.failedBefore {
				fail(t, st, claim(t, st, id), time.Now().Add(-time.Second))
			}
			job := claim(t, st, id)
			o := tt.outcome(job)
			require.NoError(t, apply(t, st, o)[0], o.String())

			got := stateOf(t, db, id)
			if tt.want.Next == nil {
				require.Nil(t, got.Next, "a final delivery is due never")
			} else {
				require.NotNil(t, got.Next)
				require.WithinDuration(t, *tt.want.Next, *got.Next, time.Millisecond)
			}
			got.Next, tt.want.Next = nil, nil
			require.Equal(t, tt.want, got)
			s, err := st.GetSubscription(context.Background(), store.Unscoped, sub)
			require.NoError(t, err)
			wantSub := tt.wantSub
			if wantSub == "" {
				wantSub = domain.SubscriptionActive
			}
			require.Equal(t, wantSub, s.State)
		})
	}
}

// TestApplyOutcomesGoneFailsWaitingDeliveries pins that a Gone outcome
// disables its subscription and fails its waiting deliveries in the same
// call, including one that call itself set retrying, while a delivery
// another worker is attempting finishes normally.
func TestApplyOutcomesGoneFailsWaitingDeliveries(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "gone", "g")
	createSub(t, st, "other", "o")
	retired := claim(t, st, ingestFor(t, st, "retired", "g"))
	pending := ingestFor(t, st, "pending", "g")
	retrying := ingestFor(t, st, "retrying", "g")
	fail(t, st, claim(t, st, retrying), time.Now().Add(time.Hour))
	sameCall := claim(t, st, ingestFor(t, st, "same-call", "g"))
	inFlight := claim(t, st, ingestFor(t, st, "in-flight", "g"))
	neighbour := claim(t, st, ingestFor(t, st, "neighbour", "o"))

	errs := apply(t, st,
		store.Retrying(attemptOf(sameCall, 500), time.Now().Add(time.Minute)),
		store.Gone(attemptOf(retired, 410), "endpoint answered 410 Gone"),
		store.Delivered(attemptOf(neighbour, 200)),
	)
	require.Equal(t, []error{nil, nil, nil}, errs)

	sub, err := st.GetSubscription(ctx, store.Unscoped, "gone")
	require.NoError(t, err)
	require.Equal(t, domain.SubscriptionDisabled, sub.State)
	require.Equal(t, "endpoint answered 410 Gone", sub.StateReason)
	require.Equal(t, domain.DeliveryFailed, stateOf(t, db, retired.DeliveryID).Status)
	for name, id := range map[string]int64{"pending": pending, "retrying": retrying, "retried in the same call": sameCall.DeliveryID} {
		got := stateOf(t, db, id)
		require.Equal(t, domain.DeliveryFailed, got.Status, name)
		require.Equal(t, "subscription disabled: endpoint answered 410 Gone", got.LastErr, name)
		require.Nil(t, got.Next, name)
	}
	require.Equal(t, 1, stateOf(t, db, sameCall.DeliveryID).Stored, "its attempt is stored")
	require.Equal(t, domain.DeliveryProcessing, stateOf(t, db, inFlight.DeliveryID).Status, "an attempt in flight finishes normally")
	require.NoError(t, st.RecordAttempt(ctx, store.Failed(attemptOf(inFlight, 410))))
	require.Equal(t, domain.DeliveryDelivered, stateOf(t, db, neighbour.DeliveryID).Status)
	other, err := st.GetSubscription(ctx, store.Unscoped, "other")
	require.NoError(t, err)
	require.Equal(t, domain.SubscriptionActive, other.State)
}

// TestApplyOutcomesDeletedDeliveryFailsOnlyItself pins that a delivery
// deleted with its subscription while its attempt was in flight is
// domain.ErrNotFound, and its neighbours in the same call are applied.
func TestApplyOutcomesDeletedDeliveryFailsOnlyItself(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "keep", "k")
	createSub(t, st, "doomed", "d")
	k1 := claim(t, st, ingestFor(t, st, "k1", "k"))
	k2 := claim(t, st, ingestFor(t, st, "k2", "k"))
	k3 := claim(t, st, ingestFor(t, st, "k3", "k"))
	d1 := claim(t, st, ingestFor(t, st, "d1", "d"))
	d2 := claim(t, st, ingestFor(t, st, "d2", "d"))
	d3 := claim(t, st, ingestFor(t, st, "d3", "d"))
	_, err := st.DeleteSubscription(ctx, store.Unscoped, "doomed")
	require.NoError(t, err)

	due := time.Now().Add(time.Hour)
	errs := apply(t, st,
		store.Delivered(attemptOf(k1, 200)),
		store.Delivered(attemptOf(d1, 200)),
		store.Released(d2.DeliveryID, d2.Attempt, due),
		store.Retrying(attemptOf(k2, 500), due),
		store.Gone(attemptOf(d3, 410), "gone"),
		store.Outcome{},
		store.Released(k3.DeliveryID, k3.Attempt, due),
	)
	for i, want := range []error{nil, domain.ErrNotFound, domain.ErrNotFound, nil, domain.ErrNotFound, nil, nil} {
		if i == 5 {
			require.Error(t, errs[i], "a zero Outcome is refused")
			continue
		}
		if want == nil {
			require.NoError(t, errs[i], "outcome %d", i)
		} else {
			require.ErrorIs(t, errs[i], want, "outcome %d", i)
		}
	}
	require.Equal(t, deliveryState{Status: domain.DeliveryDelivered, Attempts: 1, Stored: 1}, stateOf(t, db, k1.DeliveryID))
	require.Equal(t, domain.DeliveryRetrying, stateOf(t, db, k2.DeliveryID).Status)
	require.Equal(t, domain.DeliveryPending, stateOf(t, db, k3.DeliveryID).Status)
	var orphans int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM attempts a WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id)`).Scan(&orphans))
	require.Zero(t, orphans)
}

// TestApplyOutcomesLapsedClaim pins that a worker whose lease lapsed and
// whose delivery another worker took over stores its attempt but moves
// nothing, and that applying the same outcomes again (a retry after a lost
// answer) stores nothing twice.
func TestApplyOutcomesLapsedClaim(t *testing.T) {
	st, db := setup(t)
	ctx := context.Background()
	createSub(t, st, "s", "*")
	recorded, released, current := ingest(t, st, "recorded"), ingest(t, st, "released"), ingest(t, st, "current")
	first, err := st.ClaimDeliveries(ctx, []int64{recorded, released}, time.Millisecond, lapsed)
	require.NoError(t, err)
	second, err := st.ClaimDeliveries(ctx, []int64{recorded, released}, time.Minute, 0)
	require.NoError(t, err)
	for i := range second {
		require.NoError(t, second[i].Err)
		require.Equal(t, first[i].Job.Attempt+1, second[i].Job.Attempt)
	}
	now := claim(t, st, current)

	outcomes := []store.Outcome{
		store.Retrying(attemptOf(first[0].Job, 500), time.Now()),
		store.Released(released, first[1].Job.Attempt, time.Now()),
		store.Delivered(attemptOf(now, 200)),
	}
	errs := apply(t, st, outcomes...)
	require.ErrorIs(t, errs[0], domain.ErrNotClaimable)
	require.ErrorIs(t, errs[1], domain.ErrNotClaimable)
	require.NoError(t, errs[2])
	require.Equal(t, deliveryState{Status: domain.DeliveryProcessing, Attempts: 2, Stored: 1}, without(stateOf(t, db, recorded)),
		"the lapsed attempt is stored; the delivery stays with its new claim")
	require.Equal(t, deliveryState{Status: domain.DeliveryProcessing, Attempts: 2}, without(stateOf(t, db, released)))

	errs = apply(t, st, outcomes...)
	require.ErrorIs(t, errs[2], domain.ErrNotClaimable, "applied already")
	require.Equal(t, 1, stateOf(t, db, current).Stored, "an attempt is stored once")
	require.Equal(t, 1, stateOf(t, db, recorded).Stored)
}

// without drops the due time, which the lease sets.
func without(s deliveryState) deliveryState {
	s.Next = nil
	return s
}

func TestApplyOutcomesWholeCallFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fault   func(t *testing.T, db *testkit.Database) context.Context
		wantErr string
	}{
		{"cancelled context", func(_ *testing.T, _ *testkit.Database) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, "context canceled"},
		{"last statement fails", func(t *testing.T, db *testkit.Database) context.Context {
			// Disabling the subscription runs last; make it fail.
			_, err := db.Pool.Exec(context.Background(), `
				CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
				CREATE TRIGGER refuse BEFORE UPDATE ON subscriptions FOR EACH ROW EXECUTE FUNCTION refuse();`)
			require.NoError(t, err)
			return context.Background()
		}, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, db := setup(t)
			createSub(t, st, "s", "*")
			delivered, released, gone := claim(t, st, ingest(t, st, "a")), claim(t, st, ingest(t, st, "b")), claim(t, st, ingest(t, st, "c"))
			ctx := tt.fault(t, db)

			applied, err := st.ApplyOutcomes(ctx, []store.Outcome{
				store.Delivered(attemptOf(delivered, 200)),
				store.Released(released.DeliveryID, released.Attempt, time.Now()),
				store.Gone(attemptOf(gone, 410), "gone"),
			})
			require.ErrorContains(t, err, tt.wantErr)
			require.Nil(t, applied)
			for _, j := range []store.Job{delivered, released, gone} {
				require.Equal(t, deliveryState{Status: domain.DeliveryProcessing, Attempts: 1}, without(stateOf(t, db, j.DeliveryID)), "nothing applied")
			}
			sub, err := st.GetSubscription(context.Background(), store.Unscoped, "s")
			require.NoError(t, err)
			require.Equal(t, domain.SubscriptionActive, sub.State)
		})
	}
}

func TestClaimDeliveries(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	ctx := context.Background()
	keyring := func() *seal.Keyring {
		key, err := seal.ParseKey(seal.NewKey())
		require.NoError(t, err)
		keys, err := seal.NewKeyring(key)
		require.NoError(t, err)
		return keys
	}
	st := store.New(db.Pool, store.WithSecretKeys(keyring()))
	sub := createSub(t, st, "s", "ok")
	createSub(t, st, "paused", "paused")
	paused := ingestFor(t, st, "paused", "paused")
	_, err := db.Pool.Exec(ctx, `UPDATE subscriptions SET state = 'paused' WHERE id = 'paused'`)
	require.NoError(t, err)
	// Sealed with a key st does not have: its secret does not open.
	_, err = store.New(db.Pool, store.WithSecretKeys(keyring())).CreateSubscription(ctx, domain.Subscription{
		ID: "broken", URL: "http://127.0.0.1:1/broken", EventTypes: []string{"broken"}, Secret: signing.GenerateSecret()})
	require.NoError(t, err)

	claimable, claimable2 := ingestFor(t, st, "claimable", "ok"), ingestFor(t, st, "claimable2", "ok")
	notDue := ingestFor(t, st, "not-due", "ok")
	fail(t, st, claim(t, st, notDue), time.Now().Add(time.Hour))
	final := ingestFor(t, st, "final", "ok")
	require.NoError(t, st.RecordAttempt(ctx, store.Delivered(attemptOf(claim(t, st, final), 200))))
	broken := ingestFor(t, st, "broken", "broken")

	tests := []struct {
		name    string
		id      int64
		wantErr error
	}{
		{"claimable", claimable, nil},
		{"not due", notDue, domain.ErrNotClaimable},
		{"final", final, domain.ErrNotClaimable},
		{"paused subscription", paused, domain.ErrNotClaimable},
		{"duplicate id", claimable, domain.ErrNotClaimable},
		{"unknown id", 1 << 40, domain.ErrNotClaimable},
		{"secret does not open", broken, domain.ErrSecretUnavailable},
		{"claimable after the others", claimable2, nil},
	}
	ids := make([]int64, len(tests))
	for i, tt := range tests {
		ids[i] = tt.id
	}
	claims, err := st.ClaimDeliveries(ctx, ids, time.Minute, time.Second)
	require.NoError(t, err)
	require.Len(t, claims, len(tests))
	for i, tt := range tests {
		c := claims[i]
		require.Equal(t, tt.id, c.Job.DeliveryID, tt.name)
		if tt.wantErr != nil {
			require.ErrorIs(t, c.Err, tt.wantErr, tt.name)
			continue
		}
		require.NoError(t, c.Err, tt.name)
		require.Equal(t, 1, c.Job.Attempt, tt.name)
		require.Equal(t, "s", c.Job.SubscriptionID, tt.name)
		require.Equal(t, sub.URL, c.Job.URL, tt.name)
		require.Equal(t, []string{sub.Secret}, c.Job.Secrets, tt.name)
		require.Equal(t, tt.name == "claimable" || tt.name == "duplicate id", c.Job.Event.ID == "claimable", tt.name)
		got := stateOf(t, db, tt.id)
		require.Equal(t, domain.DeliveryProcessing, got.Status, tt.name)
		require.WithinDuration(t, time.Now().Add(time.Minute+time.Second), *got.Next, 10*time.Second, "the lease: default timeout plus margin")
	}
	got := stateOf(t, db, broken)
	require.Equal(t, domain.DeliveryPending, got.Status, "a claim whose secret does not open is given back")
	require.Zero(t, got.Attempts, "without spending its attempt")
	require.WithinDuration(t, time.Now().Add(time.Minute), *got.Next, 10*time.Second)
	require.Equal(t, deliveryState{Status: domain.DeliveryRetrying, Attempts: 1, Stored: 1}, without(stateOf(t, db, notDue)), "the retry not due is left alone")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	claims, err = st.ClaimDeliveries(cancelled, []int64{notDue}, time.Minute, 0)
	require.Error(t, err)
	require.Nil(t, claims)
	claims, err = st.ClaimDeliveries(ctx, nil, time.Minute, 0)
	require.NoError(t, err)
	require.Empty(t, claims)
}

func TestAsynchronousCommit(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	ctx := context.Background()
	tests := []struct {
		name string
		opts []store.ConnectOption
		want string
	}{
		{"default", nil, "on"},
		{"asynchronous", []store.ConnectOption{store.AsynchronousCommit()}, "off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, err := store.Connect(ctx, db.URL, 2, tt.opts...)
			require.NoError(t, err)
			defer pool.Close()
			var got string
			require.NoError(t, pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&got))
			require.Equal(t, tt.want, got)
		})
	}
}

// BenchmarkApplyOutcomes records the outcomes of 64 claimed deliveries
// (ns/op is per 64) one call each, as the worker did, and in one call. It
// reports the WAL written per outcome too (the server's, so run it alone),
// and with -v logs the calls' WAL range for pg_waldump --stats=record.
func BenchmarkApplyOutcomes(b *testing.B) {
	db := testkit.Postgres(b)
	ctx := context.Background()
	pool, err := store.Connect(ctx, db.URL, 30)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	st := store.New(pool)
	if _, err := st.CreateSubscription(ctx, domain.Subscription{ID: "s", URL: "http://127.0.0.1:1/", EventTypes: []string{"*"}, Secret: signing.GenerateSecret()}); err != nil {
		b.Fatal(err)
	}
	const size = 64
	var n atomic.Int64
	// groups ingests and claims count groups of size deliveries and returns
	// their outcomes.
	groups := func(b *testing.B, count int) [][]store.Outcome {
		out := make([][]store.Outcome, count)
		events := make([]domain.Event, size)
		for g := range out {
			for i := range events {
				events[i] = event(fmt.Sprintf("evt_%d", n.Add(1)), "order.created")
			}
			res, err := st.IngestEvents(ctx, events)
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]int64, len(res.Deliveries))
			for i, d := range res.Deliveries {
				ids[i] = d.ID
			}
			claims, err := st.ClaimDeliveries(ctx, ids, time.Minute, 0)
			if err != nil {
				b.Fatal(err)
			}
			for _, c := range claims {
				if c.Err != nil {
					b.Fatal(c.Err)
				}
				out[g] = append(out[g], store.Delivered(attemptOf(c.Job, 200)))
			}
		}
		return out
	}
	cases := []struct {
		name  string
		apply func([]store.Outcome) error
	}{
		{"one-by-one", func(os []store.Outcome) error {
			for _, o := range os {
				if err := st.RecordAttempt(ctx, o); err != nil {
					return err
				}
			}
			return nil
		}},
		{"one-call", func(os []store.Outcome) error {
			applied, err := st.ApplyOutcomes(ctx, os)
			if err != nil {
				return err
			}
			return errors.Join(errorsOf(applied)...)
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			work := groups(b, b.N)
			var lsn string
			if err := pool.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				if err := c.apply(work[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			var (
				end string
				wal float64
			)
			if err := pool.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text, pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)`, lsn).Scan(&end, &wal); err != nil {
				b.Fatal(err)
			}
			b.Logf("WAL of the calls: -s %s -e %s", lsn, end)
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "outcomes/s")
			b.ReportMetric(wal/float64(b.N*size), "WAL-B/outcome")
		})
	}
}

// TestBatchesWaitForASubscriptionBeingDeleted pins that a batch never
// deadlocks with the deletion of its deliveries' subscription. The
// deletion's cascade walks the deliveries in its own order (here the heap's:
// B, a delivery held by someone else, then A); a batch that locked A and
// then waited for B, which the deletion already holds, would close a cycle
// when the deletion reaches A, and PostgreSQL would abort one of them:
// perhaps the API's DELETE. The deletion locks its deliveries in id order
// before deleting, as batches lock theirs, so the batch waits for the
// deletion, then finds its deliveries gone.
func TestBatchesWaitForASubscriptionBeingDeleted(t *testing.T) {
	t.Parallel()
	admin := testkit.Postgres(t)
	ctx := context.Background()
	// Walk the heap, and find deadlocks quickly.
	_, err := admin.Pool.Exec(ctx, "ALTER DATABASE "+admin.Name+" SET enable_indexscan = off")
	require.NoError(t, err)
	_, err = admin.Pool.Exec(ctx, "ALTER DATABASE "+admin.Name+" SET enable_bitmapscan = off")
	require.NoError(t, err)
	_, err = admin.Pool.Exec(ctx, "ALTER DATABASE "+admin.Name+" SET deadlock_timeout = '100ms'")
	require.NoError(t, err)

	tests := []struct {
		name  string
		claim bool // claim A and B in the batch; otherwise apply outcomes of their claims
	}{
		{"ClaimDeliveries", true},
		{"ApplyOutcomes", false},
	}
	for i, tt := range tests { // one after the other: they count the database's waiting sessions
		t.Run(tt.name, func(t *testing.T) {
			pool, err := store.Connect(ctx, admin.URL, 4)
			require.NoError(t, err)
			t.Cleanup(pool.Close)
			st := store.New(pool)
			sub, typ := fmt.Sprintf("doomed%d", i), fmt.Sprintf("t%d", i)
			createSub(t, st, sub, typ)
			a, b, held := ingestFor(t, st, typ+"a", typ), ingestFor(t, st, typ+"b", typ), ingestFor(t, st, typ+"held", typ)
			var outcomes []store.Outcome
			if !tt.claim {
				for _, id := range []int64{a, b} {
					outcomes = append(outcomes, store.Delivered(attemptOf(claim(t, st, id), 200)))
				}
			}
			for _, id := range []int64{b, held, a} { // new row versions, in this order in the heap
				_, err := pool.Exec(ctx, `UPDATE deliveries SET updated_at = now() WHERE id = $1`, id)
				require.NoError(t, err)
			}
			holder, err := pool.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = holder.Rollback(ctx) }() // for a test stopped before the rollback below
			_, err = holder.Exec(ctx, `SELECT 1 FROM deliveries WHERE id = $1 FOR UPDATE`, held)
			require.NoError(t, err)

			waiting := func(n int) {
				t.Helper()
				require.Eventually(t, func() bool {
					var got int
					err := admin.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, admin.Name).Scan(&got)
					return err == nil && got == n
				}, 5*time.Second, 10*time.Millisecond)
			}
			deleted := make(chan error, 1)
			go func() { _, err := st.DeleteSubscription(ctx, store.Unscoped, sub); deleted <- err }()
			waiting(1) // the deletion has taken B and waits for the held delivery
			// The batch's answer: an error for each delivery, or for the call.
			type answer struct {
				each []error
				err  error
			}
			batch := make(chan answer, 1)
			go func() {
				if tt.claim {
					claims, err := st.ClaimDeliveries(ctx, []int64{a, b}, time.Minute, 0)
					if err != nil {
						batch <- answer{err: err}
						return
					}
					batch <- answer{each: []error{claims[0].Err, claims[1].Err}}
					return
				}
				applied, err := st.ApplyOutcomes(ctx, outcomes)
				batch <- answer{each: errorsOf(applied), err: err}
			}()
			waiting(2) // the batch waits too
			// A deadlock would be found by the server's own check, which
			// runs once a session has waited deadlock_timeout (100 ms, set
			// above) on its clock; nothing announces that the check found
			// none, so the test waits past it, three times over.
			time.Sleep(300 * time.Millisecond)
			require.NoError(t, holder.Rollback(ctx))

			require.NoError(t, <-deleted, "the deletion goes through")
			want := domain.ErrNotFound
			if tt.claim {
				want = domain.ErrNotClaimable
			}
			got := <-batch
			require.NoError(t, got.err)
			for _, err := range got.each {
				require.ErrorIs(t, err, want)
			}
		})
	}
}

// TestAttemptHeadersRoundTrip stores the attempts of one batch with their
// headers and reads them back with ListAttempts: the request lines as the
// worker made them, the response's excerpt bounded and its cookies masked,
// and the event's type to derive the rest from.
func TestAttemptHeadersRoundTrip(t *testing.T) {
	st, _ := setup(t)
	ctx := context.Background()
	createSub(t, st, "sub_a", "order.*")
	createSub(t, st, "sub_b", "order.*")
	res, err := st.IngestEvent(ctx, event("evt_h", "order.created"))
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 2)

	hostile := http.Header{"Set-Cookie": {"session=s3cr3t; HttpOnly"}, "X-A-Html": {"<b>bold</b>"}}
	for i := range 60 {
		hostile.Set(fmt.Sprintf("X-Filler-%02d", i), strings.Repeat("f", 200))
	}
	request := "User-Agent: Dispatch/test\nwebhook-timestamp: 1614265330\nwebhook-signature: v1,abc"
	var outcomes []store.Outcome
	for i, d := range res.Deliveries {
		a := attemptOf(claim(t, st, d.ID), 200)
		if i == 0 {
			a.RequestHeaders, a.ResponseHeaders = request, domain.ResponseHeaderExcerpt(hostile)
		}
		outcomes = append(outcomes, store.Delivered(a))
	}
	for _, err := range apply(t, st, outcomes...) {
		require.NoError(t, err)
	}

	got := map[string]domain.Attempt{}
	for _, a := range attemptsOf(t, st, "evt_h") {
		got[a.SubscriptionID] = a
	}
	require.Len(t, got, 2)
	first, second := got[res.Deliveries[0].SubscriptionID], got[res.Deliveries[1].SubscriptionID]
	require.Equal(t, request, first.RequestHeaders)
	require.Equal(t, "order.created", first.EventType)
	require.LessOrEqual(t, len(first.ResponseHeaders), domain.MaxResponseHeaderBytes)
	lines := domain.ParseHeaderLines(first.ResponseHeaders)
	require.LessOrEqual(t, len(lines), domain.MaxResponseHeaders)
	require.Contains(t, lines, domain.Header{Name: "Set-Cookie", Value: "session=" + domain.MaskedValue, Masked: true})
	require.Contains(t, lines, domain.Header{Name: "X-A-Html", Value: "<b>bold</b>"})
	require.NotContains(t, first.ResponseHeaders, "s3cr3t")
	require.Empty(t, second.RequestHeaders)
	require.Empty(t, second.ResponseHeaders)
}
