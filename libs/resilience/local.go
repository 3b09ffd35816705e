package resilience

import (
	"crypto/rand"
	"strings"
	"sync"
	"time"
)

// local is the in-process equivalent of the Redis mechanisms, used while
// Redis is unreachable. Its limits hold per worker process. Windows and
// permits are kept per destination, breakers per subscription incarnation.
type local struct {
	cfg Config

	mu       sync.Mutex
	windows  map[string][]time.Time
	breakers map[string]*localBreaker
	permits  map[string]map[string]time.Time
}

type localBreaker struct {
	state     State
	since     time.Time
	opened    time.Time
	failures  int
	trials    int
	successes int
	// record is the subscription's failures, as in Redis' failure record.
	record failureRecord
}

// failureRecord is a subscription's last failure and its failures per
// minute in 60 slots, each slot holding the minute it counts.
type failureRecord struct {
	last  time.Time
	slots [60]struct{ minute, n int64 }
}

func (r *failureRecord) failed(now time.Time) {
	m := now.UnixMilli() / 60000
	s := &r.slots[m%60]
	if s.minute != m {
		s.minute, s.n = m, 0
	}
	s.n++
	r.last = now
}

// lastHour counts the failures of now's minute and the 59 before it.
func (r *failureRecord) lastHour(now time.Time) int {
	m, n := now.UnixMilli()/60000, int64(0)
	for _, s := range r.slots {
		if s.minute > m-60 {
			n += s.n
		}
	}
	return int(n)
}

func newLocal(cfg Config) *local {
	return &local{cfg: cfg, windows: map[string][]time.Time{}, breakers: map[string]*localBreaker{}, permits: map[string]map[string]time.Time{}}
}

func (l *local) admit(a *Admission, rate, conc int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Clock.Now()
	dest := a.target.Destination

	w := l.windows[dest]
	for len(w) > 0 && now.Sub(w[0]) >= time.Second {
		w = w[1:]
	}
	l.windows[dest] = w
	at := turn(w, now, rate)
	if wait := at.Sub(now); wait > l.cfg.Ahead {
		a.Reason, a.RetryAfter = RateLimited, wait-l.cfg.Ahead
		return
	}

	b := l.breaker(a.target.circuit())
	if b.state == Open && now.Sub(b.since) >= l.cfg.OpenFor {
		b.state, b.since, b.trials, b.successes = HalfOpen, now, 0, 0
	}
	if b.state == HalfOpen && now.Sub(b.since) >= l.cfg.OpenFor {
		b.since, b.trials, b.successes = now, 0, 0
	}
	switch {
	case b.state == Open:
		a.Reason, a.RetryAfter = CircuitOpen, b.since.Add(l.cfg.OpenFor).Sub(now)
		return
	case b.state == HalfOpen && b.trials >= l.cfg.HalfOpenTrials:
		a.Reason, a.RetryAfter, a.trialsOut = CircuitOpen, trialsWait(b.since.Add(l.cfg.OpenFor).Sub(now)), true
		return
	}
	trial := b.state == HalfOpen

	p := l.permits[dest]
	if p == nil {
		p = map[string]time.Time{}
		l.permits[dest] = p
	}
	for id, exp := range p {
		if now.After(exp) {
			delete(p, id)
		}
	}
	if len(p) >= conc {
		a.Reason, a.RetryAfter = ConcurrencyLimited, jitter(100*time.Millisecond, 500*time.Millisecond)
		return
	}
	// Every check agreed: only now take a slot of each.
	l.windows[dest] = append(w, at)
	a.Delay = at.Sub(now)
	if trial {
		b.trials++
		a.trial = true
	}
	a.permit = rand.Text()
	p[a.permit] = now.Add(a.ttl)
	a.Allowed = true
}

// turn is the in-process equivalent of the admission script's: when a
// request under rate may go to a destination whose send times, past and
// booked, are sends (in order, none a second or more before now). It is a
// spacing (a second over rate) after the last, no sooner than now, and
// later still if the second ending at it already holds rate sends.
func turn(sends []time.Time, now time.Time, rate int) time.Time {
	if len(sends) == 0 {
		return now
	}
	at := sends[len(sends)-1].Add(spacing(rate))
	if at.Before(now) {
		at = now
	}
	// The sends in (at-1s, at]: all of them but those a second or more before at.
	first := 0
	for first < len(sends) && at.Sub(sends[first]) >= time.Second {
		first++
	}
	if n := len(sends) - first; n >= rate {
		at = sends[first+n-rate].Add(time.Second)
	}
	return at
}

// spacing is the least time between two requests under rate: a second
// over it, rounded up to the microsecond as the admission script does.
func spacing(rate int) time.Duration {
	microseconds := (int(time.Second/time.Microsecond) + rate - 1) / rate
	return time.Duration(microseconds) * time.Microsecond
}

func (l *local) breaker(circuit string) *localBreaker {
	b := l.breakers[circuit]
	if b == nil {
		b = &localBreaker{state: Closed}
		l.breakers[circuit] = b
	}
	return b
}

// done releases the permit and, if report, records the outcome; it returns
// the new state and whether it changed.
func (l *local) done(a Admission, report, success bool) (State, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	dest := a.target.Destination
	delete(l.permits[dest], a.permit)
	if len(l.permits[dest]) == 0 {
		delete(l.permits, dest)
	}
	b := l.breaker(a.target.circuit())
	if !report {
		return b.state, false
	}
	now := l.cfg.Clock.Now()
	if !success {
		b.record.failed(now)
	}
	switch {
	case b.state == Closed && success:
		b.failures = 0
	case b.state == Closed:
		b.failures++
		if b.failures >= l.cfg.FailureThreshold {
			b.state, b.since, b.opened, b.failures = Open, now, now, 0
			return Open, true
		}
	case b.state == HalfOpen && a.trial && !success:
		b.state, b.since = Open, now
		return Open, true
	case b.state == HalfOpen && a.trial:
		b.successes++
		if b.successes >= l.cfg.HalfOpenTrials {
			*b = localBreaker{state: Closed, record: b.record}
			return Closed, true
		}
	}
	return b.state, false
}

// forget drops every incarnation's breaker of a subscription.
func (l *local) forget(sub string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for circuit := range l.breakers {
		if strings.HasPrefix(circuit, sub+":") {
			delete(l.breakers, circuit)
		}
	}
}

func (l *local) circuit(circuit string) Circuit {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.breaker(circuit)
	now := l.cfg.Clock.Now()
	c := Circuit{State: b.state, LastFailureAt: b.record.last, FailuresLastHour: b.record.lastHour(now)}
	if b.state == Open && now.Sub(b.since) >= l.cfg.OpenFor {
		c.State = HalfOpen
	}
	if c.State != Closed {
		c.OpenedAt = b.opened
	}
	return c
}
