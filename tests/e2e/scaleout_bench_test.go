package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Scale-out: the topic's partitions are shared by the workers of one
// consumer group, so adding workers adds deliveries in flight. Each
// worker here has 32 handlers, all of which may go to the one destination,
// and the receiver answers after 100 ms: a worker delivers at most 320/s,
// and handlers bind long before the two cores do.
const (
	scaleOutPartitions = 16
	scaleOutHandlers   = 32
	scaleOutLatency    = 100 * time.Millisecond
)

// scaleOutWorker is the environment of a worker in these runs: its
// handlers and its slots for one destination alike, and a short lease and
// session so that a killed worker's deliveries come back within seconds.
var scaleOutWorker = []string{
	fmt.Sprintf("DELIVERY_CONCURRENCY=%d", scaleOutHandlers),
	fmt.Sprintf("DELIVERY_DESTINATION_SLOTS=%d", scaleOutHandlers),
	"DELIVERY_TIMEOUT=2s", "DELIVERY_LEASE_MARGIN=3s", "KAFKA_SESSION_TIMEOUT=6s",
}

// slowReceiver answers 204 after latency, as a receiver doing real work.
func slowReceiver(t testing.TB, latency time.Duration) *receiver {
	rc := newReceiver(t, http.StatusNoContent)
	rc.respond = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		// Real time on purpose: the benchmark measures throughput against
		// a receiver that takes this long.
		time.Sleep(latency)
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return rc
}

// postBatches posts n events "<prefix>_<i>" in batches of 500.
func (s *stack) postBatches(prefix string, n int) {
	s.t.Helper()
	for first := 0; first < n; first += 500 {
		events := make([]map[string]any, 0, 500)
		for i := first; i < min(n, first+500); i++ {
			events = append(events, map[string]any{"id": fmt.Sprintf("%s_%d", prefix, i), "type": "load.test", "data": map[string]any{"n": i}})
		}
		if code, body := s.call("POST", "/events/batch", map[string]any{"events": events}); code != http.StatusOK || body["stored"] != float64(len(events)) {
			s.t.Fatalf("post batch: %d %v", code, body)
		}
	}
}

// waitForGroup returns once the workers' consumer group is stable with
// members members and every partition of the topic assigned.
func (s *stack) waitForGroup(members int) {
	s.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka.ListenAddrs()...))
	if err != nil {
		s.t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	eventually(s.t, 90*time.Second, func() bool {
		groups, err := adm.DescribeGroups(context.Background(), "dispatch-workers")
		if err != nil {
			return false
		}
		g := groups["dispatch-workers"]
		return g.State == "Stable" && len(g.Members) == members && len(g.AssignedPartitions()[topic]) == scaleOutPartitions
	}, "the group did not settle with %d members", members)
}

// deliveredPerSecond starts workers workers, waits until they share the
// partitions, posts a burst and returns its steady rate: the start of the
// processes and the group's join are not in it.
func deliveredPerSecond(b *testing.B, workers int) float64 {
	s := startStackOn(b, scaleOutPartitions)
	rc := slowReceiver(b, scaleOutLatency)
	s.subscribeWith("sub", rc, map[string]any{"rate_limit_per_second": 100000, "max_concurrency": 10000}, "*")
	for range workers {
		s.startWorker(scaleOutWorker...)
	}
	s.waitForGroup(workers)
	// About eight seconds of delivery at the ideal rate, whatever the count.
	n := 8 * workers * scaleOutHandlers * int(time.Second/scaleOutLatency)
	s.postBatches("evt", n)
	eventually(b, 5*time.Minute, func() bool { got, _ := distinct(rc); return got == n }, "not every event delivered")
	return steadyRate(arrivals(rc))
}

// steadyRate is the rate of the middle 80 % of sorted receipts: the burst's
// ramp, as handlers first fill, and its tail, as the last partitions drain
// while others are done, are left out.
func steadyRate(times []time.Time) float64 {
	from, to := len(times)/10, len(times)*9/10
	return float64(to-from) / times[to].Sub(times[from]).Seconds()
}

