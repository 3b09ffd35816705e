package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// orderReceiver is an endpoint for ordered subscriptions that checks, as it
// goes, what ordered delivery promises a receiver (ADR 43): each key's
// events are first received in their order (data.n), an event is never
// received again once a later event of its key was, and a key never has
// two requests in flight at once. Its answers come from answer.
type orderReceiver struct {
	URL      string
	secret   string
	verifier *signing.Verifier
	// answer gives the status and the delay of the n-th request (from 1)
	// for an event.
	answer func(id string, n int) (int, time.Duration)

	mu        sync.Mutex
	requests  map[string]int      // by event id
	last      map[string]int      // by key: the highest n first received
	inFlight  map[string]int      // by key
	delivered map[string]bool     // event ids answered 2xx
	firsts    map[string][]string // by key: event ids in the order first received
	problems  []string
}

func newOrderReceiver(t testing.TB, answer func(id string, n int) (int, time.Duration)) *orderReceiver {
	t.Helper()
	secret := signing.GenerateSecret()
	v, err := signing.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	rc := &orderReceiver{secret: secret, verifier: v, answer: answer, requests: map[string]int{}, last: map[string]int{},
		inFlight: map[string]int{}, delivered: map[string]bool{}, firsts: map[string][]string{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	rc.URL = srv.URL + "/hook"
	return rc
}

func (rc *orderReceiver) problem(format string, args ...any) {
	if len(rc.problems) < 20 {
		rc.problems = append(rc.problems, fmt.Sprintf(format, args...))
	}
}

func (rc *orderReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body struct {
		ID          string `json:"id"`
		OrderingKey string `json:"ordering_key"`
		Data        struct {
			N int `json:"n"`
		} `json:"data"`
	}
	_ = json.Unmarshal(raw, &body)
	key := r.Header.Get("X-Dispatch-Ordering-Key")
	rc.mu.Lock()
	if err := rc.verifier.VerifyHeaders(r.Header, raw); err != nil {
		rc.problem("%s: bad signature: %v", body.ID, err)
		rc.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if key == "" || key != body.OrderingKey {
		rc.problem("%s: key %q in the header, %q in the body", body.ID, key, body.OrderingKey)
	}
	rc.requests[body.ID]++
	n := rc.requests[body.ID]
	if rc.inFlight[key]++; rc.inFlight[key] > 1 {
		rc.problem("key %s: %s arrived while another request of the key was in flight", key, body.ID)
	}
	switch last, seen := rc.last[key]; {
	case n == 1 && seen && body.Data.N < last:
		rc.problem("key %s: %s (n=%d) first received after n=%d", key, body.ID, body.Data.N, last)
	case n == 1:
		rc.last[key] = body.Data.N
		rc.firsts[key] = append(rc.firsts[key], body.ID)
	case body.Data.N < last:
		rc.problem("key %s: %s (n=%d) received again after n=%d was", key, body.ID, body.Data.N, last)
	}
	rc.mu.Unlock()

	status, delay := rc.answer(body.ID, n)
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}
	rc.mu.Lock()
	rc.inFlight[key]--
	if status < 300 && r.Context().Err() == nil {
		rc.delivered[body.ID] = true
	}
	rc.mu.Unlock()
	w.WriteHeader(status)
}

// state returns how many events were answered 2xx, and the problems seen.
func (rc *orderReceiver) state() (int, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.delivered), append([]string(nil), rc.problems...)
}

// firstOrder is, by key, the event ids in the order first received.
func (rc *orderReceiver) firstOrder() map[string][]string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string][]string, len(rc.firsts))
	for k, ids := range rc.firsts {
		out[k] = append([]string(nil), ids...)
	}
	return out
}

// flaky fails about a fifth of first attempts with 500 and answers about
// one in forty after 2 s; every other request is answered at once with
// 200. Which events is fixed by their ids, so a run can be replayed.
func flaky(id string, n int) (int, time.Duration) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	switch v := h.Sum32(); {
	case n == 1 && v%5 == 0:
		return http.StatusInternalServerError, 0
	case n == 1 && v%40 == 1:
		return http.StatusOK, 2 * time.Second
	}
	return http.StatusOK, 0
}

// orderedEventID names event n of key k.
func orderedEventID(k, n int) string { return fmt.Sprintf("k%03d_%02d", k, n) }

