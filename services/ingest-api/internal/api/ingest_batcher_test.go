package api

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

// recordingStore is the real store, recording the groups it is given, and
// able to hold the first IngestEvent (the event "hold") until release is
// closed, so that the queue fills behind it, and to fail IngestEvents.
type recordingStore struct {
	*store.Store
	release  chan struct{}
	groupErr error

	mu     sync.Mutex
	groups []int
	alone  []string
}

func (s *recordingStore) IngestEvent(ctx context.Context, e domain.Event) (store.IngestResult, error) {
	if e.ID == "hold" {
		<-s.release
	}
	s.mu.Lock()
	s.alone = append(s.alone, e.ID)
	s.mu.Unlock()
	return s.Store.IngestEvent(ctx, e)
}

func (s *recordingStore) IngestEvents(ctx context.Context, events []domain.Event) (store.BatchResult, error) {
	s.mu.Lock()
	s.groups = append(s.groups, len(events))
	s.mu.Unlock()
	if s.groupErr != nil {
		return store.BatchResult{}, s.groupErr
	}
	return s.Store.IngestEvents(ctx, events)
}

func batcherStore(t *testing.T) (*recordingStore, *testkit.Database) {
	t.Helper()
	db := testkit.Postgres(t)
	st := &recordingStore{Store: store.New(db.Pool), release: make(chan struct{})}
	for _, sub := range []struct{ id, pattern string }{{"all", "*"}, {"orders", "order.*"}, {"users", "user.*"}} {
		_, err := st.CreateSubscription(context.Background(), domain.Subscription{ID: sub.id, URL: "https://example.com/" + sub.id, EventTypes: []string{sub.pattern}, State: domain.SubscriptionActive})
		require.NoError(t, err)
	}
	return st, db
}

type ingestAnswer struct {
	res store.IngestResult
	err error
}

// queueBehindHold starts the held event "hold" in b (one flush at a time),
// then the given events, and waits until they are all queued behind it.
func queueBehindHold(t *testing.T, b *ingestBatcher, events []domain.Event) []chan ingestAnswer {
	t.Helper()
	ctx := context.Background()
	go func() { _, _ = b.ingest(ctx, domain.Event{ID: "hold", Type: "x", Data: []byte(`{}`)}) }()
	require.Eventually(t, func() bool { return b.groups.Running() == 1 && b.groups.Queued() == 0 }, 5*time.Second, time.Millisecond)
	answers := make([]chan ingestAnswer, len(events))
	for i, e := range events {
		answers[i] = make(chan ingestAnswer, 1)
		go func() {
			res, err := b.ingest(ctx, e)
			answers[i] <- ingestAnswer{res, err}
		}()
		require.Eventually(t, func() bool { return b.groups.Queued() == i+1 }, 5*time.Second, time.Millisecond)
	}
	return answers
}

func ev(id, typ string) domain.Event {
	return domain.Event{ID: id, Type: typ, Source: "test", Data: []byte(`{"id":"` + id + `"}`)}
}

