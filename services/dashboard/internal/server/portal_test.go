package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/dispatch-webhooks/dispatch/web"
)

// seedTenants makes tenants a and b, each with a subscription and an
// event whose delivery failed after one attempt; b's rows carry
// "b-canary" where a page would show them.
func seedTenants(t *testing.T, s *portalStack) {
	t.Helper()
	s.must(t, http.StatusCreated, "PUT", "/tenants/a", `{"name":"Tenant A"}`)
	s.must(t, http.StatusCreated, "PUT", "/tenants/b", `{"name":"b-canary-name"}`)
	s.must(t, http.StatusCreated, "POST", "/subscriptions", `{"id":"a_sub","tenant_id":"a","url":"http://127.0.0.1:9/a","event_types":["*"]}`)
	s.must(t, http.StatusCreated, "POST", "/subscriptions", `{"id":"b_sub","tenant_id":"b","url":"http://127.0.0.1:9/b-canary-url","event_types":["*"]}`)
	s.must(t, http.StatusAccepted, "POST", "/events", `{"id":"a_evt","type":"order.created","tenant_id":"a","data":{}}`)
	s.must(t, http.StatusAccepted, "POST", "/events", `{"id":"b_evt","type":"b.canary","tenant_id":"b","data":{"x":"b-canary-data"}}`)
	// The catalog is global: every tenant's portal shows it.
	s.must(t, http.StatusCreated, "PUT", "/event-types/order.created", `{"schema":{"type":"object"},"examples":[{}],"validation":"warn"}`)
	ctx := context.Background()
	for _, q := range []string{
		`UPDATE deliveries SET status = 'failed', attempts = 1, next_attempt_at = NULL`,
		`INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, response_body)
			SELECT id, 1, now(), 5, 500, 'canary answer' FROM deliveries`,
	} {
		if _, err := s.db.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
}

// route is a portal route's method and path with its id set.
func routeTarget(pattern, subID, eventID string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.Replace(path, "{$}", "", 1)
	switch {
	case strings.HasPrefix(path, "/portal/subscriptions/{id}"):
		path = strings.Replace(path, "{id}", subID, 1)
	case strings.HasPrefix(path, "/portal/events/{id}"):
		path = strings.Replace(path, "{id}", eventID, 1)
	case strings.HasPrefix(path, "/portal/event-types/{name}"):
		path = strings.Replace(path, "{name}", "order.created", 1)
	}
	return method, path
}

// actionForm is a form every portal action accepts, pointed at subID.
func actionForm(token, subID string) url.Values {
	return url.Values{"csrf": {token}, "subscription_id": {subID}, "since": {"2000-01-01T00:00"},
		"url": {"http://127.0.0.1:9/stolen"}, "was_url": {"http://127.0.0.1:9/x"}, "event_types": {"stolen.*"}, "was_event_types": {"*"}}
}

// TestPortalSessionSeesOnlyItsTenant calls every portal route, as the
// router lists them, with tenant a's session on tenant b's ids: 404, and
// nothing of b's shown or changed.
func TestPortalSessionSeesOnlyItsTenant(t *testing.T) {
	t.Parallel()
	s := startPortalStack(t, PortalConfig{})
	seedTenants(t, s)
	before := s.snapshot(t, "b")
	b := s.open(t, s.link(t, "a", `{}`))
	_, home := b.get(t, "/portal/")
	token := csrf(home)
	if token == "" {
		t.Fatal("the home page has no form token")
	}
	routes := s.server.portalRoutes()
	if len(routes) < 15 {
		t.Fatalf("only %d portal routes", len(routes))
	}
	for _, rt := range routes {
		method, path := routeTarget(rt.pattern, "b_sub", "b_evt")
		var (
			resp *http.Response
			doc  *goquery.Document
		)
		if method == http.MethodPost {
			resp, doc = b.post(t, path, actionForm(token, "b_sub"))
		} else {
			resp, doc = b.get(t, path)
		}
		html, _ := doc.Html()
		switch {
		case strings.Contains(rt.pattern, "{id}"):
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s on b's ids: %d, want 404", rt.pattern, resp.StatusCode)
			}
		case resp.StatusCode >= 400:
			t.Errorf("%s: %d: %s", rt.pattern, resp.StatusCode, doc.Text())
		}
		if strings.Contains(html, "canary") {
			t.Errorf("%s showed b's data", rt.pattern)
		}
	}
	if after := s.snapshot(t, "b"); after != before {
		t.Errorf("tenant b's rows changed:\n%s\n%s", before, after)
	}
	if n := s.count(t, `SELECT count(*) FROM subscriptions WHERE url LIKE '%stolen%' AND tenant_id <> 'a'`); n != 0 {
		t.Errorf("%d subscriptions created outside tenant a", n)
	}
}

