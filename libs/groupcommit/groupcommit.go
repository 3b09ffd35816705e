// Package groupcommit runs concurrent calls together: calls that arrive
// while a group is running queue up, and the next group takes them all at
// once, up to a maximum. There is no timer: a call that finds a group slot
// free runs at once, alone or with whatever is queued, so a lone call waits
// for nothing but its own round trip, and under load one statement or one
// pipeline serves many callers (ADR 0023, ADR 0025). Ingest stores single
// events with it; the delivery worker claims, records outcomes, admits and
// releases with it.
package groupcommit

import (
	"context"
	"slices"
	"sync"
)

// Result is one member's answer from a group.
type Result[Out any] struct {
	Value Out
	Err   error
}

// Each answers every member of a group of n with the same error: a group
// that failed as a whole.
func Each[Out any](n int, err error) []Result[Out] {
	res := make([]Result[Out], n)
	for i := range res {
		res[i].Err = err
	}
	return res
}

// Group gathers calls into groups and runs each group with one call of its
// run function.
type Group[In, Out any] struct {
	run      func(ctx context.Context, in []In) []Result[Out]
	maxGroup int
	maxFlush int

	mu       sync.Mutex
	queue    []*call[In, Out]
	flushing int
	closed   bool
	flushes  sync.WaitGroup
}

type call[In, Out any] struct {
	in   In
	done chan struct{}
	res  Result[Out] // set before done is closed
}

// New returns a Group that runs at most maxFlush groups at once, each of at
// most maxGroup members. run must answer every member, in order; it is
// called without any one caller's context (context.Background), so that a
// caller giving up never fails the others.
func New[In, Out any](maxGroup, maxFlush int, run func(ctx context.Context, in []In) []Result[Out]) *Group[In, Out] {
	return &Group[In, Out]{run: run, maxGroup: maxGroup, maxFlush: maxFlush}
}

// Do runs in with the calls gathered around it and returns its answer. If
// ctx ends while in is still queued, it is taken out, never runs, and ctx's
// error is returned; once its group has begun, Do waits for the group's
// answer, because the call may have changed state (a row committed, a claim
// taken) that the caller must know of. After Close, Do runs in alone, with
// ctx.
func (g *Group[In, Out]) Do(ctx context.Context, in In) (Out, error) {
	c := &call[In, Out]{in: in, done: make(chan struct{})}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		res := g.run(ctx, []In{in})
		return res[0].Value, res[0].Err
	}
	g.queue = append(g.queue, c)
	if g.flushing < g.maxFlush {
		g.flushing++
		g.flushes.Add(1)
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
	return c.res.Value, c.res.Err
}

// Queued is the number of calls waiting for a group; tests use it to know
// that a call has been queued.
func (g *Group[In, Out]) Queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// Running is the number of groups being run at the moment.
func (g *Group[In, Out]) Running() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.flushing
}

// Close runs what is queued and waits until every group has been answered;
// later calls run alone.
func (g *Group[In, Out]) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.flushes.Wait()
}

// flush runs groups from the queue until it is empty.
func (g *Group[In, Out]) flush() {
	defer g.flushes.Done()
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
