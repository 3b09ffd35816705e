package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dispatch-webhooks/dispatch/libs/client"
	"github.com/dispatch-webhooks/dispatch/libs/egress"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

const topic = "events.pending"

// adminKey is every test stack's ADMIN_API_KEY, sent by call.
const adminKey = "e2e-admin-key-0123456789abcdef"

// secretsKey seals the test stacks' subscription secrets.
const secretsKey = "ZTJlLXNlY3JldHMta2V5LTAxMjM0NTY3ODlhYmNkZWY="

// binDir holds the service binaries built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dispatch-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, pkg := range []string{"services/ingest-api", "services/delivery-worker", "services/retry-scheduler", "services/dashboard", "examples/portal-embed"} {
		svc := filepath.Base(pkg)
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, svc), ".")
		cmd.Dir = filepath.Join("..", "..", pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", svc, err)
			os.Exit(1)
		}
	}
	// The dev stack, for the tests of `go tool task dev` (devstack_test.go).
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "devstack"), ".")
	cmd.Dir = filepath.Join("..", "..", "tools", "devstack")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build devstack: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// stack is one test's Dispatch: its own database, Kafka and processes.
type stack struct {
	t       testing.TB
	db      *testkit.Database
	kafka   *kfake.Cluster
	brokers string
	apiURL  string
	// redisPrefix keeps this test's limits apart from every other test's.
	redisPrefix string
	// rdb reaches the Redis the services use, when it is the shared one.
	rdb redis.UniversalClient
	// redis, if set, is the test's own Redis server instead of the shared one.
	redis *testkit.RedisServer
	// workers counts the delivery workers started, to name them.
	workers int
	// api is the ingest-api process at apiURL.
	api *proc
}

func (s *stack) redisURL() string {
	if s.redis != nil {
		return s.redis.URL()
	}
	return testkit.RedisURL()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newStack(t *testing.T) *stack {
	t.Helper()
	t.Parallel()
	return startStack(t)
}

// startStack is newStack for benchmarks too: it does not mark the test
// parallel, and apiEnv adds to the ingest-api's environment.
func startStack(t testing.TB, apiEnv ...string) *stack {
	t.Helper()
	return startStackOn(t, 4, apiEnv...)
}

// startStackOn is startStack with a topic of the given partitions.
func startStackOn(t testing.TB, partitions int32, apiEnv ...string) *stack {
	t.Helper()
	s := &stack{t: t, db: testkit.Postgres(t)}
	s.rdb, s.redisPrefix = testkit.Redis(t)
	s.kafka = testkit.Kafka(t, partitions, topic)
	s.brokers = strings.Join(s.kafka.ListenAddrs(), ",")
	addr := freeAddr(t)
	s.apiURL = "http://" + addr
	s.api = s.start("ingest-api", append([]string{"ADDR=" + addr}, apiEnv...)...)
	s.waitReady(s.apiURL)
	return s
}

func (s *stack) env(extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"DATABASE_URL=" + s.db.URL,
		"DB_MAX_CONNS=6", // tests run side by side on one server with 100 connection slots
		"KAFKA_BROKERS=" + s.brokers,
		"KAFKA_TOPIC=" + topic,
		"REDIS_URL=" + s.redisURL(),
		"REDIS_KEY_PREFIX=" + s.redisPrefix,
		"DELIVERY_ALLOW_CIDRS=127.0.0.0/8,::1/128", // the test receivers are local
		"ADMIN_API_KEY=" + adminKey,
		"SECRETS_ENCRYPTION_KEY=" + secretsKey,
		"LOG_FORMAT=text",
		"SHUTDOWN_TIMEOUT=5s",
	}, extra...)
}

// proc is a running service binary; done closes when it has exited.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// start runs a service binary until the test ends, then stops it with
// SIGTERM as an orchestrator would.
func (s *stack) start(svc string, env ...string) *proc {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, svc))
	cmd.Env = s.env(env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", svc, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if s.t.Failed() {
			s.t.Logf("%s output:\n%s", svc, logs.String())
		}
	})
	return &proc{cmd: cmd, done: done}
}

