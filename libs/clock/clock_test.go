package clock_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
)

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestRealIsTheSystemClock(t *testing.T) {
	t.Parallel()
	c := clock.Real()
	before := time.Now()
	if now := c.Now(); now.Before(before) || now.Sub(before) > time.Second {
		t.Fatalf("Now() = %v, system clock says %v", now, before)
	}
	select {
	case <-c.After(time.Millisecond):
	case <-time.After(5 * time.Second):
		t.Fatal("After(1ms) did not fire")
	}
	ran := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(ran) })
	<-ran
	stopped := c.AfterFunc(time.Hour, func() { t.Error("a stopped AfterFunc ran") })
	if !stopped.Stop() {
		t.Fatal("Stop of a pending AfterFunc reported false")
	}
}

// fired reports whether ch holds a value, without waiting.
func fired(ch <-chan time.Time) (time.Time, bool) {
	select {
	case at := <-ch:
		return at, true
	default:
		return time.Time{}, false
	}
}

func TestFakeAfterFiresOnlyWhenTimeIsMoved(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		wait  time.Duration
		moves []time.Duration // Advance steps, in order
		fires bool
	}{
		{"not moved", time.Second, nil, false},
		{"moved short", time.Second, []time.Duration{999 * time.Millisecond}, false},
		{"moved exactly", time.Second, []time.Duration{time.Second}, true},
		{"moved in steps", time.Second, []time.Duration{400 * time.Millisecond, 600 * time.Millisecond}, true},
		{"moved past", time.Second, []time.Duration{time.Hour}, true},
		{"zero is due at once", 0, nil, true},
		{"negative is due at once", -time.Second, nil, true},
		{"moved back", time.Second, []time.Duration{-time.Hour, time.Hour}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := clock.NewFake(epoch)
			ch := f.After(tt.wait)
			for _, d := range tt.moves {
				f.Advance(d)
			}
			at, ok := fired(ch)
			if ok != tt.fires {
				t.Fatalf("fired = %v, want %v", ok, tt.fires)
			}
			if ok && !at.Equal(f.Now()) {
				t.Fatalf("received %v, want the fake time %v", at, f.Now())
			}
			wantWaiting := 1
			if tt.fires {
				wantWaiting = 0
			}
			if got := f.Waiting(); got != wantWaiting {
				t.Fatalf("Waiting() = %d, want %d", got, wantWaiting)
			}
		})
	}
}

func TestFakeNowAndSet(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(epoch)
	if !f.Now().Equal(epoch) {
		t.Fatalf("Now() = %v, want %v", f.Now(), epoch)
	}
	f.Advance(90 * time.Second)
	if got := f.Now().Sub(epoch); got != 90*time.Second {
		t.Fatalf("after Advance(90s) the clock moved %v", got)
	}
	ch := f.After(time.Minute) // due at epoch+150s
	f.Set(epoch.Add(149 * time.Second))
	if _, ok := fired(ch); ok {
		t.Fatal("fired before its time")
	}
	f.Set(epoch.Add(150 * time.Second))
	if _, ok := fired(ch); !ok {
		t.Fatal("Set to its deadline did not fire it")
	}
	f.Set(epoch)
	if !f.Now().Equal(epoch) {
		t.Fatal("Set cannot move the clock back")
	}
}

func TestFakeAfterFuncAndStop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stopAt   time.Duration // when to Stop, relative to the 1 s deadline's start; <0: never
		advance  time.Duration
		runs     bool
		stopSays bool
	}{
		{name: "runs when due", stopAt: -1, advance: time.Second, runs: true},
		{name: "stopped before due", stopAt: 500 * time.Millisecond, advance: time.Second, runs: false, stopSays: true},
		{name: "stopped after it ran", stopAt: time.Second, advance: time.Second, runs: true, stopSays: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := clock.NewFake(epoch)
			ran := make(chan struct{})
			timer := f.AfterFunc(time.Second, func() { close(ran) })
			var stopped bool
			if tt.stopAt >= 0 {
				f.Advance(tt.stopAt)
				if tt.stopAt >= time.Second {
					<-ran // it was due: wait for it to have run
				}
				stopped = timer.Stop()
				if stopped != tt.stopSays {
					t.Fatalf("Stop() = %v, want %v", stopped, tt.stopSays)
				}
			}
			f.Advance(tt.advance)
			if tt.runs {
				select {
				case <-ran:
				case <-time.After(5 * time.Second):
					t.Fatal("the function did not run")
				}
			} else if f.Waiting() != 0 {
				t.Fatal("a stopped wait is still counted")
			}
			if timer.Stop() {
				t.Fatal("a second Stop reported true")
			}
		})
	}
	t.Run("not run when stopped", func(t *testing.T) {
		t.Parallel()
		f := clock.NewFake(epoch)
		var runs atomic.Int32
		f.AfterFunc(time.Second, func() { runs.Add(1) }).Stop()
		f.Advance(time.Hour)
		if runs.Load() != 0 {
			t.Fatal("a stopped function ran")
		}
	})
}

func TestBlockUntilWaiting(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(epoch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Code under test that waits twice: the test learns of each wait
	// without sleeping, then lets it end.
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-f.After(time.Second)
		<-f.After(2 * time.Second)
	}()
	if err := f.BlockUntilWaiting(ctx, 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Second)
	if err := f.BlockUntilWaiting(ctx, 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(2 * time.Second)
	<-done

	short, stop := context.WithTimeout(ctx, 20*time.Millisecond)
	defer stop()
	if err := f.BlockUntilWaiting(short, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("BlockUntilWaiting with nothing waiting returned %v, want the context's error", err)
	}
	if err := f.BlockUntilWaiting(ctx, 0); err != nil {
		t.Fatalf("zero waits are always pending: %v", err)
	}
}

// TestFakeUnderConcurrency runs waits, stops and moves at once; run with
// -race.
func TestFakeUnderConcurrency(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(epoch)
	const n = 50
	var ran, received atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := time.Duration(i+1) * time.Millisecond
			if i%2 == 0 {
				<-f.After(d)
				received.Add(1)
				return
			}
			tm := f.AfterFunc(d, func() { ran.Add(1) })
			if i%3 == 0 && tm.Stop() {
				ran.Add(1) // counted as if run: it can no longer
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil && (ran.Load() < n/2 || received.Load() < n/2) {
			f.Advance(time.Millisecond)
			_ = f.Waiting()
			runtime.Gosched() // let the waiters run between moves
		}
	}()
	wg.Wait()
	<-stopped
	if ran.Load() != n/2 {
		t.Fatalf("%d of %d functions accounted for", ran.Load(), n/2)
	}
	if f.Waiting() != 0 {
		t.Fatalf("%d waits left", f.Waiting())
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cancel bool // end ctx instead of moving the clock
		want   bool
	}{
		{"the whole wait passes", false, true},
		{"the context ends first", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := clock.NewFake(epoch)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			slept := make(chan bool)
			go func() { slept <- clock.Sleep(ctx, f, time.Minute) }()
			wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer wcancel()
			if err := f.BlockUntilWaiting(wctx, 1); err != nil {
				t.Fatal(err)
			}
			if tt.cancel {
				cancel()
			} else {
				f.Advance(time.Minute)
			}
			if got := <-slept; got != tt.want {
				t.Fatalf("Sleep() = %v, want %v", got, tt.want)
			}
			if f.Waiting() != 0 {
				t.Fatal("the sleep's wait is still counted")
			}
		})
	}
	if !clock.Sleep(context.Background(), clock.Real(), time.Millisecond) {
		t.Fatal("Sleep on the real clock did not wait out its time")
	}
}