// BenchmarkScaleOut measures, in one run, what the design promises when
// workers are added: delivered/s with 1, 2 and 4 workers in one consumer
// group (and the ratios to one), how soon a worker started mid-burst
// delivers, that a worker killed mid-burst loses nothing, and the busiest
// second of a destination limited to 100/s served by 4 workers; then the
// single posts one and two ingest-api instances behind one address accept
// when the API binds. It takes
// a few minutes; run it alone (go tool task scaleout):
//
//	cd tests/e2e && go test -run '^$' -bench ScaleOut -benchtime 1x -timeout 30m .
func BenchmarkScaleOut(b *testing.B) {
	for b.Loop() {
		rates := map[int]float64{}
		for _, workers := range []int{1, 2, 4} {
			rates[workers] = deliveredPerSecond(b, workers)
			b.Logf("%d worker(s): %.0f delivered/s", workers, rates[workers])
		}
		b.ReportMetric(rates[1], "delivered/s-1-worker")
		b.ReportMetric(rates[2], "delivered/s-2-workers")
		b.ReportMetric(rates[4], "delivered/s-4-workers")
		b.ReportMetric(rates[2]/rates[1], "x-2-workers")
		b.ReportMetric(rates[4]/rates[1], "x-4-workers")

		joined := workerJoinsMidBurst(b)
		b.ReportMetric(joined.Seconds(), "s-to-new-worker-delivering")
		duplicates := workerKilledMidBurst(b)
		b.ReportMetric(float64(duplicates), "redelivered-after-kill")
		busiest := limitAcrossFourWorkers(b)
		b.ReportMetric(float64(busiest), "busiest-second-at-100/s")

		one, two := apiPostsPerSecond(b, 1), apiPostsPerSecond(b, 2)
		b.Logf("single posts accepted: %.0f/s by one ingest-api, %.0f/s by two behind one address", one, two)
		b.ReportMetric(one, "posts/s-1-api")
		b.ReportMetric(two, "posts/s-2-apis")
		b.ReportMetric(two/one, "x-2-apis")
	}
}