func (s *stack) startWorker(env ...string) *proc {
	s.t.Helper()
	addr := freeAddr(s.t)
	s.workers++
	cmd := s.start("delivery-worker", append([]string{"ADDR=" + addr, "DELIVERY_TIMEOUT=5s", fmt.Sprintf("INSTANCE_ID=worker-%d", s.workers)}, env...)...)
	s.waitReady("http://" + addr)
	return cmd
}

// startScheduler runs a retry scheduler that polls every 100 ms.
func (s *stack) startScheduler(env ...string) {
	s.t.Helper()
	addr := freeAddr(s.t)
	s.start("retry-scheduler", append([]string{"ADDR=" + addr, "RETRY_POLL_INTERVAL=100ms"}, env...)...)
	s.waitReady("http://" + addr)
}

// count runs a counting query on the stack's database.
func (s *stack) count(query string, args ...any) int {
	s.t.Helper()
	var n int
	if err := s.db.Pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// readiness asks a service whether it is ready. Each try is bounded: the
// address a test picked (freeAddr) can be taken by another test's
// listener before the service binds it, and a Kafka broker there accepts
// the request and never answers it (seen: TestPortal waiting 11 minutes).
var readiness = &http.Client{Timeout: 2 * time.Second}

func (s *stack) waitReady(base string) {
	s.t.Helper()
	eventually(s.t, 30*time.Second, func() bool {
		resp, err := readiness.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "service at %s never became ready", base)
}

// call sends a JSON request to the API and decodes the answer. A
// json.RawMessage body is sent byte for byte, as written.
func (s *stack) call(method, path string, body any) (int, map[string]any) {
	s.t.Helper()
	code, out, err := s.send(method, path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	return code, out
}

// send is call for goroutines other than the test's own: it reports a
// failure to send or decode instead of ending the test.
func (s *stack) send(method, path string, body any) (int, map[string]any, error) {
	var r io.Reader
	if raw, ok := body.(json.RawMessage); ok {
		r = bytes.NewReader(raw)
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.apiURL+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return 0, nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out, nil
}

// subscribe points a new subscription at rc.
func (s *stack) subscribe(id string, rc *receiver, patterns ...string) {
	s.t.Helper()
	code, body := s.call("POST", "/subscriptions", map[string]any{"id": id, "url": rc.URL, "event_types": patterns, "secret": rc.secret})
	if code != http.StatusCreated {
		s.t.Fatalf("create subscription: %d %v", code, body)
	}
}

// post sends an event as a careful producer would: a 503 is retried, which
// is safe because the event id makes ingest idempotent.
// It posts through the Go client generated from the API's document, as a
// producer would.
func (s *stack) post(id, typ string) int {
	s.t.Helper()
	code, err := s.tryPost(id, typ)
	if err != nil {
		s.t.Fatal(err)
	}
	return code
}

// tryPost is post for goroutines other than the test's own: it returns
// what went wrong instead of failing the test. An API that answers 503
// (its database unreachable) is asked again for up to 3 s.
func (s *stack) tryPost(id, typ string) (int, error) {
	api, err := client.NewClientWithResponses(s.apiURL, client.WithAPIKey(adminKey))
	if err != nil {
		return 0, err
	}
	source := "e2e"
	var res *client.CreateEventResponse
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	poll(ctx, func() bool {
		res, err = api.CreateEventWithResponse(context.Background(), client.CreateEventJSONRequestBody{
			Id: id, Type: typ, Source: &source, Data: map[string]any{"n": 1},
		})
		return err != nil || res.StatusCode() != http.StatusServiceUnavailable
	})
	if err != nil {
		return 0, fmt.Errorf("post event %s: %w", id, err)
	}
	if code := res.StatusCode(); code != http.StatusAccepted && code != http.StatusOK {
		return code, fmt.Errorf("post event %s: %d %s", id, code, res.Body)
	}
	return res.StatusCode(), nil
}

// receiver is a webhook endpoint that verifies every delivery.
type receiver struct {
	URL      string
	mu       sync.Mutex
	got      []delivered
	bad      []string
	status   int
	secret   string
	verifier *signing.Verifier
	// respond, if set, answers instead of status; n counts the requests
	// for this event id so far, starting at 1.
	respond func(w http.ResponseWriter, r *http.Request, n int) bool
	seen    map[string]int
}

// delivered is a request the receiver accepted (answered 2xx).
type delivered struct {
	EventID string
	Type    string
	Body    map[string]any
	At      time.Time
	// Header and Raw are the request's headers and body as received.
	Header http.Header
	Raw    []byte
}

// newReceiver starts an endpoint answering status, with its own secret.
func newReceiver(t testing.TB, status int) *receiver {
	t.Helper()
	secret := signing.GenerateSecret()
	v, err := signing.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{status: status, secret: secret, verifier: v, seen: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	rc.URL = srv.URL + "/hook"
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := rc.verifier.VerifyHeaders(r.Header, body); err != nil {
		rc.bad = append(rc.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := r.Header.Get("webhook-id")
	rc.seen[id]++
	if rc.respond != nil {
		n := rc.seen[id]
		rc.mu.Unlock()
		ok := rc.respond(w, r, n)
		rc.mu.Lock()
		if !ok {
			return
		}
	} else if rc.status < 200 || rc.status > 299 {
		w.WriteHeader(rc.status)
		return
	}
	var p map[string]any
	_ = json.Unmarshal(body, &p)
	rc.got = append(rc.got, delivered{EventID: id, Type: r.Header.Get("X-Dispatch-Event-Type"), Body: p, At: time.Now(),
		Header: r.Header.Clone(), Raw: body})
	if rc.respond == nil {
		w.WriteHeader(rc.status)
	}
}

// trust makes the receiver verify signatures with secrets from now on, as
// a receiver does once it is given a secret made elsewhere.
func (rc *receiver) trust(t *testing.T, secrets ...string) {
	t.Helper()
	v, err := signing.NewVerifier(secrets)
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secret, rc.verifier = secrets[len(secrets)-1], v
}

// reset forgets what the receiver got so far.
func (rc *receiver) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.got, rc.bad, rc.seen = nil, nil, map[string]int{}
}

// requests returns how many requests arrived for an event id.
func (rc *receiver) requests(id string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.seen[id]
}

func (rc *receiver) deliveries() []delivered {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivered(nil), rc.got...)
}

func (rc *receiver) rejected() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.bad...)
}

// eventually fails the test unless cond holds within the given time. The
// services are other processes: nothing in them tells the test when their
// state changes, so it is polled.
func eventually(t testing.TB, within time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if !poll(ctx, cond) {
		t.Fatalf(format, args...)
	}
}

// pollEvery is how often poll looks again.
const pollEvery = 25 * time.Millisecond

// poll calls cond until it holds or ctx ends, and reports whether it held.
func poll(ctx context.Context, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pollEvery):
		}
	}
	return true
}

// settle waits until no delivery is open (each delivered or failed for
// good): none can then reach a receiver any more, since only an open
// delivery is claimed, so a test may check what did not arrive.
func (s *stack) settle(within time.Duration) {
	s.t.Helper()
	eventually(s.t, within, func() bool {
		return s.count(`SELECT count(*) FROM deliveries WHERE status IN ('pending', 'processing', 'retrying')`) == 0
	}, "deliveries still open after %v", within)
}

// awaitRateWindowEmpty waits until the rate window of the destination of
// url holds no turn of the last second on Redis' clock, which the limit is
// counted on: a burst measured after it starts from an empty window.
func (s *stack) awaitRateWindowEmpty(url string) {
	s.t.Helper()
	ctx := context.Background()
	key := s.redisPrefix + ":{" + egress.Destination(url) + "}:rate"
	eventually(s.t, 10*time.Second, func() bool {
		now, err := s.rdb.Time(ctx).Result()
		if err != nil {
			return false
		}
		last, err := s.rdb.ZRevRangeWithScores(ctx, key, 0, 0).Result()
		return err == nil && (len(last) == 0 || now.Sub(time.UnixMicro(int64(last[0].Score))) > time.Second)
	}, "the rate window of %s did not empty", url)
}
