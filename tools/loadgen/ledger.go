package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

// ledger keeps what happened to each event of a run: when it was posted,
// whether the API accepted it, when it first arrived and how often. Times
// are offsets from start (monotonic), 0 meaning "not yet". The posting
// clients and the receiver write to it at the same time.
type ledger struct {
	start    time.Time
	prefix   string         // event ids are prefix + index
	sentAt   []atomic.Int64 // when the request carrying the event was sent
	accepted []atomic.Bool  // the API stored the event (or knew it already)
	firstAt  []atomic.Int64 // when the first verified delivery arrived
	receipts []atomic.Int32 // verified deliveries

	posted, failed atomic.Int64 // events whose request was answered (or failed); those not accepted
	distinct       atomic.Int64 // events delivered at least once
	rejected       atomic.Int64 // deliveries whose signature did not verify
	foreign        atomic.Int64 // verified deliveries of ids not of this run

	mu     sync.Mutex
	recent []time.Duration // post→delivery latencies since takeRecent
}

func newLedger(runID string, n int) *ledger {
	return &ledger{
		start:    time.Now(),
		prefix:   runID + "_",
		sentAt:   make([]atomic.Int64, n),
		accepted: make([]atomic.Bool, n),
		firstAt:  make([]atomic.Int64, n),
		receipts: make([]atomic.Int32, n),
	}
}

func (l *ledger) now() int64 { return int64(time.Since(l.start)) }

// id is the id of event i.
func (l *ledger) id(i int) string { return l.prefix + strconv.Itoa(i) }

// index is the event index of id, or false if id is not of this run.
func (l *ledger) index(id string) (int, bool) {
	s, ok := strings.CutPrefix(id, l.prefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= len(l.sentAt) || s != strconv.Itoa(i) {
		return 0, false
	}
	return i, true
}

// sent records that events [first, last) are being posted now.
func (l *ledger) sent(first, last int) {
	at := l.now()
	for i := first; i < last; i++ {
		l.sentAt[i].Store(at)
	}
}

// answered records that event i's request was answered (or failed).
func (l *ledger) answered(i int, accepted bool) {
	l.posted.Add(1)
	if accepted {
		l.accepted[i].Store(true)
	} else {
		l.failed.Add(1)
	}
}

// received records a verified delivery of id.
func (l *ledger) received(id string) {
	i, ok := l.index(id)
	if !ok {
		l.foreign.Add(1)
		return
	}
	at := l.now()
	l.receipts[i].Add(1)
	if !l.firstAt[i].CompareAndSwap(0, at) {
		return
	}
	l.distinct.Add(1)
	if sent := l.sentAt[i].Load(); sent != 0 {
		l.mu.Lock()
		l.recent = append(l.recent, time.Duration(at-sent))
		l.mu.Unlock()
	}
}

// takeRecent returns the post→delivery latencies of the first deliveries
// since the last call.
func (l *ledger) takeRecent() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.recent
	l.recent = nil
	return r
}

// waitDelivered waits, checking at once and then at each tick, until every
// accepted event has arrived; it reports false if ctx ended first. Call it
// once posting is over, when acceptance no longer changes. The caller
// owns the ticks, so a test can tell when each check happens.
func (l *ledger) waitDelivered(ctx context.Context, tick <-chan time.Time) bool {
	for next := 0; ; {
		next = l.undeliveredFrom(next)
		if next == len(l.accepted) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick:
		}
	}
}

// undeliveredFrom returns the first accepted but undelivered event at or
// after i, or the number of events if there is none.
func (l *ledger) undeliveredFrom(i int) int {
	for ; i < len(l.accepted); i++ {
		if l.accepted[i].Load() && l.firstAt[i].Load() == 0 {
			return i
		}
	}
	return i
}

// receiver verifies deliveries and records them in the ledger.
type receiver struct {
	verifier *signing.Verifier
	led      *ledger
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || rc.verifier.VerifyHeaders(r.Header, body) != nil {
		rc.led.rejected.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.led.received(r.Header.Get(signing.HeaderID))
	w.WriteHeader(http.StatusNoContent)
}
