package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// postMany posts n events "<prefix>_<i>" from 8 concurrent clients.
func (s *stack) postMany(prefix string, n int) {
	s.t.Helper()
	if err := s.postAll(prefix, n); err != nil {
		s.t.Fatal(err)
	}
}

// postAll is postMany for goroutines other than the test's own: it
// returns the first failure instead of failing the test.
func (s *stack) postAll(prefix string, n int) error {
	var next atomic.Int64
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					errs <- nil
					return
				}
				if _, err := s.tryPost(fmt.Sprintf("%s_%d", prefix, i), "load.test"); err != nil {
					next.Store(int64(n)) // the others stop too
					errs <- err
					return
				}
			}
		}()
	}
	var first error
	for range 8 {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// distinct counts the distinct events a receiver accepted, and how many
// accepted requests were duplicates.
func distinct(rc *receiver) (events, duplicates int) {
	seen := map[string]int{}
	for _, d := range rc.deliveries() {
		seen[d.EventID]++
	}
	for _, n := range seen {
		duplicates += n - 1
	}
	return len(seen), duplicates
}

func TestWorkerKilledMidRunLosesNothing(t *testing.T) {
	s := newStack(t)
	// Short leases so the killed worker's claims lapse quickly.
	fast := []string{"DELIVERY_TIMEOUT=2s", "DELIVERY_LEASE_MARGIN=3s", "KAFKA_SESSION_TIMEOUT=6s"}
	victim := s.startWorker(fast...)
	s.startScheduler("STRANDED_AFTER=3s")
	rc := newReceiver(t, 0)
	// After the first 300 requests the receiver holds every request until
	// the kill has landed, so the victim dies with deliveries in flight.
	const before, held = 300, 10
	var arrived atomic.Int64
	killed := make(chan struct{})
	rc.respond = func(w http.ResponseWriter, r *http.Request, _ int) bool {
		if arrived.Add(1) > before {
			select {
			case <-killed:
			case <-r.Context().Done():
				return false // its worker died holding it: never answered
			}
		}
		w.WriteHeader(http.StatusOK)
		return true
	}
	s.subscribe("sub", rc, "*")
	const n = 2000
	posted := make(chan error, 1)
	go func() { posted <- s.postAll("evt", n) }()

	eventually(t, 60*time.Second, func() bool { return arrived.Load() >= before+held }, "deliveries did not start")
	victim.signal(t, syscall.SIGKILL)
	close(killed)
	s.startWorker(fast...)
	if err := <-posted; err != nil {
		t.Fatal(err)
	}

	eventually(t, 120*time.Second, func() bool { got, _ := distinct(rc); return got == n },
		"after the kill only %d of %d events were delivered", func() int { got, _ := distinct(rc); return got }(), n)
	eventually(t, 30*time.Second, func() bool {
		return s.count(`SELECT count(*) FROM deliveries WHERE status <> 'delivered'`) == 0
	}, "some deliveries never reached 'delivered'")
	_, dups := distinct(rc)
	// Duplicates come from deliveries the killed worker had sent but not
	// recorded, and from claims that outlived the short test lease under load.
	t.Logf("worker killed mid-run: %d events delivered, %d duplicate deliveries", n, dups)
	// Claims held in memory past their lease once made two workers send the
	// same deliveries over and over (4,400 duplicates for 2,000 events).
	if dups > n/4 {
		t.Fatalf("%d duplicates for %d events: claims outlive their leases", dups, n)
	}
}

func TestKafkaDownWhileEventsArePosted(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	_, portStr, _ := net.SplitHostPort(freeAddr(t))
	port, _ := strconv.Atoi(portStr)
	dataDir := t.TempDir() // the broker keeps its log and group offsets across the restart
	first := testkit.KafkaWith(t, 4, []string{topic}, kfake.Ports(port), kfake.DataDir(dataDir))
	s := &stack{t: t, db: db, kafka: first, brokers: strings.Join(first.ListenAddrs(), ",")}
	_, s.redisPrefix = testkit.Redis(t)
	addr := freeAddr(t)
	s.apiURL = "http://" + addr
	s.start("ingest-api", "ADDR="+addr)
	s.waitReady(s.apiURL)
	s.startWorker()
	s.startScheduler("STRANDED_AFTER=2s")
	rc := newReceiver(t, http.StatusOK)
	s.subscribe("sub", rc, "*")

	first.Close() // the broker dies
	const n = 100
	for i := range n {
		code, body := s.call("POST", "/events", map[string]any{"id": fmt.Sprintf("evt_%d", i), "type": "x", "data": map[string]any{}})
		if code != http.StatusAccepted {
			t.Fatalf("with Kafka down POST /events answered %d %v, want 202", code, body)
		}
	}
	if got, _ := distinct(rc); got != 0 {
		t.Fatalf("%d deliveries without a broker", got)
	}
	testkit.KafkaWith(t, 4, nil, kfake.Ports(port), kfake.DataDir(dataDir)) // it comes back

	eventually(t, 90*time.Second, func() bool { got, _ := distinct(rc); return got == n },
		"after Kafka came back only %d of %d events were delivered", func() int { got, _ := distinct(rc); return got }(), n)
}

func TestDatabaseConnectionsKilledMidRun(t *testing.T) {
	s := newStack(t)
	s.startWorker("DELIVERY_TIMEOUT=2s", "DELIVERY_LEASE_MARGIN=1s")
	s.startScheduler("STRANDED_AFTER=3s")
	rc := newReceiver(t, http.StatusOK)
	s.subscribe("sub", rc, "*")
	const n = 400
	posted := make(chan error, 1)
	go func() { posted <- s.postAll("evt", n) }()

	ctx := context.Background()
	killed := 0
	// The connections are killed five times as deliveries progress: after
	// each further sixth of the events has arrived.
	for k := range 5 {
		eventually(t, 90*time.Second, func() bool { got, _ := distinct(rc); return got >= (k+1)*n/6 },
			"deliveries stopped before the kill %d", k+1)
		var n int
		err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()`, s.db.Name).Scan(&n)
		if err != nil {
			// The test's own pool loses connections too; the next call reconnects.
			t.Logf("terminate: %v", err)
		}
		killed += n
	}
	if err := <-posted; err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no service connection was terminated; the test proved nothing")
	}
	t.Logf("terminated %d service connections mid-run", killed)
	eventually(t, 90*time.Second, func() bool { got, _ := distinct(rc); return got == n },
		"after killed connections only %d of %d events were delivered", func() int { got, _ := distinct(rc); return got }(), n)
}

func TestTwoSchedulersAndTwoWorkers(t *testing.T) {
	s := newStack(t)
	// Every event fails once: keep the circuit breaker out of this test.
	s.startWorker("CIRCUIT_FAILURE_THRESHOLD=100000")
	s.startWorker("CIRCUIT_FAILURE_THRESHOLD=100000")
	s.startScheduler()
	s.startScheduler()
	rc := newReceiver(t, 0)
	rc.respond = answers(http.StatusInternalServerError) // every event needs one retry
	code, body := s.call("POST", "/subscriptions", map[string]any{
		"id": "sub", "url": rc.URL, "event_types": []string{"*"}, "secret": rc.secret, "retry_base_delay_ms": 200,
	})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, body)
	}
	const n = 300
	s.postMany("evt", n)
	eventually(t, 60*time.Second, func() bool {
		return s.count(`SELECT count(*) FROM deliveries WHERE status = 'delivered'`) == n
	}, "not every delivery was delivered")
	if extra := s.count(`SELECT count(*) FROM deliveries WHERE attempts <> 2`); extra != 0 {
		t.Fatalf("%d deliveries were attempted other than twice: a retry was claimed twice or lost", extra)
	}
	if got, dups := distinct(rc); got != n || dups != 0 {
		t.Fatalf("receiver accepted %d events with %d duplicates", got, dups)
	}
}

func TestCleanStopLeavesNothingProcessing(t *testing.T) {
	s := newStack(t)
	worker := s.startWorker("SHUTDOWN_TIMEOUT=500ms")
	rc := newReceiver(t, 0)
	rc.respond = func(_ http.ResponseWriter, r *http.Request, _ int) bool {
		select { // slower than the shutdown allows
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return false
	}
	s.subscribe("sub", rc, "*")
	for i := range 5 {
		s.post(fmt.Sprintf("evt_%d", i), "x")
	}
	eventually(t, 20*time.Second, func() bool {
		return s.count(`SELECT count(*) FROM deliveries WHERE status = 'processing'`) == 5
	}, "deliveries never in flight")
	worker.signal(t, syscall.SIGTERM)
	select {
	case <-worker.done:
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not stop")
	}
	if n := s.count(`SELECT count(*) FROM deliveries WHERE status = 'processing'`); n != 0 {
		t.Fatalf("%d deliveries left processing after a clean stop", n)
	}
	if n := s.count(`SELECT count(*) FROM deliveries WHERE status = 'pending' AND attempts = 0`); n != 5 {
		t.Fatalf("interrupted deliveries were not handed back unspent: %d", n)
	}
}