// TestPortalReadOnlyAndCSRF: a read-only session sees no control and
// every mutating route refuses it; a writable session's POST without its
// CSRF token is refused too; nothing changes either way.
func TestPortalReadOnlyAndCSRF(t *testing.T) {
	t.Parallel()
	s := startPortalStack(t, PortalConfig{})
	seedTenants(t, s)
	before := s.snapshot(t, "")
	ro := s.open(t, s.link(t, "a", `{"read_only":true}`))
	for _, page := range []string{"/portal/", "/portal/subscriptions/a_sub", "/portal/events", "/portal/events/a_evt"} {
		resp, doc := ro.get(t, page)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", page, resp.StatusCode)
		}
		if n := doc.Find(`form[method=post]`).Length(); n != 0 {
			t.Errorf("%s shows a read-only session %d forms that change something", page, n)
		}
		if testid(doc, "read-only").Length() != 1 {
			t.Errorf("%s does not say it is read-only", page)
		}
	}
	_, home := ro.get(t, "/portal/")
	roToken := csrf(home)
	rw := s.open(t, s.link(t, "a", `{}`))
	mutating := 0
	for _, rt := range s.server.portalRoutes() {
		method, path := routeTarget(rt.pattern, "a_sub", "a_evt")
		if method != http.MethodPost {
			continue
		}
		mutating++
		if resp, _ := ro.post(t, path, actionForm(roToken, "a_sub")); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s with a read-only session: %d, want 403", rt.pattern, resp.StatusCode)
		}
		if resp, _ := rw.post(t, path, actionForm("", "a_sub")); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s without the CSRF token: %d, want 403", rt.pattern, resp.StatusCode)
		}
		if resp, _ := rw.post(t, path, actionForm(roToken, "a_sub")); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s with another session's CSRF token: %d, want 403", rt.pattern, resp.StatusCode)
		}
	}
	if mutating < 10 {
		t.Errorf("only %d mutating routes", mutating)
	}
	if after := s.snapshot(t, ""); after != before {
		t.Errorf("a refused request changed something:\n%s\n%s", before, after)
	}
}

// TestPortalBadInputShowsTheFormAgain: hostile values in the endpoint
// forms come back as the form with the error next to its field, nothing
// saved, never a 500.
func TestPortalBadInputShowsTheFormAgain(t *testing.T) {
	t.Parallel()
	s := startPortalStack(t, PortalConfig{})
	seedTenants(t, s)
	before := s.snapshot(t, "")
	b := s.open(t, s.link(t, "a", `{}`))
	_, home := b.get(t, "/portal/")
	token := csrf(home)
	longTypes := strings.Repeat("order.created ", 800) // 11 KB
	for _, tc := range []struct {
		name, path, field string
		form              url.Values
	}{
		{"internal address", "/portal/subscriptions", "url", url.Values{"url": {"http://10.0.0.1/hook"}, "event_types": {"*"}}},
		{"metadata address", "/portal/subscriptions", "url", url.Values{"url": {"http://169.254.169.254/latest"}, "event_types": {"*"}}},
		{"10 KB of event types", "/portal/subscriptions", "event_types", url.Values{"url": {"http://127.0.0.1:9/ok"}, "event_types": {longTypes}}},
		{"NUL in the URL", "/portal/subscriptions", "url", url.Values{"url": {"http://127.0.0.1:9/a\x00b"}, "event_types": {"*"}}},
		{"invalid UTF-8 in the URL", "/portal/subscriptions", "url", url.Values{"url": {"http://127.0.0.1:9/\xff\xfe"}, "event_types": {"*"}}},
		{"invalid UTF-8 in the types", "/portal/subscriptions", "event_types", url.Values{"url": {"http://127.0.0.1:9/ok"}, "event_types": {"order.\xff"}}},
		{"edit to an internal address", "/portal/subscriptions/a_sub/edit", "url", url.Values{"url": {"http://10.0.0.1/"}, "was_url": {"http://127.0.0.1:9/a"}, "event_types": {"*"}, "was_event_types": {"*"}}},
		{"edit with NUL in the types", "/portal/subscriptions/a_sub/edit", "event_types", url.Values{"url": {"http://127.0.0.1:9/a"}, "was_url": {"http://127.0.0.1:9/a"}, "event_types": {"a\x00b"}, "was_event_types": {"*"}}},
		{"edit with invalid UTF-8 in the URL", "/portal/subscriptions/a_sub/edit", "url", url.Values{"url": {"http://127.0.0.1:9/\xff"}, "was_url": {"http://127.0.0.1:9/a"}, "event_types": {"*"}, "was_event_types": {"*"}}},
		{"recover since nonsense", "/portal/subscriptions/a_sub/redeliver", "since", url.Values{"since": {"yesterday\x00"}}},
	} {
		tc.form.Set("csrf", token)
		resp, doc := b.post(t, tc.path, tc.form)
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("%s: %d, want a 4xx", tc.name, resp.StatusCode)
		}
		if testid(doc, "error-"+tc.field).Length() == 0 {
			t.Errorf("%s: no error next to %s: %s", tc.name, tc.field, doc.Find("main").Text())
		}
		if doc.Find(`input[name="`+tc.field+`"], textarea[name="`+tc.field+`"]`).Length() == 0 {
			t.Errorf("%s: the form is not shown again", tc.name)
		}
	}
	if after := s.snapshot(t, ""); after != before {
		t.Errorf("bad input changed something:\n%s\n%s", before, after)
	}
}

