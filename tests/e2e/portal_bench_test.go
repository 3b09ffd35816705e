package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// What BenchmarkPortal stores: the measured tenant "big" with
// portalBenchEndpoints endpoints and portalBenchEvents events, among
// portalBenchTenants tenants.
const (
	portalBenchTenants   = 10_000
	portalBenchEndpoints = 1_000
	portalBenchEvents    = 1_000_000
)

// seedPortalSQL stores 9,999 tenants of 10 subscriptions and 10 events
// each (one delivery each, delivered), and the tenant big with $2
// endpoints (big_0000…; one in 101 paused, one in 211 disabled) and $1
// events spread evenly over the 7 days up to now, in 10 common types and
// a rare one, each delivered to one endpoint (none for 1 event in 100).
// The last 1,000 events' deliveries are pending; of the others 0.5% are
// retrying, 2% failed and the rest delivered, each with its attempt a
// second after the event, stored 40 ms later. Everything follows from the row's number, so
// every run stores the same data.
var seedPortalSQL = []testkit.Statement{
	{SQL: `INSERT INTO tenants (id, name) SELECT 'tenant_' || lpad(i::text, 5, '0'), 'Tenant ' || i FROM generate_series(1, $1 - 1) i`,
		Args: []any{portalBenchTenants}},
	{SQL: `INSERT INTO tenants (id, name) VALUES ('big', 'Big Customer Ltd')`},
	{SQL: `INSERT INTO subscriptions (id, tenant_id, url, event_types, secret)
	 SELECT t.id || '_sub_' || j, t.id, 'https://' || t.id || '.example/hooks/' || j, ARRAY['*'], 'whsec_x'
	 FROM tenants t, generate_series(1, 10) j WHERE t.id LIKE 'tenant_%'`},
	{SQL: `INSERT INTO subscriptions (id, tenant_id, url, event_types, secret, state, state_reason)
	 SELECT format('big_%s', lpad(i::text, 4, '0')), 'big', 'https://hooks.big.example/webhooks/' || i,
	        ARRAY[(ARRAY['order.*','invoice.*','user.*','shipment.*','*'])[1 + i % 5]], 'whsec_x',
	        CASE WHEN i % 211 = 5 THEN 'disabled' WHEN i % 101 = 3 THEN 'paused' ELSE 'active' END,
	        CASE WHEN i % 211 = 5 THEN 'endpoint answered 410 Gone' ELSE '' END
	 FROM generate_series(0, $1 - 1) i`, Args: []any{portalBenchEndpoints}},
	{SQL: `INSERT INTO events (id, tenant_id, type, source, data, received_at)
	 SELECT t.id || '_evt_' || j, t.id, 'order.created', 'seed', '{"n": 1}', now() - j * interval '15 hours'
	 FROM tenants t, generate_series(1, 10) j WHERE t.id LIKE 'tenant_%'`},
	{SQL: `INSERT INTO deliveries (event_id, subscription_id, status, attempts, last_status_code, created_at, updated_at)
	 SELECT e.id, replace(e.id, '_evt_', '_sub_'), 'delivered', 1, 204, e.received_at, e.received_at + interval '1 second'
	 FROM events e WHERE e.tenant_id LIKE 'tenant_%'`},
	{SQL: `INSERT INTO events (id, tenant_id, type, source, data, received_at)
	 SELECT format('evt_%s', lpad(i::text, 7, '0')), 'big',
	        CASE WHEN i % 5000 = 0 THEN 'audit.export'
	             ELSE (ARRAY['order.created','order.updated','order.paid','order.refunded','invoice.created',
	                         'invoice.paid','user.signup','user.deleted','shipment.sent','shipment.delivered'])[1 + (i * 7919) % 10] END,
	        'seed', '{"order_id": 1, "amount": 1200, "currency": "EUR"}', now() - ($1 - 1 - i) * interval '7 days' / $1
	 FROM generate_series(0::bigint, $1 - 1) i`, Args: []any{int64(portalBenchEvents)}},
	{SQL: `INSERT INTO deliveries (event_id, subscription_id, status, attempts, next_attempt_at, last_status_code, created_at, updated_at)
	 SELECT e.id, format('big_%s', lpad((n.i % $2)::text, 4, '0')), x.st,
	        CASE x.st WHEN 'pending' THEN 0 ELSE 1 END,
	        CASE x.st WHEN 'pending' THEN e.received_at WHEN 'retrying' THEN e.received_at + interval '1 hour' END,
	        CASE x.st WHEN 'delivered' THEN 204 WHEN 'pending' THEN NULL ELSE 500 END,
	        e.received_at, e.received_at + interval '1 second'
	 FROM events e,
	      LATERAL (SELECT substr(e.id, 5)::bigint AS i) n,
	      LATERAL (SELECT CASE WHEN n.i > $1 - 1000 THEN 'pending'
	                           WHEN (n.i * 7) % 1000 < 5 THEN 'retrying'
	                           WHEN (n.i * 7) % 1000 < 25 THEN 'failed'
	                           ELSE 'delivered' END AS st) x
	 WHERE e.tenant_id = 'big' AND (n.i * 31) % 100 <> 0`, Args: []any{int64(portalBenchEvents), int64(portalBenchEndpoints)}},
	{SQL: `INSERT INTO attempts (delivery_id, number, started_at, recorded_at, duration_ms, status_code, error_class, error, response_body)
	 SELECT d.id, 1, d.created_at + interval '1 second', d.created_at + interval '1.04 seconds', 40, d.last_status_code,
	        CASE WHEN d.status = 'delivered' THEN '' ELSE 'http_status' END,
	        CASE WHEN d.status = 'delivered' THEN '' ELSE 'HTTP 500' END,
	        CASE WHEN d.status = 'delivered' THEN '' ELSE '{"error":"database unavailable"}' END
	 FROM deliveries d WHERE d.status <> 'pending' AND d.subscription_id LIKE 'big_%'`},
}

