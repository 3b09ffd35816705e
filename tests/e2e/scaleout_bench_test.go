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

	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

// Scale-out: the topic's partitions are shared by the workers of one
// consumer group, so adding workers adds deliveries in flight. Each
// worker here has 8 handlers, all of which may go to the one destination,
// and the receiver answers after 100 ms: a worker delivers at most 80/s.
// So few because the whole stack shares the machine's cores: with 32
// handlers, four workers' 1,000 deliveries/s kept two cores 94 % busy
// (a delivery costs the stack's processes 2-3 ms of CPU when handlers
// are so spread that each group commits about one delivery), and the
// cores, not the handlers, bound. Each phase reports how busy the cores
// were.
const (
	scaleOutPartitions = 16
	scaleOutHandlers   = 8
	scaleOutLatency    = 100 * time.Millisecond
	// cpuBound is the share of the cores beyond which a phase is taken
	// to be bound by them rather than by its handlers.
	cpuBound = 0.9
)

// scaleOutWorker is the environment of a worker in these runs: its
// handlers and its slots for one destination alike, and a short lease and
// session so that a killed worker's deliveries come back within seconds.
var scaleOutWorker = []string{
	fmt.Sprintf("DELIVERY_CONCURRENCY=%d", scaleOutHandlers),
	fmt.Sprintf("DELIVERY_DESTINATION_SLOTS=%d", scaleOutHandlers),
	"DELIVERY_TIMEOUT=2s", "DELIVERY_LEASE_MARGIN=3s", "KAFKA_SESSION_TIMEOUT=6s",
}

// subscribeClock subscribes rc to every event, with settings.
func (s *stack) subscribeClock(rc *clockReceiver, settings map[string]any) {
	s.t.Helper()
	s.subscribeURL("sub", rc.URL, signing.GenerateSecret(), settings, "*")
}

// cpuMeter samples the machine's CPU time (/proc/stat) so that a run can
// say how busy the cores were over its measured window: a scale-out
// figure means something only while handlers, not the cores, bind.
type cpuMeter struct {
	mu      sync.Mutex
	samples []cpuSample
	stop    chan struct{}
}

type cpuSample struct {
	at          time.Time
	busy, total uint64
}

func startCPUMeter(t testing.TB) *cpuMeter {
	t.Helper()
	m := &cpuMeter{stop: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if busy, total, ok := readCPU(); ok {
				m.mu.Lock()
				m.samples = append(m.samples, cpuSample{time.Now(), busy, total})
				m.mu.Unlock()
			}
			select {
			case <-tick.C:
			case <-m.stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(m.stop); <-done })
	return m
}

// readCPU reads the busy and total jiffies of all cores; ok is false
// where /proc/stat is not there.
func readCPU() (busy, total uint64, ok bool) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, false
	}
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		if i != 3 && i != 4 { // idle and iowait
			busy += v
		}
	}
	return busy, total, true
}

// busy is the share of the machine's CPU time used between from and to,
// from the samples nearest inside them; -1 if there are too few.
func (m *cpuMeter) busy(from, to time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var first, last *cpuSample
	for i := range m.samples {
		sm := &m.samples[i]
		if sm.at.Before(from) || sm.at.After(to) {
			continue
		}
		if first == nil {
			first = sm
		}
		last = sm
	}
	if first == nil || last == first || last.total == first.total {
		return -1
	}
	return float64(last.busy-first.busy) / float64(last.total-first.total)
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

// phase is a benchmark's scope for one phase: what the phase's stack
// registers to clean up runs when the phase ends, not with the benchmark,
// so that the stacks of earlier phases do not idle beside it on the cores
// it measures (an idle stack's Kafka and Redis polling is not free).
type phase struct {
	*testing.B
	cleanups []func()
}

func newPhase(b *testing.B) *phase { return &phase{B: b} }

// Cleanup registers f to run when the phase ends.
func (p *phase) Cleanup(f func()) { p.cleanups = append(p.cleanups, f) }

// end runs the phase's cleanups, last registered first.
func (p *phase) end() {
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		p.cleanups[i]()
	}
}

// unlimited lifts the subscription's own limits out of the way, so that
// the workers' handlers bind.
var unlimited = map[string]any{"rate_limit_per_second": 100000, "max_concurrency": 10000}

// deliveredPerSecond starts workers workers, waits until they share the
// partitions, posts a burst and returns its steady rate and how busy the
// machine's cores were meanwhile: the start of the processes and the
// group's join are not in it.
func deliveredPerSecond(bb *testing.B, workers int) (rate, cpuBusy float64) {
	b := newPhase(bb)
	defer b.end()
	s := startStackOn(b, scaleOutPartitions)
	rc := newClockReceiver(b, scaleOutLatency)
	s.subscribeClock(rc, unlimited)
	for range workers {
		s.startWorker(scaleOutWorker...)
	}
	s.waitForGroup(workers)
	cpu := startCPUMeter(b)
	// About eight seconds of delivery at the ideal rate, whatever the count.
	n := 8 * workers * scaleOutHandlers * int(time.Second/scaleOutLatency)
	s.postBatches("evt", n)
	rc.await(b, n, 5*time.Minute, "not every event delivered")
	return steadyRate(rc.firsts(), cpu)
}

