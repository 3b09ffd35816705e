package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// settingsCache keeps subscriptions' delivery settings for a short while:
// admission needs them before the claim, for every message.
type settingsCache struct {
	load func(ctx context.Context, id string) (domain.DeliverySettings, error)
	ttl  time.Duration

	mu      sync.Mutex
	entries map[string]cachedSettings
}

type cachedSettings struct {
	settings domain.DeliverySettings
	expires  time.Time
}

func newSettingsCache(load func(context.Context, string) (domain.DeliverySettings, error), ttl time.Duration) *settingsCache {
	return &settingsCache{load: load, ttl: ttl, entries: map[string]cachedSettings{}}
}

func (c *settingsCache) get(ctx context.Context, id string) (domain.DeliverySettings, error) {
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && time.Now().Before(e.expires) {
		return e.settings, nil
	}
	s, err := c.load(ctx, id)
	if err != nil {
		return domain.DeliverySettings{}, err
	}
	c.mu.Lock()
	c.entries[id] = cachedSettings{settings: s, expires: time.Now().Add(c.ttl)}
	c.mu.Unlock()
	return s, nil
}

// deferrals are deliveries waiting in memory for their destination's limits.
type deferrals struct {
	mu      sync.Mutex
	max     int
	stopped bool
	timers  map[int64]*time.Timer
}

func newDeferrals(maxWaiting int) *deferrals {
	return &deferrals{max: maxWaiting, timers: map[int64]*time.Timer{}}
}

// add runs fn after wait unless stopped first; false means "no room".
func (d *deferrals) add(id int64, wait time.Duration, fn func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || len(d.timers) >= d.max {
		return false
	}
	if _, dup := d.timers[id]; dup {
		return true // a duplicate message: one wait is enough
	}
	d.timers[id] = time.AfterFunc(wait, func() {
		d.mu.Lock()
		delete(d.timers, id)
		stopped := d.stopped
		d.mu.Unlock()
		if !stopped {
			fn()
		}
	})
	return true
}

// stop cancels every wait and returns the deliveries that were waiting.
func (d *deferrals) stop() []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	ids := make([]int64, 0, len(d.timers))
	for id, t := range d.timers {
		if t.Stop() {
			ids = append(ids, id)
		}
	}
	d.timers = map[int64]*time.Timer{}
	return ids
}
