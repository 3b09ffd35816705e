package resilience

import (
	"crypto/rand"
	"sync"
	"time"
)

// local is the in-process equivalent of the Redis mechanisms, used while
// Redis is unreachable. Its limits hold per worker process.
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
	now := time.Now()
	sub := a.subscriptionID

	w := l.windows[sub]
	for len(w) > 0 && now.Sub(w[0]) >= time.Second {
		w = w[1:]
	}
	l.windows[sub] = w
	if len(w) >= rate {
		a.Reason, a.RetryAfter = RateLimited, w[0].Add(time.Second).Sub(now)
		return
	}

	b := l.breaker(sub)
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
		a.Reason, a.RetryAfter = CircuitOpen, max(b.since.Add(l.cfg.OpenFor).Sub(now), time.Millisecond)
		return
	}
	trial := b.state == HalfOpen

	p := l.permits[sub]
	if p == nil {
		p = map[string]time.Time{}
		l.permits[sub] = p
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
	l.windows[sub] = append(w, now)
	if trial {
		b.trials++
		a.trial = true
	}
	a.permit = rand.Text()
	p[a.permit] = now.Add(a.ttl)
	a.Allowed = true
}

func (l *local) breaker(sub string) *localBreaker {
	b := l.breakers[sub]
	if b == nil {
		b = &localBreaker{state: Closed}
		l.breakers[sub] = b
	}
	return b
}

// done releases the permit and, if report, records the outcome; it returns
// the new state and whether it changed.
func (l *local) done(a Admission, report, success bool) (State, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.permits[a.subscriptionID], a.permit)
	b := l.breaker(a.subscriptionID)
	if !report {
		return b.state, false
	}
	switch {
	case b.state == Closed && success:
		b.failures = 0
	case b.state == Closed:
		b.failures++
		if b.failures >= l.cfg.FailureThreshold {
			b.state, b.since, b.failures = Open, time.Now(), 0
			return Open, true
		}
	case b.state == HalfOpen && a.trial && !success:
		b.state, b.since = Open, time.Now()
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

func (l *local) forget(sub string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.windows, sub)
	delete(l.breakers, sub)
	delete(l.permits, sub)
}

func (l *local) state(sub string) State {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.breaker(sub)
	if b.state == Open && time.Since(b.since) >= l.cfg.OpenFor {
		return HalfOpen
	}
	return b.state
}
