package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// dashboardBenchEvents and dashboardBenchSubscriptions are how much
// BenchmarkDashboard1M stores.
const (
	dashboardBenchEvents        = 1_000_000
	dashboardBenchSubscriptions = 2_000
)

// seedDashboardSQL stores $2 subscriptions (sub_0000…; one in 101 paused,
// one in 211 disabled) and $1 events spread evenly over the 7 days up to
// now, in 10 common types and one rare one, each with deliveries to two
// subscriptions (none for 1 event in 100). The last 1,000 events'
// deliveries are pending; of the others 0.5% are retrying, 2% failed and
// the rest delivered, two seconds after their event. Everything follows
// from the row's number, so every run stores the same data.
var seedDashboardSQL = []testkit.Statement{
	{SQL: `INSERT INTO subscriptions (id, url, event_types, secret, state, state_reason)
	 SELECT format('sub_%s', lpad(i::text, 4, '0')), 'https://example.com/hooks/' || i,
	        ARRAY[(ARRAY['order.*','invoice.*','user.*','shipment.*','*'])[1 + i % 5]], 'whsec_x',
	        CASE WHEN i % 211 = 5 THEN 'disabled' WHEN i % 101 = 3 THEN 'paused' ELSE 'active' END,
	        CASE WHEN i % 211 = 5 THEN 'endpoint answered 410 Gone' ELSE '' END
	 FROM generate_series(0, $1 - 1) i`, Args: []any{dashboardBenchSubscriptions}},
	{SQL: `INSERT INTO events (id, type, source, data, received_at)
	 SELECT format('evt_%s', lpad(i::text, 7, '0')),
	        CASE WHEN i % 5000 = 0 THEN 'audit.export'
	             ELSE (ARRAY['order.created','order.updated','order.paid','order.refunded','invoice.created',
	                         'invoice.paid','user.signup','user.deleted','shipment.sent','shipment.delivered'])[1 + (i * 7919) % 10] END,
	        'seed', '{"order_id": 1, "amount": 1200, "currency": "EUR"}', now() - ($1 - 1 - i) * interval '7 days' / $1
	 FROM generate_series(0::bigint, $1 - 1) i`, Args: []any{int64(dashboardBenchEvents)}},
	{SQL: `INSERT INTO deliveries (event_id, subscription_id, status, attempts, next_attempt_at, last_status_code, created_at, updated_at)
	 SELECT e.id, format('sub_%s', lpad(v.s::text, 4, '0')), x.st,
	        CASE x.st WHEN 'pending' THEN 0 WHEN 'delivered' THEN 1 ELSE 3 END,
	        CASE x.st WHEN 'pending' THEN e.received_at WHEN 'retrying' THEN e.received_at + interval '1 hour' END,
	        CASE x.st WHEN 'delivered' THEN 204 WHEN 'pending' THEN NULL ELSE 500 END,
	        e.received_at, e.received_at + interval '2 seconds'
	 FROM events e,
	      LATERAL (SELECT substr(e.id, 5)::bigint AS i) n,
	      LATERAL (VALUES (n.i % $2), ((n.i + $2 / 2) % $2)) v(s),
	      LATERAL (SELECT CASE WHEN n.i > $1 - 1000 THEN 'pending'
	                           WHEN (n.i * 7 + v.s) % 1000 < 5 THEN 'retrying'
	                           WHEN (n.i * 7 + v.s) % 1000 < 25 THEN 'failed'
	                           ELSE 'delivered' END AS st) x
	 WHERE (n.i * 31) % 100 <> 0`, Args: []any{int64(dashboardBenchEvents), int64(dashboardBenchSubscriptions)}},
}

// BenchmarkDashboard1M times every dashboard page, as the server answers
// it (dashboard, API and database together), against the real ingest-api
// and dashboard binaries and a database holding 1,000,000 events, about
// 2,000,000 deliveries and 2,000 subscriptions, with the week's minutes
// rolled up as the retry scheduler would have. Each iteration asks for
// another event or subscription where the page shows one; the p50 and p99
// latency are reported. Seeding takes a few minutes; run it on its own:
//
//	cd tests/e2e && go test -run '^$' -bench Dashboard1M -benchtime 50x .
func BenchmarkDashboard1M(b *testing.B) {
	s := startStack(b, "DB_MAX_CONNS=30") // the ingest-api's default pool, not the tests' small one
	ctx := context.Background()
	testkit.Seed(b, s.db.Pool, seedDashboardSQL...)
	b.Logf("seeded %d events, %d subscriptions", dashboardBenchEvents, dashboardBenchSubscriptions)
	start := time.Now()
	st := store.New(s.db.Pool)
	for {
		n, err := st.RollUpActivity(ctx, 1440)
		if err != nil {
			b.Fatalf("roll up: %v", err)
		}
		if n < 1440 {
			break
		}
	}
	b.Logf("rolled up a week of minutes in %s", time.Since(start).Round(time.Millisecond))

	base := s.startDashboard()
	c := dashboardClient(b, base, adminKey)
	rng := rand.New(rand.NewPCG(1, 2))
	timePages(b, c, base, []benchPage{
		{"overview", func() string { return "/" }},
		{"events", func() string { return "/events" }},
		{"events-failed", func() string { return "/events?status=failed" }},
		{"events-pattern", func() string { return "/events?type=order.*" }},
		{"event", func() string { return fmt.Sprintf("/events/evt_%07d", rng.IntN(dashboardBenchEvents)) }},
		{"subscriptions", func() string { return "/subscriptions" }},
		{"subscription", func() string { return fmt.Sprintf("/subscriptions/sub_%04d", rng.IntN(dashboardBenchSubscriptions)) }},
	})
}

// benchPage is a page a benchmark asks for: path gives the next URL.
type benchPage struct {
	name string
	path func() string
}

// timePages runs a sub-benchmark per page that asks c for it from base
// b.N times, fails on an answer other than a page shown, and reports the
// p50 and p99 latency as the client saw it.
func timePages(b *testing.B, c *http.Client, base string, pages []benchPage) {
	b.Helper()
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			took := make([]time.Duration, 0, b.N)
			for b.Loop() {
				path := p.path()
				t0 := time.Now()
				resp, err := c.Get(base + path)
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				took = append(took, time.Since(t0))
				if err != nil || resp.StatusCode != http.StatusOK || strings.Contains(string(body), `data-testid="page-error"`) {
					b.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, body)
				}
			}
			slices.Sort(took)
			at := func(q float64) float64 {
				return float64(took[min(len(took)-1, int(q*float64(len(took))))].Microseconds()) / 1000
			}
			b.ReportMetric(at(0.50), "p50-ms")
			b.ReportMetric(at(0.99), "p99-ms")
		})
	}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// dashboardClient signs in to the dashboard at base with key and returns
// a client that carries the session.
func dashboardClient(t testing.TB, base, key string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInput.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the sign-in page:\n%s", page)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"key": {key}, "csrf": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	home, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(home), `data-testid="stats"`) {
		t.Fatalf("sign-in: %d\n%s", resp.StatusCode, home)
	}
	return c
}
