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
	failures  int
	trials    int
	successes int
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
	if len(w) >= rate {
		a.Reason, a.RetryAfter = RateLimited, w[0].Add(time.Second).Sub(now)
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
	l.windows[dest] = append(w, now)
	if trial {
		b.trials++
		a.trial = true
	}
	a.permit = rand.Text()
	p[a.permit] = now.Add(a.ttl)
	a.Allowed = true
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
	switch {
	case b.state == Closed && success:
		b.failures = 0
	case b.state == Closed:
		b.failures++
		if b.failures >= l.cfg.FailureThreshold {
			b.state, b.since, b.failures = Open, l.cfg.Clock.Now(), 0
			return Open, true
		}
	case b.state == HalfOpen && a.trial && !success:
		b.state, b.since = Open, l.cfg.Clock.Now()
		return Open, true
	case b.state == HalfOpen && a.trial:
		b.successes++
		if b.successes >= l.cfg.HalfOpenTrials {
			*b = localBreaker{state: Closed}
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

func (l *local) state(circuit string) State {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.breaker(circuit)
	if b.state == Open && l.cfg.Clock.Now().Sub(b.since) >= l.cfg.OpenFor {
		return HalfOpen
	}
	return b.state
}