// steadyRate is the rate of the middle 80 % of sorted receipts, and the
// share of the cores busy over it: the burst's ramp, as handlers first
// fill, and its tail, as the last partitions drain while others are done,
// are left out.
func steadyRate(times []time.Time, cpu *cpuMeter) (rate, cpuBusy float64) {
	from, to := len(times)/10, len(times)*9/10
	return float64(to-from) / times[to].Sub(times[from]).Seconds(), cpu.busy(times[from], times[to])
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
		rates, busy := map[int]float64{}, map[int]float64{}
		for _, workers := range []int{1, 2, 4} {
			rates[workers], busy[workers] = deliveredPerSecond(b, workers)
			b.Logf("%d worker(s): %.0f delivered/s, the cores %.0f%% busy", workers, rates[workers], 100*busy[workers])
			if busy[workers] > cpuBound {
				b.Logf("the cores were more than %.0f%% busy: they, not the handlers, bound this phase", 100*cpuBound)
			}
		}
		b.ReportMetric(rates[1], "delivered/s-1-worker")
		b.ReportMetric(rates[2], "delivered/s-2-workers")
		b.ReportMetric(rates[4], "delivered/s-4-workers")
		b.ReportMetric(rates[2]/rates[1], "x-2-workers")
		b.ReportMetric(rates[4]/rates[1], "x-4-workers")
		b.ReportMetric(100*busy[4], "cpu-busy-%-4-workers")

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
func workerJoinsMidBurst(bb *testing.B) time.Duration {
	b := newPhase(bb)
	defer b.end()
	s := startStackOn(b, scaleOutPartitions)
	rc := newClockReceiver(b, scaleOutLatency)
	s.subscribeClock(rc, unlimited)
	s.startWorker(scaleOutWorker...)
	s.waitForGroup(1)
	// About sixteen seconds of one worker's delivery.
	n := 16 * scaleOutHandlers * int(time.Second/scaleOutLatency)
	s.postBatches("evt", n)
	rc.await(b, n/10, time.Minute, "the first worker did not start")
	started := time.Now()
	s.startWorker(scaleOutWorker...)
	eventually(b, time.Minute, func() bool {
		return s.count(`SELECT count(*) FROM attempts WHERE instance = 'worker-2'`) > 0
	}, "the second worker never delivered")
	var first time.Time
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT min(started_at) FROM attempts WHERE instance = 'worker-2'`).Scan(&first); err != nil {
		b.Fatal(err)
	}
	rc.await(b, n, 5*time.Minute, "not every event delivered")
	b.Logf("a worker started mid-burst delivered %v after its start", first.Sub(started).Round(time.Millisecond))
	return first.Sub(started)
}

// workerKilledMidBurst kills one of four workers halfway through a burst
// and checks that every event is delivered all the same; it returns how
// many were received twice (the killed worker's deliveries in flight).
func workerKilledMidBurst(bb *testing.B) int {
	b := newPhase(bb)
	defer b.end()
	s := startStackOn(b, scaleOutPartitions)
	s.startScheduler("STRANDED_AFTER=3s")
	rc := newClockReceiver(b, scaleOutLatency)
	s.subscribeClock(rc, unlimited)
	victim := s.startWorker(scaleOutWorker...)
	for range 3 {
		s.startWorker(scaleOutWorker...)
	}
	s.waitForGroup(4)
	// About ten seconds of four workers' delivery.
	n := 10 * 4 * scaleOutHandlers * int(time.Second/scaleOutLatency)
	s.postBatches("evt", n)
	rc.await(b, n/2, time.Minute, "half the burst not delivered")
	if err := victim.cmd.Process.Kill(); err != nil {
		b.Fatal(err)
	}
	rc.await(b, n, 5*time.Minute, "events lost after a worker was killed")
	eventually(b, time.Minute, func() bool {
		return s.count(`SELECT count(*) FROM deliveries WHERE status <> 'delivered'`) == 0
	}, "deliveries left undelivered after a worker was killed")
	duplicates := rc.duplicates()
	b.Logf("a worker killed mid-burst: all %d delivered, %d received twice", n, duplicates)
	return duplicates
}

// limitAcrossFourWorkers sends 1,000 events to a destination limited to
// 100/s through four workers and returns the most received in any second.
func limitAcrossFourWorkers(bb *testing.B) int {
	b := newPhase(bb)
	defer b.end()
	s := startStackOn(b, scaleOutPartitions)
	rc := newClockReceiver(b, 0)
	// Deliveries the limit keeps waiting long are given back to the
	// database, due at their turn, and the scheduler publishes them again.
	s.startScheduler()
	const limit, n = 100, 1000
	s.subscribeClock(rc, map[string]any{"rate_limit_per_second": limit})
	for range 4 {
		s.startWorker(scaleOutWorker...)
	}
	s.waitForGroup(4)
	s.postBatches("evt", n)
	rc.await(b, n, 2*time.Minute, "not every event delivered")
	most, _ := slidingSecondMax(rc.since(0))
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
func limitCPU(b testing.TB, pid int, share float64) {
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
func apiPostsPerSecond(bb *testing.B, instances int) float64 {
	b := newPhase(bb)
	defer b.end()
	s := startStackOn(b, scaleOutPartitions, "GOMAXPROCS=1")
	limitCPU(b, s.api.cmd.Process.Pid, apiCPU)
	s.subscribeClock(newClockReceiver(b, 0), nil)
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