// BenchmarkPortal times every page of the customer portal, as the server
// answers it (dashboard, API and database together), for the tenant big
// with 1,000 endpoints and 1,000,000 events (about 990,000 deliveries and
// their attempts) among 10,000 tenants (100,000 more subscriptions and
// events), against the real ingest-api and dashboard binaries. Each
// iteration asks for another endpoint or event where the page shows one;
// the p50 and p99 latency are reported. Seeding takes a few minutes; run
// it on its own:
//
//	cd tests/e2e && go test -run '^$' -bench Portal -benchtime 300x -timeout 30m .
func BenchmarkPortal(b *testing.B) {
	dashAddr := freeAddr(b)
	// The ingest-api's default pool, not the tests' small one.
	s := startStack(b, "DB_MAX_CONNS=30", "PORTAL_URL=http://"+dashAddr+"/portal")
	ctx := context.Background()
	testkit.Seed(b, s.db.Pool, seedPortalSQL...)
	b.Logf("seeded %d tenants, tenant big with %d endpoints and %d events",
		portalBenchTenants, portalBenchEndpoints, portalBenchEvents)
	// As a running retry scheduler would have: the minutes and the
	// endpoints' hours of activity rolled up (ADR 18, ADR 35).
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

	base := s.startDashboardAt(dashAddr)
	c := portalClient(b, s.portalLink("big", map[string]any{"expires_in": "2h"}))
	rng := rand.New(rand.NewPCG(1, 2))
	endpoint := func() string { return fmt.Sprintf("big_%04d", rng.IntN(portalBenchEndpoints)) }
	timePages(b, c, base, []benchPage{
		{"endpoints", func() string { return "/portal/" }},
		{"endpoint", func() string { return "/portal/subscriptions/" + endpoint() }},
		{"events", func() string { return "/portal/events" }},
		{"events-failed", func() string { return "/portal/events?status=failed" }},
		{"events-type", func() string { return "/portal/events?type=order.*" }},
		{"events-rare-type", func() string { return "/portal/events?type=audit.export" }},
		{"events-endpoint", func() string { return "/portal/events?subscription_id=" + endpoint() }},
		{"event", func() string { return fmt.Sprintf("/portal/events/evt_%07d", rng.IntN(portalBenchEvents)) }},
	})
}

// portalClient opens a portal link and returns a client that carries the
// portal session.
func portalClient(t testing.TB, link string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	home, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(home), `data-testid="endpoints"`) {
		t.Fatalf("opening the portal link: %d\n%s", resp.StatusCode, home)
	}
	return c
}