// postOrdered posts events 0..perKey-1 of keys 0..keys-1 from conns
// connections: each connection posts its own keys' events in order, one
// request after the answer to the one before, as single posts and batches
// of up to four of a key's consecutive events, its keys interleaved.
func (s *stack) postOrdered(keys, perKey, conns int) error {
	errs := make(chan error, conns)
	for c := range conns {
		go func() {
			next := map[int]int{} // key → next n
			for {
				progressed := false
				for k := c; k < keys; k += conns {
					n := next[k]
					if n >= perKey {
						continue
					}
					progressed = true
					size := min(1+(k+n)%4, perKey-n)
					if err := s.postChunk(k, n, size); err != nil {
						errs <- err
						return
					}
					next[k] = n + size
				}
				if !progressed {
					errs <- nil
					return
				}
			}
		}()
	}
	var first error
	for range conns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// postChunk posts events n..n+size-1 of key k, one alone as POST /events,
// more as a batch, asking again for up to 10 s after a 503 or a lost
// connection (ingest is idempotent by id).
func (s *stack) postChunk(k, n, size int) error {
	event := func(i int) map[string]any {
		return map[string]any{"id": orderedEventID(k, i), "type": "order.updated", "ordering_key": fmt.Sprintf("key%03d", k), "data": map[string]any{"n": i}}
	}
	var (
		path = "/events"
		body any
	)
	if size == 1 {
		body = event(n)
	} else {
		events := make([]any, size)
		for i := range size {
			events[i] = event(n + i)
		}
		path, body = "/events/batch", map[string]any{"events": events}
	}
	var (
		code int
		out  map[string]any
		err  error
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	poll(ctx, func() bool {
		code, out, err = s.send("POST", path, body)
		return err == nil && code != http.StatusServiceUnavailable
	})
	switch {
	case err != nil:
		return err
	case code != http.StatusAccepted && code != http.StatusOK:
		return fmt.Errorf("post key %d from %d: %d %v", k, n, code, out)
	case size > 1 && out["invalid"] != float64(0):
		return fmt.Errorf("batch of key %d from %d: %v", k, n, out)
	}
	return nil
}

// subscribeOrdered creates an ordered subscription to rc whose retries
// come quickly and whose destination's limits are out of the way, so that
// a run of thousands of events, a fifth of them failing once, ends in
// seconds.
func (s *stack) subscribeOrdered(id string, rc *orderReceiver, extra map[string]any) {
	s.t.Helper()
	body := map[string]any{"id": id, "url": rc.URL, "event_types": []string{"order.*"}, "secret": rc.secret,
		"ordering": "per_key", "retry_base_delay_ms": 200, "retry_max_delay_ms": 1000,
		"rate_limit_per_second": 100000, "max_concurrency": 10000}
	for k, v := range extra {
		body[k] = v
	}
	if code, out := s.call("POST", "/subscriptions", body); code != http.StatusCreated {
		s.t.Fatalf("create subscription: %d %v", code, out)
	}
}

// checkOrder fails the test unless every key's events were first received
// in order n = 0, 1, … and in the order of their sequence in the database.
func (s *stack) checkOrder(rc *orderReceiver, subID string, keys, perKey int) {
	s.t.Helper()
	firsts := rc.firstOrder()
	rows, err := s.db.Pool.Query(s.t.Context(), `SELECT ordering_key, event_id FROM deliveries WHERE subscription_id = $1 ORDER BY ordering_key, seq`, subID)
	if err != nil {
		s.t.Fatal(err)
	}
	bySeq := map[string][]string{}
	for rows.Next() {
		var key, id string
		if err := rows.Scan(&key, &id); err != nil {
			s.t.Fatal(err)
		}
		bySeq[key] = append(bySeq[key], id)
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	for k := range keys {
		key := fmt.Sprintf("key%03d", k)
		want := make([]string, perKey)
		for n := range perKey {
			want[n] = orderedEventID(k, n)
		}
		if got := strings.Join(firsts[key], " "); got != strings.Join(want, " ") {
			s.t.Fatalf("key %s first received as %s, want %s", key, got, strings.Join(want, " "))
		}
		if got := strings.Join(bySeq[key], " "); got != strings.Join(want, " ") {
			s.t.Fatalf("key %s in sequence %s, want %s", key, got, strings.Join(want, " "))
		}
	}
}

// TestOrderedDeliveryUnderFaults posts 200 keys × 50 events from 16
// connections to an ordered subscription whose receiver fails a fifth of
// first attempts and answers some after 2 s, while two workers compete for
// the keys; in the faults case one worker is killed mid-run and another
// started, and later Kafka goes down and comes back. Every event arrives,
// each key's first receipts in acceptance order, none again after a later
// event of its key, and no key ever has two requests in flight.
func TestOrderedDeliveryUnderFaults(t *testing.T) {
	for _, faults := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "faults"}[faults], func(t *testing.T) {
			const keys, perKey = 200, 50
			_, portStr, _ := net.SplitHostPort(freeAddr(t))
			port, _ := strconv.Atoi(portStr)
			dataDir := t.TempDir() // the broker keeps its log and group offsets across the restart
			broker := testkit.KafkaWith(t, 4, []string{topic}, kfake.Ports(port), kfake.DataDir(dataDir))
			s := &stack{t: t, db: testkit.Postgres(t), kafka: broker, brokers: strings.Join(broker.ListenAddrs(), ",")}
			s.rdb, s.redisPrefix = testkit.Redis(t)
			addr := freeAddr(t)
			s.apiURL = "http://" + addr
			s.api = s.start("ingest-api", "ADDR="+addr)
			s.waitReady(s.apiURL)
			// A fifth of first attempts failing would open the circuit now
			// and then, and hold every key for its 30 s.
			fast := []string{"DELIVERY_TIMEOUT=3s", "DELIVERY_LEASE_MARGIN=3s", "KAFKA_SESSION_TIMEOUT=6s", "CIRCUIT_FAILURE_THRESHOLD=1000"}
			victim := s.startWorker(fast...)
			s.startWorker(fast...)
			s.startScheduler("STRANDED_AFTER=3s")
			rc := newOrderReceiver(t, flaky)
			s.subscribeOrdered("ord", rc, nil)

			posted := make(chan error, 1)
			go func() { posted <- s.postOrdered(keys, perKey, 16) }()
			const total = keys * perKey
			delivered := func() int { n, _ := rc.state(); return n }
			if faults {
				eventually(t, 120*time.Second, func() bool { return delivered() >= total/4 }, "a quarter was not delivered")
				victim.signal(t, syscall.SIGKILL)
				s.startWorker(fast...)
				eventually(t, 120*time.Second, func() bool { return delivered() >= total/2 }, "half was not delivered after the kill")
				broker.Close()
				time.Sleep(2 * time.Second) // Kafka stays down a while: real time, which no clock of the services' can be moved for
				testkit.KafkaWith(t, 4, nil, kfake.Ports(port), kfake.DataDir(dataDir))
			}
			if err := <-posted; err != nil {
				t.Fatal(err)
			}
			eventually(t, 240*time.Second, func() bool { return delivered() == total },
				"only %d of %d events were delivered", func() int { return delivered() }(), total)
			eventually(t, 30*time.Second, func() bool {
				return s.count(`SELECT count(*) FROM deliveries WHERE status <> 'delivered'`) == 0
			}, "some deliveries never reached 'delivered'")
			if _, problems := rc.state(); len(problems) > 0 {
				t.Fatalf("the receiver saw what ordering rules out:\n%s", strings.Join(problems, "\n"))
			}
			s.checkOrder(rc, "ord", keys, perKey)
		})
	}
}

