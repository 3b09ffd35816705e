package delivery

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
)

// slots bounds how many deliveries this worker has in flight to one
// destination (DELIVERY_DESTINATION_SLOTS), so that one destination that
// never answers cannot hold every one of the worker's DELIVERY_CONCURRENCY
// handlers, and it decides where a delivery that finds them all taken
// waits (ADR 0025):
//
//   - in memory, holding its handler, when its turn is expected soon and
//     the destination gives slots back (one came back within the last
//     250 ms, or no holder has waited on the destination itself that long):
//     it gets the next slot given back, in arrival order;
//   - in the database otherwise: the claim is given back, due when its turn
//     is expected, so a slow destination's backlog waits in PostgreSQL
//     (memory stays bounded) and comes back at about the pace the
//     destination takes it, instead of being asked about again and again.
//
// The expected wait comes from the pace at which the destination's slots
// come back (see turn), whatever holds them: slow answers or a rate limit.
// Only a holder waiting long on the destination itself (its request in
// flight, or refused because the destination's requests are all out or its
// circuit's trials are) says the destination stopped answering; one
// waiting for a spent rate window says only that the window is spent.
// A destination's state is forgotten once it is idle, so memory follows
// the destinations in use.
type slots struct {
	clock clock.Clock
	// per is the slots per destination; zero or less means no bound.
	per int
	// memoryWait is the longest expected wait spent in memory; maxWait
	// bounds the actual wait, should the expectation prove wrong.
	memoryWait, maxWait time.Duration

	mu     sync.Mutex
	nextID uint64
	byDest map[string]*destination
}

type destination struct {
	inFlight map[uint64]*holding // by slot
	waiting  []*slotWaiter       // first come, first served
	// hold is a running average of how long a slot is held.
	hold time.Duration
	// lastRelease is when a slot was last given back. counted slots came
	// back since countFrom; pace is the time per slot given back measured
	// over the last full window (paced slots, ending at paceFrom): how
	// fast the destination takes deliveries, whatever holds it back (its
	// answers or its rate limit).
	lastRelease         time.Time
	countFrom, paceFrom time.Time
	counted, paced      int
	pace                time.Duration
	// reserved is the turn handed to the last delivery sent to wait in
	// the database, so that a backlog given back is spread over the time
	// the destination needs for it rather than all due at once.
	reserved time.Time
}

// holding is a taken slot's times: when it was taken, and when its holder
// began to wait on the destination itself (onDest: zero while it waits
// only for a spent rate window).
type holding struct {
	taken, onDest time.Time
}

type slotWaiter struct {
	granted chan struct{} // closed when a slot is handed over
	id      uint64        // the slot, set before granted is closed
}

// slot is a taken slot; a zero slot (no bound) gives back nothing.
type slot struct {
	dest string
	id   uint64
}

func newSlots(c clock.Clock, per int, memoryWait, maxWait time.Duration) *slots {
	return &slots{clock: c, per: per, memoryWait: memoryWait, maxWait: maxWait, byDest: map[string]*destination{}}
}

// acquire takes a slot for dest, waiting in memory if its turn is expected
// within memoryWait, for at most maxWait. ok false means "wait in the
// database until at"; err is ctx's error if ctx ended while waiting.
func (s *slots) acquire(ctx context.Context, dest string) (sl slot, at time.Time, ok bool, err error) {
	if s.per <= 0 {
		return slot{}, time.Time{}, true, nil
	}
	now := s.clock.Now()
	s.mu.Lock()
	d := s.byDest[dest]
	if d == nil {
		d = &destination{inFlight: map[uint64]*holding{}}
		s.byDest[dest] = d
	}
	if len(d.inFlight) < s.per && len(d.waiting) == 0 {
		sl = s.take(d, dest, now)
		s.mu.Unlock()
		return sl, time.Time{}, true, nil
	}
	turn := s.turn(d, now)
	if expected := turn * time.Duration(len(d.waiting)+1); expected > s.memoryWait || !s.flowing(d, now) {
		at = s.reserve(d, now.Add(expected), turn)
		s.mu.Unlock()
		return slot{}, at, false, nil
	}
	w := &slotWaiter{granted: make(chan struct{})}
	d.waiting = append(d.waiting, w)
	s.mu.Unlock()

	since := now
	for {
		select {
		case <-w.granted:
			return slot{dest: dest, id: w.id}, time.Time{}, true, nil
		case <-s.clock.After(recheck):
		case <-ctx.Done():
			err = ctx.Err()
		}
		s.mu.Lock()
		i := slices.Index(d.waiting, w)
		if i < 0 {
			// Handed over meanwhile: the slot is taken and must be used
			// or given back by the caller.
			s.mu.Unlock()
			return slot{dest: dest, id: w.id}, time.Time{}, true, nil
		}
		now = s.clock.Now()
		// A destination that stopped giving slots back keeps no waiters,
		// so it holds no more of the worker's handlers than its slots.
		if err != nil || now.Sub(since) >= s.maxWait || !s.flowing(d, now) {
			d.waiting = slices.Delete(d.waiting, i, i+1)
			if err == nil {
				turn := s.turn(d, now)
				at = s.reserve(d, now.Add(turn*time.Duration(len(d.waiting)+1)), turn)
			}
			s.mu.Unlock()
			return slot{}, at, false, err
		}
		s.mu.Unlock()
	}
}

