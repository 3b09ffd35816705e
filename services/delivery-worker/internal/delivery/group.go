package delivery

import (
	"context"
	"slices"
	"sync"
)

// result is one member's answer from a group call.
type result[Out any] struct {
	value Out
	err   error
}

// grouper runs concurrent calls together, as group commit does at ingest
// (ADR 0023, ADR 0025): calls that arrive while maxFlush groups are running
// queue up and the next group takes them, up to maxGroup at once. There is
// no timer: a call that finds a flush free runs at once, alone or with
// whatever is queued, so a lone delivery waits for nothing but its own
// round trip, and under load one statement or pipeline serves many.
type grouper[In, Out any] struct {
	run      func(ctx context.Context, in []In) []result[Out]
	maxGroup int
	maxFlush int

	mu       sync.Mutex
	queue    []*call[In, Out]
	flushing int
}

type call[In, Out any] struct {
	in   In
	done chan struct{}
	res  result[Out] // set before done is closed
}

// newGrouper returns a grouper; run must answer every member, in order.
func newGrouper[In, Out any](maxGroup, maxFlush int, run func(ctx context.Context, in []In) []result[Out]) *grouper[In, Out] {
	return &grouper[In, Out]{run: run, maxGroup: maxGroup, maxFlush: maxFlush}
}

// do runs in with the calls gathered around it. If ctx ends while in is
// still queued, it is taken out and ctx's error returned; once its group
// has begun, do waits for the group's answer, because the call may have
// changed state (a claim taken, an outcome stored) that the caller must
// know of.
func (g *grouper[In, Out]) do(ctx context.Context, in In) (Out, error) {
	c := &call[In, Out]{in: in, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if g.flushing < g.maxFlush {
		g.flushing++
		go g.flush() //nolint:contextcheck // a flush serves many callers and runs without any one caller's context
	}
	g.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		g.mu.Lock()
		if i := slices.Index(g.queue, c); i >= 0 {
			g.queue = slices.Delete(g.queue, i, i+1)
			g.mu.Unlock()
			var zero Out
			return zero, ctx.Err()
		}
		g.mu.Unlock()
		<-c.done
	}
	return c.res.value, c.res.err
}

// flush runs groups from the queue until it is empty. A group runs without
// any one caller's context, so a caller giving up never fails the others.
func (g *grouper[In, Out]) flush() {
	for {
		g.mu.Lock()
		if len(g.queue) == 0 {
			g.flushing--
			g.mu.Unlock()
			return
		}
		n := min(len(g.queue), g.maxGroup)
		group := slices.Clone(g.queue[:n])
		g.queue = slices.Delete(g.queue, 0, n)
		g.mu.Unlock()

		in := make([]In, len(group))
		for i, c := range group {
			in[i] = c.in
		}
		res := g.run(context.Background(), in)
		for i, c := range group {
			c.res = res[i]
			close(c.done)
		}
	}
}

// each answers every member of a group with the same error: a call that
// failed as a whole.
func each[Out any](n int, err error) []result[Out] {
	res := make([]result[Out], n)
	for i := range res {
		res[i].err = err
	}
	return res
}
