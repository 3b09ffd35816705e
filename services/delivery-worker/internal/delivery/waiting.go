package delivery

import (
	"sync"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// deferrals are claimed deliveries waiting in memory for their
// destination's limits.
type deferrals struct {
	mu      sync.Mutex
	max     int
	stopped bool
	waiting map[int64]deferred
}

type deferred struct {
	job   store.Job
	timer *time.Timer
}

func newDeferrals(maxWaiting int) *deferrals {
	return &deferrals{max: maxWaiting, waiting: map[int64]deferred{}}
}

// add runs fn after wait unless stopped first; false means "no room".
func (d *deferrals) add(job store.Job, wait time.Duration, fn func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || len(d.waiting) >= d.max {
		return false
	}
	id := job.DeliveryID
	d.waiting[id] = deferred{job: job, timer: time.AfterFunc(wait, func() {
		d.mu.Lock()
		delete(d.waiting, id)
		stopped := d.stopped
		d.mu.Unlock()
		if !stopped {
			fn()
		}
	})}
	return true
}

// stop cancels every wait and returns the jobs that were waiting.
func (d *deferrals) stop() []store.Job {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	jobs := make([]store.Job, 0, len(d.waiting))
	for _, w := range d.waiting {
		if w.timer.Stop() {
			jobs = append(jobs, w.job)
		}
	}
	d.waiting = map[int64]deferred{}
	return jobs
}