// TestPortalLinkLifecycle: a link opens once (of two openings at once,
// one), its session shows the portal's controls by their labels, and a
// revocation ends it at its next request.
func TestPortalLinkLifecycle(t *testing.T) {
	t.Parallel()
	s := startPortalStack(t, PortalConfig{Title: "Acme webhooks", AccentColor: "#0a7cff"})
	seedTenants(t, s)
	link := s.link(t, "a", `{"return_url":"https://app.example.com/settings"}`)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[int]int{}
	)
	for range 2 {
		wg.Go(func() {
			resp, err := browserClient().Get(link)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[http.StatusSeeOther] != 1 || codes[http.StatusGone] != 1 {
		t.Fatalf("two openings at once answered %v, want one session", codes)
	}
	if n := s.count(t, `SELECT count(*) FROM api_keys WHERE portal`); n != 1 {
		t.Fatalf("%d portal sessions", n)
	}
	resp, doc := (&bundle{url: s.dash, client: browserClient()}).get(t, strings.TrimPrefix(link, s.dash))
	if resp.StatusCode != http.StatusGone || !strings.Contains(testid(doc, "portal-expired").Text(), "This link has expired; ask for a new one.") {
		t.Fatalf("a used link: %d %q", resp.StatusCode, doc.Text())
	}

	b := s.open(t, s.link(t, "a", `{"return_url":"https://app.example.com/settings"}`))
	resp, home := b.get(t, "/portal/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("home: %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", got)
	}
	for id, want := range map[string]string{"portal-title": "Acme webhooks", "portal-tenant": "Tenant A", "add-endpoint": "Add endpoint", "portal-back": "Back to app.example.com"} {
		if got := strings.TrimSpace(testid(home, id).Text()); got != want {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
	if home.Find(`nav a:contains("Endpoints")`).Length() != 1 || home.Find(`nav a:contains("Event log")`).Length() != 1 {
		t.Error("the navigation lacks Endpoints or Event log")
	}
	if home.Find(`form[data-testid=add-endpoint-form] input[name=url]`).Length() != 1 {
		t.Error("the endpoint form has no url field")
	}
	if row := home.Find(`[data-testid=endpoint-row][data-id=a_sub]`); row.Length() != 1 || strings.TrimSpace(row.Find(`[data-testid=attempts-24h]`).Text()) != "1" ||
		row.Find(`[data-testid=circuit] [data-testid=status]`).AttrOr("data-status", "") != "closed" {
		t.Errorf("endpoint row: %q", row.Text())
	}
	_, page := b.get(t, "/portal/subscriptions/a_sub")
	for id, want := range map[string]string{"reveal": "Reveal", "rotate": "Rotate secret", "send-test": "Send test event", "recover": "Recover failed messages", "pause": "Pause", "delete": "Delete", "save": "Save"} {
		if got := strings.TrimSpace(testid(page, id).Text()); got != want {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
	if strings.Contains(page.Text(), "whsec_") && testid(page, "secret").Length() != 0 {
		t.Error("the secret shows before Reveal")
	}
	_, revealed := b.post(t, "/portal/subscriptions/a_sub/reveal", url.Values{"csrf": {csrf(page)}})
	if !strings.HasPrefix(testid(revealed, "secret").Text(), "whsec_") {
		t.Errorf("Reveal shows no secret: %q", revealed.Find("main").Text())
	}
	resp, _ = b.post(t, "/portal/subscriptions/a_sub/test", url.Values{"csrf": {csrf(page)}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "watch=1") {
		t.Errorf("Send test event: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := s.count(t, `SELECT count(*) FROM deliveries d JOIN events e ON e.id = d.event_id WHERE e.type = 'dispatch.test' AND d.subscription_id = 'a_sub'`); n != 1 {
		t.Errorf("%d test deliveries", n)
	}
	watch := resp.Header.Get("Location")
	_, watching := b.get(t, watch)
	if testid(watching, "recent-deliveries").AttrOr("hx-get", "") == "" {
		t.Error("the page does not watch for the test event's attempt")
	}
	if _, err := s.db.Pool.Exec(context.Background(), `INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code)
		SELECT d.id, 1, now(), 7, 204 FROM deliveries d JOIN events e ON e.id = d.event_id WHERE e.type = 'dispatch.test';
		UPDATE deliveries d SET attempts = 1, status = 'delivered' FROM events e WHERE e.id = d.event_id AND e.type = 'dispatch.test'`); err != nil {
		t.Fatal(err)
	}
	_, watched := b.get(t, watch)
	if testid(watched, "recent-deliveries").AttrOr("hx-get", "") != "" {
		t.Error("the page keeps refreshing after the test event's attempt was recorded")
	}
	if row := watched.Find(`[data-testid=delivery-row]`).First(); !strings.Contains(row.Text(), "dispatch.test") || !strings.Contains(row.Text(), "delivered") {
		t.Errorf("the test event's delivery: %q", row.Text())
	}
	if got := watched.Find(`[data-testid=delivery-row]`).First().Find(`[data-testid=test-delivery]`).Text(); got != "test" {
		t.Errorf("the test event's delivery is not marked as a test: %q", got)
	}
	_, event := b.get(t, "/portal/events/a_evt")
	if got := strings.TrimSpace(testid(event, "redeliver").First().Text()); got != "Redeliver" {
		t.Errorf("event page: Redeliver button %q", got)
	}

	s.must(t, http.StatusOK, "POST", "/tenants/a/portal-links/revoke", "")
	resp, doc = b.get(t, "/portal/events")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(testid(doc, "portal-expired").Text(), "This link has expired; ask for a new one.") {
		t.Errorf("after revocation: %d %q", resp.StatusCode, doc.Text())
	}
}

// TestPortalEmbedding: framing allowed by PORTAL_FRAME_ANCESTORS only,
// and over HTTPS the cookie works inside such a frame (SameSite=None,
// Secure, Partitioned); the portal's cookie is not a dashboard session.
func TestPortalEmbedding(t *testing.T) {
	t.Parallel()
	s := startPortalStack(t, PortalConfig{FrameAncestors: []string{"https://app.example.com"}})
	s.must(t, http.StatusCreated, "PUT", "/tenants/a", `{}`)
	req, _ := http.NewRequest(http.MethodGet, s.link(t, "a", `{}`), nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := browserClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookie := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"dispatch_portal=", "Path=/portal", "HttpOnly", "Secure", "SameSite=None", "Partitioned"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("cookie %q lacks %s", cookie, want)
		}
	}
	if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors https://app.example.com;") {
		t.Errorf("CSP %q", got)
	}
	if resp.Header.Get("X-Frame-Options") != "" {
		t.Error("X-Frame-Options would forbid the frame")
	}

	b := s.open(t, s.link(t, "a", `{}`))
	u, _ := url.Parse(s.dash)
	var value string
	for _, c := range b.client.Jar.Cookies(&url.URL{Scheme: "http", Host: u.Host, Path: "/portal/"}) {
		if c.Name == portalCookie {
			value = c.Value
		}
	}
	req, _ = http.NewRequest(http.MethodGet, s.dash+"/", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: value})
	resp, err = browserClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("a portal cookie opened the dashboard: %d", resp.StatusCode)
	}
}

// TestPortalHandlerServesThePortalAlone: the portal's own listener
// (PORTAL_ADDR) has the portal and its static files, and none of the
// operators' pages.
func TestPortalHandlerServesThePortalAlone(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(Config{APIURL: "http://127.0.0.1:1"}).PortalHandler())
	t.Cleanup(srv.Close)
	client := browserClient()
	for path, want := range map[string]int{
		"/login": http.StatusNotFound, "/": http.StatusNotFound, "/events": http.StatusNotFound, "/subscriptions": http.StatusNotFound,
		"/tenants": http.StatusNotFound, "/static/style.css": http.StatusOK, "/static/portal.css": http.StatusOK,
		"/portal/theme.css": http.StatusOK, "/portal/expired": http.StatusUnauthorized, "/portal/open": http.StatusGone,
		"/portal/": http.StatusUnauthorized, "/portal": http.StatusMovedPermanently,
	} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestPortalAddEndpointSendsNoID: the portal's add-endpoint form never
// forwards an id, even one posted by hand (ids are unique across tenants:
// a chosen one would tell whether another tenant has it, or take it);
// the server chooses it, and the endpoint is created in the session's
// tenant.
func TestPortalAddEndpointSendsNoID(t *testing.T) {
	t.Parallel()
	s := startPortalStack(t, PortalConfig{})
	seedTenants(t, s)
	b := s.open(t, s.link(t, "a", `{}`))
	_, home := b.get(t, "/portal/")
	for _, id := range []string{"b_sub", "a_chosen"} {
		resp, doc := b.post(t, "/portal/subscriptions", url.Values{"csrf": {csrf(home)}, "id": {id}, "url": {"http://127.0.0.1:9/" + id}, "event_types": {"*"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("adding an endpoint with id %q posted: %d: %s", id, resp.StatusCode, doc.Find("main").Text())
		}
		if n := s.count(t, `SELECT count(*) FROM subscriptions WHERE tenant_id = 'a' AND url = 'http://127.0.0.1:9/`+id+`' AND id <> '`+id+`'`); n != 1 {
			t.Errorf("id %q: %d endpoints of tenant a with a generated id, want 1", id, n)
		}
	}
	if n := s.count(t, `SELECT count(*) FROM subscriptions WHERE id = 'a_chosen'`); n != 0 {
		t.Errorf("the posted id was used")
	}
}

// TestPortalTestEventsAreThrottled: "Send test event" beyond the API's
// bound shows the endpoint's page again with the API's words, as a 429
// with the API's Retry-After.
func TestPortalTestEventsAreThrottled(t *testing.T) {
	t.Parallel()
	s := startPortalStack(t, PortalConfig{})
	seedTenants(t, s)
	b := s.open(t, s.link(t, "a", `{}`))
	_, home := b.get(t, "/portal/")
	form := url.Values{"csrf": {csrf(home)}}
	for i := range 10 {
		if resp, _ := b.post(t, "/portal/subscriptions/a_sub/test", form); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("test event %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, doc := b.post(t, "/portal/subscriptions/a_sub/test", form)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the 11th test event in a minute: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if msg := doc.Find("main").Text(); !strings.Contains(msg, "at most 10 test events per endpoint") {
		t.Errorf("the page does not say why: %s", msg)
	}
}

// TestTestPending: an endpoint's page watches the newest test event until
// its attempt is recorded; a delivery being processed has counted its
// attempt but has no result yet.
func TestTestPending(t *testing.T) {
	t.Parallel()
	test := func(status string, attempts int64) web.DeliveryRow {
		return web.DeliveryRow{EventType: testEventType, Status: status, Attempts: attempts}
	}
	order := web.DeliveryRow{EventType: "order.created", Status: "delivered", Attempts: 1}
	for _, tc := range []struct {
		name       string
		deliveries []web.DeliveryRow
		want       bool
	}{
		{"not listed yet", []web.DeliveryRow{order}, true},
		{"pending", []web.DeliveryRow{test("pending", 0), order}, true},
		{"processing its first attempt", []web.DeliveryRow{test("processing", 1)}, true},
		{"delivered", []web.DeliveryRow{test("delivered", 1)}, false},
		{"failed once, retrying", []web.DeliveryRow{test("retrying", 1)}, false},
		{"failed", []web.DeliveryRow{test("failed", 1)}, false},
		{"the newest test event counts", []web.DeliveryRow{test("processing", 1), test("delivered", 1)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := testPending(tc.deliveries); got != tc.want {
				t.Errorf("testPending = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPortalCatalog: the portal shows the operator's catalog, read-only:
// each type with its description, its data's fields, schema, examples,
// versions and deprecation, and nothing of how ingest enforces it.
func TestPortalCatalog(t *testing.T) {
	t.Parallel()
	s := startPortalStack(t, PortalConfig{})
	seedTenants(t, s)
	s.must(t, http.StatusCreated, "PUT", "/event-types/invoice.paid", `{"description":"An invoice was paid.\nIn full.",`+
		`"schema":{"type":"object","required":["id","customer"],"properties":{"id":{"type":"string","description":"The invoice."},"customer":{"$ref":"#/$defs/customer"}},`+
		`"$defs":{"customer":{"type":"object","required":["email"],"properties":{"email":{"type":"string","format":"email"}}}}},`+
		`"examples":[{"id":"inv_1","customer":{"email":"a@example.com"}}],"deprecated":true,"validation":"enforce"}`)
	b := s.open(t, s.link(t, "a", `{"read_only":true}`))
	_, home := b.get(t, "/portal/")
	if home.Find(`header nav a[href="/portal/event-types"]`).Text() != "Event types" {
		t.Error("no Event types in the portal's navigation")
	}
	resp, doc := b.get(t, "/portal/event-types")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /portal/event-types: %d", resp.StatusCode)
	}
	rows := testid(doc, "event-type-row")
	if rows.Length() != 2 || rows.First().AttrOr("data-name", "") != "invoice.paid" {
		t.Fatalf("%d rows: %s", rows.Length(), testid(doc, "event-types").Text())
	}
	if href := rows.First().Find("a").AttrOr("href", ""); href != "/portal/event-types/invoice.paid" {
		t.Errorf("the type links to %q", href)
	}
	if !strings.Contains(rows.First().Text(), "An invoice was paid.") || rows.First().Find(`[data-testid="deprecated"]`).Length() != 1 {
		t.Errorf("first row: %q", rows.First().Text())
	}

	resp, doc = b.get(t, "/portal/event-types/invoice.paid")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /portal/event-types/invoice.paid: %d", resp.StatusCode)
	}
	fields := map[string]string{}
	testid(doc, "schema-field").Each(func(_ int, f *goquery.Selection) {
		var cells []string
		f.Find("td").Each(func(_ int, c *goquery.Selection) {
			if text := strings.TrimSpace(c.Text()); text != "" {
				cells = append(cells, text)
			}
		})
		fields[f.AttrOr("data-path", "")] = strings.Join(cells, " ")
	})
	want := map[string]string{
		"id":             "id string required The invoice.",
		"customer":       "customer object required",
		"customer.email": "customer.email string (email) required",
	}
	for path, text := range want {
		if fields[path] != text {
			t.Errorf("field %s: %q, want %q", path, fields[path], text)
		}
	}
	if !strings.Contains(testid(doc, "schema").Text(), `"$defs"`) || !strings.Contains(testid(doc, "example").Text(), `"inv_1"`) {
		t.Error("the schema or the example is not shown")
	}
	if testid(doc, "version").Length() != 1 || testid(doc, "deprecated").Length() != 1 || !strings.Contains(testid(doc, "description").Text(), "In full.") {
		t.Errorf("versions, deprecation or description missing: %s", doc.Find("main").Text())
	}
	if testid(doc, "validation").Length() != 0 || doc.Find(`form[method=post]`).Length() != 0 {
		t.Error("the portal shows how ingest validates, or a control")
	}
	if resp, _ := b.get(t, "/portal/event-types/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown type: %d", resp.StatusCode)
	}

	_, home = s.open(t, s.link(t, "a", `{}`)).get(t, "/portal/")
	if home.Find(`datalist#known-types option[value="invoice.paid"]`).Length() != 1 {
		t.Errorf("the endpoint form does not offer the catalog's types: %s", testid(home, "add-endpoint-form").Text())
	}
}