// workerJoinsMidBurst starts a second worker while one is delivering a
// burst and returns how long after its start its first delivery began:
// the process's start, its join and the group's rebalance.
func workerJoinsMidBurst(b *testing.B) time.Duration {
	s := startStackOn(b, scaleOutPartitions)
	rc := slowReceiver(b, scaleOutLatency)
	s.subscribeWith("sub", rc, map[string]any{"rate_limit_per_second": 100000, "max_concurrency": 10000}, "*")
	s.startWorker(scaleOutWorker...)
	s.waitForGroup(1)
	const n = 6000
	s.postBatches("evt", n)
	eventually(b, time.Minute, func() bool { got, _ := distinct(rc); return got >= n/10 }, "the first worker did not start")
	started := time.Now()
	s.startWorker(scaleOutWorker...)
	eventually(b, time.Minute, func() bool {
		return s.count(`SELECT count(*) FROM attempts WHERE instance = 'worker-2'`) > 0
	}, "the second worker never delivered")
	var first time.Time
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT min(started_at) FROM attempts WHERE instance = 'worker-2'`).Scan(&first); err != nil {
		b.Fatal(err)
	}
	eventually(b, 5*time.Minute, func() bool { got, _ := distinct(rc); return got == n }, "not every event delivered")
	b.Logf("a worker started mid-burst delivered %v after its start", first.Sub(started).Round(time.Millisecond))
	return first.Sub(started)
}

// workerKilledMidBurst kills one of four workers halfway through a burst
// and checks that every event is delivered all the same; it returns how
// many were received twice (the killed worker's deliveries in flight).
func workerKilledMidBurst(b *testing.B) int {
	s := startStackOn(b, scaleOutPartitions)
	s.startScheduler("STRANDED_AFTER=3s")
	rc := slowReceiver(b, scaleOutLatency)
	s.subscribeWith("sub", rc, map[string]any{"rate_limit_per_second": 100000, "max_concurrency": 10000}, "*")
	victim := s.startWorker(scaleOutWorker...)
	for range 3 {
		s.startWorker(scaleOutWorker...)
	}
	s.waitForGroup(4)
	const n = 8000
	s.postBatches("evt", n)
	eventually(b, time.Minute, func() bool { got, _ := distinct(rc); return got >= n/2 }, "half the burst not delivered")
	if err := victim.cmd.Process.Kill(); err != nil {
		b.Fatal(err)
	}
	eventually(b, 5*time.Minute, func() bool { got, _ := distinct(rc); return got == n }, "events lost after a worker was killed")
	eventually(b, time.Minute, func() bool {
		return s.count(`SELECT count(*) FROM deliveries WHERE status <> 'delivered'`) == 0
	}, "deliveries left undelivered after a worker was killed")
	_, duplicates := distinct(rc)
	b.Logf("a worker killed mid-burst: all %d delivered, %d received twice", n, duplicates)
	return duplicates
}

// limitAcrossFourWorkers sends 1,000 events to a destination limited to
// 100/s through four workers and returns the most received in any second.
func limitAcrossFourWorkers(b *testing.B) int {
	s := startStackOn(b, scaleOutPartitions)
	rc := newReceiver(b, http.StatusNoContent)
	// Deliveries the limit keeps waiting long are given back to the
	// database, due at their turn, and the scheduler publishes them again.
	s.startScheduler()
	const limit, n = 100, 1000
	s.subscribeWith("sub", rc, map[string]any{"rate_limit_per_second": limit}, "*")
	for range 4 {
		s.startWorker(scaleOutWorker...)
	}
	s.waitForGroup(4)
	s.postBatches("evt", n)
	eventually(b, 2*time.Minute, func() bool { got, _ := distinct(rc); return got == n }, "not every event delivered")
	most, _ := slidingSecondMax(arrivals(rc))
	if most > arrivalBound(limit) {
		b.Fatalf("%d deliveries within one second at a limit of %d/s across four workers", most, limit)
	}
	if workers := s.count(`SELECT count(DISTINCT instance) FROM attempts`); workers < 4 {
		b.Fatalf("only %d workers delivered", workers)
	}
	b.Logf("limited to %d/s across four workers: at most %d in any second", limit, most)
	return most
}

// roundRobin is one address in front of backends, as a load balancer
// would be: each connection it accepts goes to the next backend.
func roundRobin(t testing.TB, backends []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var next atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			backend := backends[int(next.Add(1)-1)%len(backends)]
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				go func() {
					_, _ = io.Copy(u, c)
					u.Close()
				}()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// apiCPU is the share of a core each ingest-api instance may use in the
// API runs, as a container's CPU limit (100m) would give it: it makes the
// API, not the database or the producers, what binds on a machine of two
// cores.
const apiCPU = 0.1

// limitCPU holds process pid to share of a core with a CFS quota, in a
// cgroup of its own (cgroup v2's cpu.max, or v1's cpu controller), as a
// container runtime does for a CPU limit. It needs to run as root on a
// machine whose cgroup file system is writable; elsewhere the benchmark
// says so and stops.
func limitCPU(b *testing.B, pid int, share float64) {
	b.Helper()
	const period = 100000 // microseconds
	quota := int(share * period)
	for _, c := range []struct{ root, limit, value string }{
		{"/sys/fs/cgroup", "cpu.max", fmt.Sprintf("%d %d", quota, period)},
		{"/sys/fs/cgroup/cpu", "cpu.cfs_quota_us", strconv.Itoa(quota)},
	} {
		// A root that is not a cgroup file system has no cgroup.procs.
		if _, err := os.Stat(filepath.Join(c.root, "cgroup.procs")); err != nil {
			continue
		}
		dir := filepath.Join(c.root, fmt.Sprintf("dispatch-bench-%d", pid))
		if err := os.Mkdir(dir, 0o755); err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, c.limit), []byte(c.value), 0o644); err != nil {
			_ = os.Remove(dir)
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			_ = os.Remove(dir)
			continue
		}
		b.Cleanup(func() {
			_ = os.WriteFile(filepath.Join(c.root, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
			_ = os.Remove(dir)
		})
		return
	}
	b.Fatalf("cannot limit the ingest-api's CPU here (needs root and a writable cgroup file system with the cpu controller)")
}

// apiPostsPerSecond runs instances ingest-api processes, each limited to
// apiCPU of a core, behind one address and returns the single posts they
// accept per second over ten seconds from 64 producers per instance, each
// on a connection of its own. Enough that an instance always has requests
// queued (with fewer, the time they wait through the quota's pauses binds,
// not the CPU), and as many per instance in either run: a post's cost falls
// as the groups committed together grow, so one instance given every
// producer would commit bigger groups than each of two.
func apiPostsPerSecond(b *testing.B, instances int) float64 {
	s := startStackOn(b, scaleOutPartitions, "GOMAXPROCS=1")
	limitCPU(b, s.api.cmd.Process.Pid, apiCPU)
	rc := newReceiver(b, http.StatusNoContent)
	s.subscribe("sub", rc, "*")
	backends := []string{strings.TrimPrefix(s.apiURL, "http://")}
	for range instances - 1 {
		addr := freeAddr(b)
		p := s.start("ingest-api", "ADDR="+addr, "GOMAXPROCS=1")
		limitCPU(b, p.cmd.Process.Pid, apiCPU)
		s.waitReady("http://" + addr)
		backends = append(backends, addr)
	}
	front := roundRobin(b, backends)
	producers, lasting := 64*instances, 10*time.Second
	var accepted, refused atomic.Int64
	deadline := time.Now().Add(lasting)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
			defer c.CloseIdleConnections()
			for i := 0; time.Now().Before(deadline); i++ {
				body := fmt.Sprintf(`{"id":"p%d_%d","type":"load.test","data":{"n":1}}`, p, i)
				req, err := http.NewRequest(http.MethodPost, front+"/events", strings.NewReader(body))
				if err != nil {
					refused.Add(1)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+adminKey)
				resp, err := c.Do(req)
				if err != nil {
					refused.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					accepted.Add(1)
				} else {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if refused.Load() > 0 {
		b.Fatalf("%d posts not accepted", refused.Load())
	}
	return float64(accepted.Load()) / lasting.Seconds()
}
