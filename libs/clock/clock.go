// Package clock lets code that tells the time or waits be tested without
// sleeping. Production code takes a Clock in its Config and uses Real when
// none is given; a test passes a Fake and moves its time by hand, so a
// 30-second open circuit or a 3-second wait is checked in microseconds,
// and exactly rather than within a tolerance.
package clock

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Clock tells the time and waits; production code takes one in its Config
// so tests can move time instead of sleeping.
type Clock interface {
	Now() time.Time
	// After waits for d like time.After.
	After(d time.Duration) <-chan time.Time
	// AfterFunc calls f in its own goroutine after d, like time.AfterFunc;
	// Stop reports whether it stopped f from running.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc. It is the part of *time.Timer that a Fake
// can provide too, so code written against it runs on either clock.
type Timer interface {
	// Stop prevents the function from running; it reports false when the
	// function already ran or was stopped before.
	Stop() bool
}

// Sleep waits d on c, or until ctx ends: it reports whether the whole d
// passed. Unlike a select on c.After, it stops its wait when ctx ends, so
// a Fake counts only a sleep in progress as waiting.
func Sleep(ctx context.Context, c Clock, d time.Duration) bool {
	woke := make(chan struct{})
	t := c.AfterFunc(d, func() { close(woke) })
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-woke:
		return true
	}
}

// Real returns the system clock: the functions of package time.
func Real() Clock { return system{} }

type system struct{}

func (system) Now() time.Time                         { return time.Now() }
func (system) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (system) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(d, f)
}

// Fake is a clock for tests: time moves only when Advance or Set is
// called, and waits due by then fire. A test learns that the code under
// test has gone to wait with BlockUntilWaiting, instead of sleeping and
// hoping it has. It is safe for concurrent use; the zero value is not
// usable, call NewFake.
type Fake struct {
	mu    sync.Mutex
	now   time.Time
	seq   uint64
	waits []*wait
	// changed is closed, and replaced, whenever waits changes, so that
	// BlockUntilWaiting can sleep until there is something new to count.
	changed chan struct{}
}

// wait is one pending After or AfterFunc.
type wait struct {
	f   *Fake
	at  time.Time
	seq uint64         // creation order, which breaks ties between equal deadlines
	ch  chan time.Time // After: buffered, so firing never blocks Advance
	fn  func()         // AfterFunc
}

// NewFake returns a Fake clock that reads start until it is moved.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, changed: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// After returns a channel that receives the fake time once the clock has
// been moved d past now. A wait of zero or less is due at once.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.add(d, &wait{ch: ch})
	return ch
}

// AfterFunc runs fn in its own goroutine once the clock has been moved d
// past now; fn may still be starting when the Advance or Set that fired it
// returns. A wait of zero or less is due at once.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	w := &wait{fn: fn}
	f.add(d, w)
	return w
}

func (f *Fake) add(d time.Duration, w *wait) {
	f.mu.Lock()
	w.f, w.at, w.seq = f, f.now.Add(d), f.seq
	f.seq++
	if d <= 0 {
		now := f.now
		f.mu.Unlock()
		w.fire(now)
		return
	}
	f.waits = append(f.waits, w)
	f.signal()
	f.mu.Unlock()
}

// Stop removes a pending AfterFunc; it reports whether it did so before
// the function was started.
func (w *wait) Stop() bool {
	f := w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.Index(f.waits, w)
	if i < 0 {
		return false
	}
	f.waits = slices.Delete(f.waits, i, i+1)
	f.signal()
	return true
}

func (w *wait) fire(now time.Time) {
	if w.fn != nil {
		go w.fn()
		return
	}
	w.ch <- now
}

// Advance moves the clock d forward and fires, in deadline order, every
// wait due by the new time. When it returns, the channels of due After
// calls hold their value and the due waits no longer count as waiting.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	t := f.now.Add(d)
	f.mu.Unlock()
	f.Set(t)
}

// Set moves the clock to t (forwards or back) and fires, in deadline
// order, every wait due by t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	f.now = t
	var due []*wait
	f.waits = slices.DeleteFunc(f.waits, func(w *wait) bool {
		if w.at.After(t) {
			return false
		}
		due = append(due, w)
		return true
	})
	if len(due) > 0 {
		f.signal()
	}
	f.mu.Unlock()
	slices.SortFunc(due, func(a, b *wait) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	for _, w := range due {
		w.fire(t)
	}
}

// Waiting returns how many waits are pending: After or AfterFunc calls
// that have neither fired nor been stopped.
func (f *Fake) Waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waits)
}

// BlockUntilWaiting blocks until at least n waits (After or AfterFunc, not
// stopped, not fired) are pending, or ctx ends: a test's signal that the
// code under test has gone to wait, instead of a sleep. It returns ctx's
// error when ctx ends first.
func (f *Fake) BlockUntilWaiting(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		if len(f.waits) >= n {
			f.mu.Unlock()
			return nil
		}
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// signal wakes every BlockUntilWaiting; f.mu must be held.
func (f *Fake) signal() {
	close(f.changed)
	f.changed = make(chan struct{})
}
