package api

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// Group commit for POST /events (ADR 0023).
const (
	// maxIngestGroup is the most events stored by one statement.
	maxIngestGroup = 64
	// maxIngestFlushes is how many groups may be committing at once. A
	// request that finds every one busy waits in the queue, and the next
	// group to start takes it with the others that arrived meanwhile. One
	// lets the groups grow with the load instead of splitting it into
	// small statements that contend for the same cores (ADR 0023: about
	// 2,200 single posts/s stored against 1,700 with four).
	maxIngestFlushes = 1
)

// ingestBatcher stores concurrent single events together: events that
// arrive while maxIngestFlushes groups are being committed queue up and
// are stored by the next group, with store.IngestEvents, in one statement
// and one commit. There is no timer: a request that finds a flush slot free
// is stored at once, alone or with whatever is queued, so a lone request
// waits for nothing but its own commit.
//
// A request is answered only once its own event and deliveries are
// committed. An event the group did not create (its id is known, or came
// earlier in the same group) is stored again alone with store.IngestEvent,
// which writes nothing and returns the stored event: the answer is today's
// 200. When the group's statement fails, a transient failure is every
// member's (503), and any other failure sends each member back to be
// stored alone, so that one bad row fails only itself.
type ingestBatcher struct {
	store     Store
	maxGroup  int
	maxFlush  int
	mu        sync.Mutex
	queue     []*ingestCall
	flushing  int
	closed    bool
	flushesWG sync.WaitGroup
}

// ingestCall is one request waiting for its group.
type ingestCall struct {
	event domain.Event
	done  chan struct{}
	// Set before done is closed.
	res   store.IngestResult
	err   error
	alone bool // store the event alone: not created by the group, or the group failed
}

func newIngestBatcher(st Store, maxGroup, maxFlush int) *ingestBatcher {
	return &ingestBatcher{store: st, maxGroup: maxGroup, maxFlush: maxFlush}
}

// ingest stores a validated event as store.IngestEvent does, in a group
// with the events of concurrent requests. If ctx ends while the event is
// still queued it is taken out and not stored; once its group has begun,
// the event may be committed without the caller hearing of it, and its
// deliveries are then published by the retry scheduler's sweep.
func (b *ingestBatcher) ingest(ctx context.Context, e domain.Event) (store.IngestResult, error) {
	c := &ingestCall{event: e, done: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return b.store.IngestEvent(ctx, e)
	}
	b.queue = append(b.queue, c)
	if b.flushing < b.maxFlush {
		b.flushing++
		b.flushesWG.Add(1)
		go b.flush() //nolint:contextcheck // a flush serves many callers and runs without any one caller's context
	}
	b.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		b.mu.Lock()
		if i := slices.Index(b.queue, c); i >= 0 {
			b.queue = slices.Delete(b.queue, i, i+1)
			b.mu.Unlock()
			return store.IngestResult{}, ctx.Err()
		}
		b.mu.Unlock()
		<-c.done // its group has begun: wait for its outcome
	}
	if c.alone {
		return b.store.IngestEvent(ctx, e)
	}
	return c.res, c.err
}

// flush commits groups from the queue until it is empty.
func (b *ingestBatcher) flush() {
	defer b.flushesWG.Done()
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.flushing--
			b.mu.Unlock()
			return
		}
		n := min(len(b.queue), b.maxGroup)
		group := slices.Clone(b.queue[:n])
		b.queue = slices.Delete(b.queue, 0, n)
		b.mu.Unlock()
		b.commit(group)
	}
}

// commit stores a group and answers each of its members. The statement
// runs without any one request's context, so that a caller giving up does
// not fail its neighbours.
func (b *ingestBatcher) commit(group []*ingestCall) {
	ctx := context.Background()
	defer func() {
		for _, c := range group {
			close(c.done)
		}
	}()
	if len(group) == 1 {
		c := group[0]
		c.res, c.err = b.store.IngestEvent(ctx, c.event)
		return
	}
	events := make([]domain.Event, len(group))
	for i, c := range group {
		events[i] = c.event
	}
	res, err := b.store.IngestEvents(ctx, events)
	if err != nil {
		for _, c := range group {
			if errors.Is(err, domain.ErrUnavailable) {
				c.err = err
			} else {
				c.alone = true
			}
		}
		return
	}
	deliveries := make(map[string][]store.DeliveryRef, len(group))
	for _, d := range res.Deliveries {
		deliveries[d.EventID] = append(deliveries[d.EventID], d)
	}
	for i, c := range group {
		if !res.Created[i] {
			c.alone = true
			continue
		}
		e := c.event
		e.ReceivedAt = res.ReceivedAt[i]
		c.res = store.IngestResult{Event: e, Created: true, Deliveries: deliveries[e.ID]}
	}
}

// close stores what is queued and waits for every group to be committed;
// events that arrive later are stored alone.
func (b *ingestBatcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.flushesWG.Wait()
}