// TestOrderedKeyLifecycle: a key whose head fails for good lets its next
// event go; skip unblocks a key whose head keeps failing; a paused
// subscription's keys go on, each in order, once it is resumed.
func TestOrderedKeyLifecycle(t *testing.T) {
	s := newStack(t)
	// The failing heads would open the circuit, which would hold the
	// events after them for its 30 s.
	s.startWorker("CIRCUIT_FAILURE_THRESHOLD=1000")
	// A paused subscription's records are dropped; once it is resumed
	// they are published again when they look stranded.
	s.startScheduler("STRANDED_AFTER=2s")
	var (
		poison  atomic.Value // an event id the receiver refuses
		failing atomic.Bool  // the receiver refuses everything
	)
	poison.Store("")
	rc := newOrderReceiver(t, func(id string, _ int) (int, time.Duration) {
		if id == poison.Load() || failing.Load() {
			return http.StatusInternalServerError, 0
		}
		return http.StatusOK, 0
	})
	s.subscribeOrdered("ord", rc, map[string]any{"max_attempts": 2, "retry_base_delay_ms": 50, "retry_max_delay_ms": 50})
	post := func(k, from, to int) {
		for n := from; n < to; n++ {
			if err := s.postChunk(k, n, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor := func(n int, what string) {
		eventually(t, 30*time.Second, func() bool { got, _ := rc.state(); return got == n }, "%s: %d delivered", what, func() int { got, _ := rc.state(); return got }())
	}

	// Failed for good: k0's event 1 spends its two attempts, then 2 goes.
	poison.Store(orderedEventID(0, 1))
	post(0, 0, 3)
	waitFor(2, "after a head failed for good")
	eventually(t, 10*time.Second, func() bool {
		return s.count(`SELECT count(*) FROM deliveries WHERE event_id = $1 AND status = 'failed'`, orderedEventID(0, 1)) == 1
	}, "the poisoned event did not fail")

	// Skip: k1's event 0 keeps failing (attempts to spare), 1 waits.
	code, out := s.call("PATCH", "/subscriptions/ord", map[string]any{"max_attempts": 50, "retry_base_delay_ms": 200, "retry_max_delay_ms": 200})
	if code != http.StatusOK {
		t.Fatalf("patch: %d %v", code, out)
	}
	poison.Store(orderedEventID(1, 0))
	post(1, 0, 2)
	eventually(t, 30*time.Second, func() bool {
		code, out := s.call("GET", "/subscriptions/ord/ordering-keys?state=blocked", nil)
		return code == http.StatusOK && out["blocked_keys"] == float64(1)
	}, "key001 is not listed blocked")
	if got, _ := rc.state(); got != 2 {
		t.Fatalf("%d delivered while key001 is blocked, want 2", got)
	}
	// The operator sees it on the subscription's page.
	base := s.startDashboard()
	ctx := browser(t)
	signIn(t, ctx, base, adminKey)
	do(t, ctx, "subscription page", chromedp.Navigate(base+"/subscriptions/ord"), chromedp.WaitVisible(chromedp.CSS(testid("blocked-keys"))))
	if got := text(t, ctx, testid("ordering")); !strings.Contains(got, "per key") || !strings.Contains(got, "1 key blocked") {
		t.Errorf("the subscription's ordering reads %q, want per key with 1 key blocked", got)
	}
	// The event behind the blocked head is marked as waiting for its key,
	// not shown as a pending delivery that nobody will attempt.
	heldRow := `[data-testid="delivery-row"][data-id="` + orderedEventID(1, 1) + `"] ` + testid("held")
	if got := text(t, ctx, heldRow); !strings.Contains(got, "waits for its key") {
		t.Errorf("the delivery behind the blocked head reads %q, want it marked held", got)
	}
	screenshot(t, ctx, "subscription-ordering.png")
	// 409 while the head's retry is being attempted: again once it is over.
	eventually(t, 10*time.Second, func() bool {
		code, out = s.call("POST", "/subscriptions/ord/ordering-keys/key001/skip", map[string]any{"reason": "poison"})
		return code != http.StatusConflict
	}, "the head was always being attempted")
	if code != http.StatusOK || out["next_event_id"] != orderedEventID(1, 1) {
		t.Fatalf("skip: %d %v", code, out)
	}
	waitFor(3, "after the skip")

	// Pause: three keys whose heads failed once wait, then go on in order.
	failing.Store(true)
	poison.Store("")
	for k := 2; k < 5; k++ {
		post(k, 0, 5)
	}
	eventually(t, 30*time.Second, func() bool {
		return s.count(`SELECT count(*) FROM deliveries WHERE status = 'retrying' AND ordering_key IN ('key002', 'key003', 'key004')`) == 3
	}, "the three heads did not fail")
	if code, out := s.call("PATCH", "/subscriptions/ord", map[string]any{"state": "paused"}); code != http.StatusOK {
		t.Fatalf("pause: %d %v", code, out)
	}
	failing.Store(false)
	if code, out := s.call("PATCH", "/subscriptions/ord", map[string]any{"state": "active"}); code != http.StatusOK {
		t.Fatalf("resume: %d %v", code, out)
	}
	waitFor(18, "after the resume")
	if _, problems := rc.state(); len(problems) > 0 {
		t.Fatalf("the receiver saw what ordering rules out:\n%s", strings.Join(problems, "\n"))
	}
	firsts := rc.firstOrder()
	for k := 2; k < 5; k++ {
		key := fmt.Sprintf("key%03d", k)
		want := []string{orderedEventID(k, 0), orderedEventID(k, 1), orderedEventID(k, 2), orderedEventID(k, 3), orderedEventID(k, 4)}
		if got := strings.Join(firsts[key], " "); got != strings.Join(want, " ") {
			t.Fatalf("key %s first received as %s", key, got)
		}
	}
}
