package api

import (
	"context"
	"errors"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/groupcommit"
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

// ingestBatcher stores concurrent single events together with
// libs/groupcommit: events that arrive while maxIngestFlushes groups are
// being committed queue up and are stored by the next group, with
// store.IngestEvents, in one statement and one commit. There is no timer: a
// request that finds a flush slot free is stored at once, alone or with
// whatever is queued, so a lone request waits for nothing but its own
// commit.
//
// A request is answered only once its own event and deliveries are
// committed. An event the group did not create (its id is known, or came
// earlier in the same group) is stored again alone with store.IngestEvent,
// which writes nothing and returns the stored event: the answer is today's
// 200. When the group's statement fails, a transient failure is every
// member's (503), and any other failure sends each member back to be
// stored alone, so that one bad row fails only itself. If a request's
// context ends while its event is still queued the event is taken out and
// not stored; once its group has begun, the event may be committed without
// the caller hearing of it, and its deliveries are then published by the
// retry scheduler's sweep.
type ingestBatcher struct {
	store  Store
	groups *groupcommit.Group[domain.Event, stored]
}

// stored is a group's answer for one event: its result, or that it must
// be stored alone.
type stored struct {
	res   store.IngestResult
	alone bool
}

func newIngestBatcher(st Store, maxGroup, maxFlush int) *ingestBatcher {
	b := &ingestBatcher{store: st}
	b.groups = groupcommit.New(maxGroup, maxFlush, b.commit)
	return b
}

// ingest stores a validated event as store.IngestEvent does, in a group
// with the events of concurrent requests.
func (b *ingestBatcher) ingest(ctx context.Context, e domain.Event) (store.IngestResult, error) {
	s, err := b.groups.Do(ctx, e)
	if err == nil && s.alone {
		return b.store.IngestEvent(ctx, e)
	}
	return s.res, err
}

// commit stores a group and answers each of its members.
func (b *ingestBatcher) commit(ctx context.Context, events []domain.Event) []groupcommit.Result[stored] {
	out := make([]groupcommit.Result[stored], len(events))
	if len(events) == 1 {
		res, err := b.store.IngestEvent(ctx, events[0])
		out[0] = groupcommit.Result[stored]{Value: stored{res: res}, Err: err}
		return out
	}
	res, err := b.store.IngestEvents(ctx, events)
	if err != nil {
		if errors.Is(err, domain.ErrUnavailable) {
			return groupcommit.Each[stored](len(events), err)
		}
		for i := range out {
			out[i].Value.alone = true
		}
		return out
	}
	deliveries := make(map[string][]store.DeliveryRef, len(events))
	for _, d := range res.Deliveries {
		deliveries[d.EventID] = append(deliveries[d.EventID], d)
	}
	for i, e := range events {
		if !res.Created[i] {
			out[i].Value.alone = true
			continue
		}
		e.ReceivedAt = res.ReceivedAt[i]
		out[i].Value.res = store.IngestResult{Event: e, Created: true, Deliveries: deliveries[e.ID]}
	}
	return out
}

// close stores what is queued and waits for every group to be committed;
// events that arrive later are stored alone.
func (b *ingestBatcher) close() { b.groups.Close() }