// recheck is how often a waiting delivery looks again at its destination.
const recheck = 250 * time.Millisecond

// flowing reports whether d gives slots back: one was given back within
// the last recheck, or no holder has waited on the destination itself that
// long. Holders waiting for a spent rate window do not count: the window
// gives no slot back for up to a second, and taking that for a destination
// that stopped answering spread a burst's backlog over three times the
// time its limit needed; s.mu is held.
func (s *slots) flowing(d *destination, now time.Time) bool {
	if now.Sub(d.lastRelease) < recheck {
		return true
	}
	for _, h := range d.inFlight {
		if !h.onDest.IsZero() && now.Sub(h.onDest) >= recheck {
			return false
		}
	}
	return true
}

// take records a new hold; s.mu is held.
func (s *slots) take(d *destination, dest string, now time.Time) slot {
	s.nextID++
	d.inFlight[s.nextID] = &holding{taken: now}
	return slot{dest: dest, id: s.nextID}
}

// waitsOnDest records that sl's holder waits on the destination itself
// from at: its request goes out (at its turn in the destination's pace), or
// admission refused it for a reason that is the destination's (its
// requests all out, its circuit's trials out). The first such moment
// counts.
func (s *slots) waitsOnDest(sl slot, at time.Time) {
	if sl.id == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.byDest[sl.dest]; d != nil {
		if h, ok := d.inFlight[sl.id]; ok && h.onDest.IsZero() {
			h.onDest = at
		}
	}
}

// paceWindow is how long slots given back are counted to measure a
// destination's pace.
const paceWindow = 2 * time.Second

// paceProbe makes the turn handed out an eighth shorter than the pace
// measured, so a backlog waiting in the database comes back a little
// faster than the destination took the last of it. Handed out exactly,
// the pace could only stay or fall: each delay on the way back (the
// retry scheduler's republishing) makes the next window slower, and a
// burst to a destination limited to 100/s drained at 40–60/s. Probing,
// it rises to what the destination or its limits allow; those that come
// back too early wait briefly in memory or go back to the database.
const paceProbe = 8

// turn is the expected time between two slots of d coming free: the
// window it took the last paceWindow's slots given back to come back,
// spread over them, so bursts (a rate window refilling) average out, less
// an eighth (paceProbe). Before that, or when none came back in the last
// window, the holds' length spread over the slots stands in for it (with
// every slot taken, one comes free per average hold over the slots): a
// running average of finished holds, or, once d has stopped giving slots
// back (a destination that stopped answering), the oldest hold whose
// holder waits on the destination when that is longer; s.mu is held.
func (s *slots) turn(d *destination, now time.Time) time.Duration {
	if d.paced > 0 && now.Sub(d.paceFrom) < 2*paceWindow {
		return d.pace - d.pace/paceProbe
	}
	held := d.hold
	if !s.flowing(d, now) {
		for _, h := range d.inFlight {
			if !h.onDest.IsZero() {
				held = max(held, now.Sub(h.taken))
			}
		}
	}
	return held / time.Duration(s.per)
}

// reserve hands out the turn after the last one reserved, no earlier than
// at; s.mu is held.
func (s *slots) reserve(d *destination, at time.Time, turn time.Duration) time.Time {
	if d.reserved.Before(at) {
		d.reserved = at
	} else {
		d.reserved = d.reserved.Add(turn)
	}
	return d.reserved
}

// release gives a slot back, to the first waiter if there is one.
func (s *slots) release(sl slot) {
	if sl.id == 0 {
		return
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.byDest[sl.dest]
	if d == nil {
		return
	}
	h, ok := d.inFlight[sl.id]
	if !ok {
		return
	}
	delete(d.inFlight, sl.id)
	d.lastRelease = now
	// A window starts at a slot given back and counts those after it, so
	// its length over its count is the time per slot.
	if d.countFrom.IsZero() {
		d.countFrom = now
	} else {
		d.counted++
		if window := now.Sub(d.countFrom); window >= paceWindow {
			d.pace, d.paced, d.paceFrom = window/time.Duration(d.counted), d.counted, now
			d.countFrom, d.counted = now, 0
		}
	}
	// A running average over about the last eight holds.
	held := now.Sub(h.taken)
	if d.hold == 0 {
		d.hold = held
	} else {
		d.hold += (held - d.hold) / 8
	}
	if len(d.waiting) > 0 {
		w := d.waiting[0]
		d.waiting = d.waiting[1:]
		w.id = s.take(d, sl.dest, now).id
		close(w.granted)
		return
	}
	if len(d.inFlight) == 0 && !d.reserved.After(now) {
		// Forget idle destinations, so memory follows the destinations in
		// use, not every one ever seen.
		delete(s.byDest, sl.dest)
	}
}