// TestBatcherGroupsWhatQueues: events that arrive while a group is being
// committed are stored by the next one, in one statement; a repeated id in
// the group is answered with the stored event (Created false), as
// IngestEvent answers a known id.
func TestBatcherGroupsWhatQueues(t *testing.T) {
	t.Parallel()
	st, db := batcherStore(t)
	b := newIngestBatcher(st, 64, 1)
	answers := queueBehindHold(t, b, []domain.Event{ev("a", "order.created"), ev("b", "user.created"), ev("a", "order.updated"), ev("c", "other")})
	close(st.release)

	got := make([]ingestAnswer, len(answers))
	for i, ch := range answers {
		got[i] = <-ch
		require.NoError(t, got[i].err)
	}
	require.Equal(t, []int{4}, st.groups, "the queued events are one group")
	require.Equal(t, []string{"hold", "a"}, st.alone, "only the repeated id is stored alone, to read the stored event")

	require.True(t, got[0].res.Created)
	require.ElementsMatch(t, []string{"all", "orders"}, subscriptions(got[0].res.Deliveries))
	require.True(t, got[1].res.Created)
	require.ElementsMatch(t, []string{"all", "users"}, subscriptions(got[1].res.Deliveries))
	require.False(t, got[2].res.Created, "the second post of a is not created")
	require.Empty(t, got[2].res.Deliveries)
	require.Equal(t, "order.created", got[2].res.Event.Type, "it is answered with the stored event")
	require.True(t, got[0].res.Event.ReceivedAt.Equal(got[2].res.Event.ReceivedAt))
	require.True(t, got[3].res.Created)

	stored, _, err := st.GetEvent(context.Background(), store.Unscoped, "a")
	require.NoError(t, err)
	require.True(t, stored.ReceivedAt.Equal(got[0].res.Event.ReceivedAt), "the answer's received_at is the stored one")
	deliveries, err := st.ListEventDeliveries(context.Background(), store.Unscoped, store.EventDeliveryFilter{EventID: "a", Limit: 10})
	require.NoError(t, err)
	require.Len(t, deliveries, 2)
	var events, rows int
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries)`).Scan(&events, &rows))
	require.Equal(t, 4, events)
	require.Equal(t, 1+2+2+1, rows)
}

// TestBatcherFallsBackToSingleEvents: a group whose statement fails for a
// reason other than an outage is stored event by event, so a bad row fails
// only itself; an outage is every member's 503.
func TestBatcherFallsBackToSingleEvents(t *testing.T) {
	t.Parallel()
	st, _ := batcherStore(t)
	b := newIngestBatcher(st, 64, 1)
	bad := domain.Event{ID: "bad", Type: "order.created", Data: []byte(`{not json`)} // past validation only in this test
	answers := queueBehindHold(t, b, []domain.Event{ev("a", "order.created"), bad, ev("b", "order.created")})
	close(st.release)
	for i, ch := range answers {
		a := <-ch
		if i == 1 {
			require.Error(t, a.err)
			require.NotErrorIs(t, a.err, domain.ErrUnavailable)
			continue
		}
		require.NoError(t, a.err)
		require.True(t, a.res.Created)
		require.Len(t, a.res.Deliveries, 2)
	}
	require.Equal(t, []int{3}, st.groups)
	require.ElementsMatch(t, []string{"hold", "a", "bad", "b"}, st.alone)

	st2, _ := batcherStore(t)
	st2.groupErr = fmt.Errorf("ingest: %w: connection refused", domain.ErrUnavailable)
	b = newIngestBatcher(st2, 64, 1)
	answers = queueBehindHold(t, b, []domain.Event{ev("c", "order.created"), ev("d", "order.created")})
	close(st2.release)
	for _, ch := range answers {
		require.ErrorIs(t, (<-ch).err, domain.ErrUnavailable)
	}
	require.Equal(t, []string{"hold"}, st2.alone, "an outage is not retried event by event")
}

// TestBatcherGroupSizeAndClose: a group holds at most maxGroup events; a
// caller that gives up while queued takes its event out; close waits for
// every queued event to be committed, and later events are stored alone.
func TestBatcherGroupSizeAndClose(t *testing.T) {
	t.Parallel()
	st, db := batcherStore(t)
	b := newIngestBatcher(st, 2, 1)
	answers := queueBehindHold(t, b, []domain.Event{ev("a", "x"), ev("b", "x"), ev("c", "x")})

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { _, err := b.ingest(ctx, ev("gone", "x")); gaveUp <- err }()
	require.Eventually(t, func() bool { return b.groups.Queued() == 4 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-gaveUp, context.Canceled)

	closed := make(chan struct{})
	go func() { b.close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("close returned with events queued")
	case <-time.After(50 * time.Millisecond):
	}
	close(st.release)
	<-closed
	for _, ch := range answers {
		a := <-ch
		require.NoError(t, a.err)
		require.True(t, a.res.Created)
	}
	require.Equal(t, []int{2}, st.groups, "a and b are one group, c is stored alone")
	require.Equal(t, []string{"hold", "c"}, st.alone)

	res, err := b.ingest(context.Background(), ev("late", "x"))
	require.NoError(t, err)
	require.True(t, res.Created)
	require.Equal(t, []string{"hold", "c", "late"}, st.alone, "after close events are stored alone")
	var gone bool
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM events WHERE id = 'gone')`).Scan(&gone))
	require.False(t, gone, "an event given up while queued is not stored")
}

// TestBatcherUnderLoad: 200 concurrent events, 50 of them repeats, through
// the batcher with its defaults: each id is created once, every other post
// of it answered with the stored event.
func TestBatcherUnderLoad(t *testing.T) {
	t.Parallel()
	st, db := batcherStore(t)
	b := newIngestBatcher(st, maxIngestGroup, maxIngestFlushes)
	const posts, unique = 200, 150
	answers := make([]ingestAnswer, posts)
	var wg sync.WaitGroup
	for i := range posts {
		wg.Go(func() {
			res, err := b.ingest(context.Background(), ev(fmt.Sprintf("e%d", i%unique), "order.created"))
			answers[i] = ingestAnswer{res, err}
		})
	}
	wg.Wait()
	b.close()
	created := map[string]int{}
	receivedAt := map[string]time.Time{}
	for _, a := range answers {
		require.NoError(t, a.err)
		id := a.res.Event.ID
		if a.res.Created {
			created[id]++
			require.Len(t, a.res.Deliveries, 2)
		}
		require.False(t, a.res.Event.ReceivedAt.IsZero())
		if prev, ok := receivedAt[id]; ok {
			require.True(t, prev.Equal(a.res.Event.ReceivedAt), id)
		}
		receivedAt[id] = a.res.Event.ReceivedAt
	}
	require.Len(t, created, unique)
	for id, n := range created {
		require.Equal(t, 1, n, id)
	}
	var events, rows int
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries)`).Scan(&events, &rows))
	require.Equal(t, unique, events)
	require.Equal(t, 2*unique, rows)
}

func subscriptions(refs []store.DeliveryRef) []string {
	ids := make([]string, len(refs))
	for i, d := range refs {
		ids[i] = d.SubscriptionID
	}
	return ids
}
