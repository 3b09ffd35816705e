package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// devStack is `go tool task dev` (bin/devstack up) run by a test: its own
// database, Redis key prefix, data directory and free ports, never the
// defaults, so that it runs beside a developer's own dev stack.
type devStack struct {
	t testing.TB
	// dir is the working directory; the data directory is dir/.data, as
	// in a checkout.
	dir     string
	dbURL   string
	prefix  string
	addrs   map[string]string
	out     *watchedLog
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool
}

// newDevStack prepares a dev stack in a new directory; start runs it.
func newDevStack(t *testing.T) *devStack {
	t.Helper()
	d := &devStack{t: t, dir: t.TempDir(), dbURL: testkit.Postgres(t).URL, addrs: map[string]string{}}
	_, d.prefix = testkit.Redis(t)
	for _, name := range []string{"API_ADDR", "WORKER_ADDR", "SCHEDULER_ADDR", "DASHBOARD_ADDR", "RECEIVER_ADDR", "KAFKA_ADDR"} {
		d.addrs[name] = freeAddr(t)
	}
	return d
}

// dbName is the name of the dev stack's database.
func (d *devStack) dbName() string {
	u, err := url.Parse(d.dbURL)
	if err != nil {
		d.t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// apiURL is the dev stack's API.
func (d *devStack) apiURL() string { return "http://" + d.addrs["API_ADDR"] }

// dataDir is the dev stack's .data.
func (d *devStack) dataDir() string { return filepath.Join(d.dir, ".data") }

// start runs the dev stack and returns once it has printed that it runs.
// The test's end stops it.
func (d *devStack) start() {
	d.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "devstack"), "up")
	cmd.Dir = d.dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + d.dbURL,
		"DB_MAX_CONNS=6",
		"REDIS_URL=" + testkit.RedisURL(),
		"REDIS_KEY_PREFIX=" + d.prefix,
		"DATA_DIR=" + d.dataDir(),
		"BIN_DIR=" + binDir,
		"KAFKA_TOPIC=" + topic,
	}
	for name, addr := range d.addrs {
		cmd.Env = append(cmd.Env, name+"="+addr)
	}
	d.out = &watchedLog{changed: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start devstack: %v", err)
	}
	d.cmd, d.done, d.stopped = cmd, make(chan struct{}), false
	go func() { _ = cmd.Wait(); close(d.done) }()
	d.t.Cleanup(d.stop)
	d.waitOutput("Dispatch is running.", 3*time.Minute)
}

// stop stops the dev stack as Ctrl-C does and waits until it has exited.
func (d *devStack) stop() {
	if d.stopped {
		return
	}
	d.stopped = true
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.done:
	case <-time.After(time.Minute):
		_ = d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("the dev stack did not stop within a minute")
	}
	if d.t.Failed() {
		d.t.Logf("dev stack output:\n%s", d.out.String())
	}
}

// waitOutput returns once the dev stack's output holds want, and fails the
// test if it exits or within passes first.
func (d *devStack) waitOutput(want string, within time.Duration) {
	d.t.Helper()
	timeout := time.After(within)
	for {
		text, changed := d.out.snapshot()
		if strings.Contains(text, want) {
			return
		}
		select {
		case <-changed:
		case <-d.done:
			if text, _ := d.out.snapshot(); !strings.Contains(text, want) {
				d.t.Fatalf("the dev stack exited before printing %q:\n%s", want, text)
			}
			return
		case <-timeout:
			d.t.Fatalf("the dev stack did not print %q within %s:\n%s", want, within, text)
		}
	}
}

// key is the admin key the dev stack wrote to .data/dev-api-key.
func (d *devStack) key() string {
	d.t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dataDir(), "dev-api-key"))
	if err != nil {
		d.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// call sends a JSON request to the dev stack's API with its admin key.
func (d *devStack) call(method, path string, body any) (int, map[string]any) {
	d.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			d.t.Fatal(err)
		}
		r = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(context.Background(), method, d.apiURL()+path, r)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+d.key())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			d.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

// watchedLog collects a process's output and tells waiters of each write.
type watchedLog struct {
	mu      sync.Mutex
	buf     strings.Builder
	changed chan struct{}
}

func (l *watchedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// snapshot returns the output so far and a channel closed by the next write.
func (l *watchedLog) snapshot() (string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String(), l.changed
}

func (l *watchedLog) String() string {
	s, _ := l.snapshot()
	return s
}

// TestDevStackRestartKeepsHistory restarts the dev stack and finds an
// event delivered before the restart as it was: its delivery to the demo
// subscription and its attempt.
func TestDevStackRestartKeepsHistory(t *testing.T) {
	t.Parallel()
	d := newDevStack(t)
	d.start()

	// Each step says when it is done, so a first run is never silent.
	out := d.out.String()
	at := 0
	for _, step := range []string{
		"database " + d.dbName() + " migrated",
		"embedded Kafka on ",
		"demo receiver on http://" + d.addrs["RECEIVER_ADDR"],
		"ingest-api is up on http://" + d.addrs["API_ADDR"],
		"delivery-worker is up on http://" + d.addrs["WORKER_ADDR"],
		"retry-scheduler is up on http://" + d.addrs["SCHEDULER_ADDR"],
		"dashboard is up on http://" + d.addrs["DASHBOARD_ADDR"],
		"Dispatch is running.",
	} {
		i := strings.Index(out[at:], step)
		if i < 0 {
			t.Fatalf("the dev stack did not print %q after its earlier steps:\n%s", step, out)
		}
		at += i + len(step)
	}

	if code, body := d.call("POST", "/events", map[string]any{"id": "evt_before_restart", "type": "order.created", "data": map[string]any{"order_id": 7}}); code != http.StatusAccepted {
		t.Fatalf("POST /events = %d %v", code, body)
	}
	d.waitOutput("delivered evt_before_restart", time.Minute)
	eventually(t, 30*time.Second, func() bool {
		_, ev := d.call("GET", "/events/evt_before_restart", nil)
		return ev["status"] == "delivered"
	}, "evt_before_restart never reported delivered")

	d.stop()
	d.start()

	code, ev := d.call("GET", "/events/evt_before_restart", nil)
	ds, _ := ev["deliveries"].([]any)
	if code != http.StatusOK || ev["status"] != "delivered" || len(ds) != 1 {
		t.Fatalf("after a restart GET /events/evt_before_restart = %d %v, want it delivered to demo", code, ev)
	}
	if del := ds[0].(map[string]any); del["subscription_id"] != "demo" || del["status"] != "delivered" || del["attempts"] != 1.0 {
		t.Fatalf("after a restart its delivery = %v", del)
	}
	code, attempts := d.call("GET", "/events/evt_before_restart/attempts", nil)
	if list, _ := attempts["data"].([]any); code != http.StatusOK || len(list) != 1 {
		t.Fatalf("after a restart GET /events/evt_before_restart/attempts = %d %v, want its one attempt", code, attempts)
	}

	// The demo subscription still delivers, verified, after the restart.
	if code, body := d.call("POST", "/events", map[string]any{"id": "evt_after_restart", "type": "order.created", "data": map[string]any{"order_id": 8}}); code != http.StatusAccepted {
		t.Fatalf("POST /events = %d %v", code, body)
	}
	d.waitOutput("delivered evt_after_restart", time.Minute)
	if strings.Contains(d.out.String(), "REJECTED") {
		t.Fatalf("the demo receiver rejected a delivery:\n%s", d.out)
	}
}
