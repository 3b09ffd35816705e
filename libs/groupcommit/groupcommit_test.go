package groupcommit_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/groupcommit"
)

// held is a run function that doubles its input, records each group's
// size, and holds each group until release gets a value.
type held struct {
	mu      sync.Mutex
	sizes   []int
	entered chan int
	release chan struct{}
}

func newHeld() *held {
	return &held{entered: make(chan int, 100), release: make(chan struct{}, 100)}
}

func (h *held) run(_ context.Context, in []int) []groupcommit.Result[int] {
	h.mu.Lock()
	h.sizes = append(h.sizes, len(in))
	h.mu.Unlock()
	h.entered <- len(in)
	<-h.release
	res := make([]groupcommit.Result[int], len(in))
	for i, v := range in {
		res[i].Value = 2 * v
	}
	return res
}

// waitQueued returns once n calls wait in g: the calls are started by
// goroutines, so the test has no other way to know that they got there.
func waitQueued(t *testing.T, g interface{ Queued() int }, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.Queued() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", g.Queued(), n)
		}
		runtime.Gosched()
	}
}

type answer struct {
	v   int
	err error
}

func start(ctx context.Context, g *groupcommit.Group[int, int], in int) chan answer {
	ch := make(chan answer, 1)
	go func() {
		v, err := g.Do(ctx, in)
		ch <- answer{v, err}
	}()
	return ch
}

// TestCallsThatArriveWhileAGroupRunsFormTheNext: a lone call runs at once;
// the calls that queue behind it run together, at most maxGroup at a time,
// each getting its own answer.
func TestCallsThatArriveWhileAGroupRunsFormTheNext(t *testing.T) {
	t.Parallel()
	h := newHeld()
	g := groupcommit.New(3, 1, h.run)
	first := start(context.Background(), g, 0)
	require.Equal(t, 1, <-h.entered, "a lone call runs at once")
	var rest []chan answer
	for i := 1; i <= 5; i++ {
		rest = append(rest, start(context.Background(), g, i))
	}
	waitQueued(t, g, 5)
	for range 3 {
		h.release <- struct{}{}
	}
	require.Equal(t, answer{0, nil}, <-first)
	for i, ch := range rest {
		require.Equal(t, answer{2 * (i + 1), nil}, <-ch)
	}
	require.Equal(t, []int{1, 3, 2}, h.sizes)
	require.Equal(t, 0, g.Running())
}

// TestACallWhoseContextEndsWhileQueuedNeverRuns: it is taken out of the
// queue and answered with its context's error; the group running meanwhile
// is not disturbed.
func TestACallWhoseContextEndsWhileQueuedNeverRuns(t *testing.T) {
	t.Parallel()
	h := newHeld()
	g := groupcommit.New(10, 1, h.run)
	first := start(context.Background(), g, 1)
	<-h.entered
	ctx, cancel := context.WithCancel(context.Background())
	gone := start(ctx, g, 2)
	waitQueued(t, g, 1)
	cancel()
	require.ErrorIs(t, (<-gone).err, context.Canceled)
	require.Equal(t, 0, g.Queued())
	h.release <- struct{}{}
	require.Equal(t, answer{2, nil}, <-first)
	require.Equal(t, []int{1}, h.sizes, "the abandoned call never ran")
}

// TestACallWhoseContextEndsOnceItsGroupRunsGetsTheAnswer: the group may
// have changed state for it, so it waits for the outcome.
func TestACallWhoseContextEndsOnceItsGroupRunsGetsTheAnswer(t *testing.T) {
	t.Parallel()
	h := newHeld()
	g := groupcommit.New(10, 1, h.run)
	ctx, cancel := context.WithCancel(context.Background())
	ch := start(ctx, g, 4)
	<-h.entered
	cancel()
	h.release <- struct{}{}
	require.Equal(t, answer{8, nil}, <-ch)
}

// TestCloseRunsWhatIsQueued: Close returns only once every queued call is
// answered; calls after it run alone, with their own context.
func TestCloseRunsWhatIsQueued(t *testing.T) {
	t.Parallel()
	h := newHeld()
	g := groupcommit.New(10, 1, h.run)
	first := start(context.Background(), g, 1)
	<-h.entered
	second := start(context.Background(), g, 2)
	waitQueued(t, g, 1)

	closed := make(chan struct{})
	go func() { g.Close(); close(closed) }()
	h.release <- struct{}{}
	require.Equal(t, 1, <-h.entered, "the queued call runs after Close began")
	select {
	case <-closed:
		t.Fatal("Close returned while a group was running")
	default:
	}
	h.release <- struct{}{}
	<-closed
	require.Equal(t, answer{2, nil}, <-first)
	require.Equal(t, answer{4, nil}, <-second)

	type key struct{}
	var seen any
	late := groupcommit.New(10, 1, func(ctx context.Context, in []int) []groupcommit.Result[int] {
		seen = ctx.Value(key{})
		return groupcommit.Each[int](len(in), errors.New("refused"))
	})
	late.Close()
	_, err := late.Do(context.WithValue(context.Background(), key{}, "mine"), 1)
	require.EqualError(t, err, "refused")
	require.Equal(t, "mine", seen, "after Close a call runs alone with its own context")
}

// TestGroupsNeverExceedTheirBounds: under many concurrent callers no more
// than maxFlush groups run at once and none has more than maxGroup members.
func TestGroupsNeverExceedTheirBounds(t *testing.T) {
	t.Parallel()
	var running, most atomic.Int64
	var biggest atomic.Int64
	g := groupcommit.New(8, 2, func(_ context.Context, in []int) []groupcommit.Result[int] {
		n := running.Add(1)
		for m := most.Load(); n > m; m = most.Load() {
			if most.CompareAndSwap(m, n) {
				break
			}
		}
		for b := biggest.Load(); int64(len(in)) > b; b = biggest.Load() {
			if biggest.CompareAndSwap(b, int64(len(in))) {
				break
			}
		}
		runtime.Gosched()
		running.Add(-1)
		res := make([]groupcommit.Result[int], len(in))
		for i, v := range in {
			res[i].Value = v + 1
		}
		return res
	})
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	for i := range 500 {
		wg.Go(func() {
			if v, err := g.Do(context.Background(), i); err != nil || v != i+1 {
				errs <- errors.New("wrong answer")
			}
		})
	}
	wg.Wait()
	close(errs)
	require.Empty(t, errs)
	require.LessOrEqual(t, most.Load(), int64(2))
	require.LessOrEqual(t, biggest.Load(), int64(8))
}
