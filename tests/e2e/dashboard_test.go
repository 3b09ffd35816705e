package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// dashboardKey is the test dashboards' DASHBOARD_SESSION_KEY.
const dashboardKey = "ZTJlLWRhc2hib2FyZC1zZXNzaW9uLWtleS0wMTIzNDU="

// chromiumPath is Debian's chromium, which the browser tests drive.
const chromiumPath = "/usr/bin/chromium"

// startDashboard runs the dashboard against the stack's API and returns
// its base URL.
func (s *stack) startDashboard() string {
	s.t.Helper()
	return s.startDashboardAt(freeAddr(s.t))
}

// startDashboardAt runs the dashboard on addr, with env added to its
// environment, and returns its base URL.
func (s *stack) startDashboardAt(addr string, env ...string) string {
	s.t.Helper()
	s.start("dashboard", append([]string{"ADDR=" + addr, "DISPATCH_API_URL=" + s.apiURL, "DASHBOARD_SESSION_KEY=" + dashboardKey}, env...)...)
	base := "http://" + addr
	s.waitReady(base)
	return base
}

// browser starts a headless chromium for the test, 1280 px wide; extra
// options add to the allocator's.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if _, lookErr := exec.LookPath("chromium"); lookErr != nil {
			t.Fatalf("the browser tests need Debian's chromium at %s: apt-get install chromium (%v)", chromiumPath, err)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.WindowSize(1280, 860),
		chromedp.Flag("disable-dev-shm-usage", true))
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs browser steps, each bounded, and fails the test on an error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %v\npage: %s", what, err, html)
	}
}

// text returns an element's text.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var (
		s   string
		err error
	)
	// A node found on a page that is being replaced can vanish before it
	// is read ("No node with given id found"); asked again, the selector
	// finds the new page's.
	if !poll(tctx, func() bool {
		s, err = chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel)))
		return err == nil
	}) {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// count returns how many elements match sel on the page now.
func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := chromedp.Run(tctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	if err != nil {
		t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

// screenshot saves the page as docs/img/name when UPDATE_SCREENSHOTS is
// set, and in the test's temporary directory otherwise.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := t.TempDir()
	if os.Getenv("UPDATE_SCREENSHOTS") != "" {
		dir = filepath.Join("..", "..", "docs", "img")
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func testid(id string) string { return `[data-testid="` + id + `"]` }

// signIn signs in with key on the login page.
func signIn(t *testing.T, ctx context.Context, base, key string) {
	t.Helper()
	signInTo(t, ctx, base, key, "stats")
}

// signInTo signs in with key and waits for the overview's part whose
// data-testid is shown.
func signInTo(t *testing.T, ctx context.Context, base, key, shown string) {
	t.Helper()
	do(t, ctx, "sign in",
		chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Click(chromedp.CSS(testid("sign-in"))),
		chromedp.WaitVisible(chromedp.CSS(testid(shown))),
	)
}

// location is the page's path and query.
func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname + location.search`))
	if err != nil {
		t.Fatalf("location: %v", err)
	}
	return loc
}

// acmeTenant gives the stack a tenant acme (a name, metadata, a quota and
// a setting) with a subscription to good and one to bad that fails at
// once, three order events and an invoice that fails, all delivered or
// failed on return; and an empty tenant globex.
func (s *stack) acmeTenant(good, bad *receiver) {
	s.t.Helper()
	for id, body := range map[string]map[string]any{
		"acme":   {"name": "Acme Inc.", "metadata": map[string]any{"plan": "gold", "contact": map[string]any{"email": "ops@acme.example"}}, "max_subscriptions": 10, "max_attempts": 8},
		"globex": {"name": "Globex"},
	} {
		if code, answer := s.call("PUT", "/tenants/"+id, body); code != http.StatusCreated {
			s.t.Fatalf("create tenant %s: %d %v", id, code, answer)
		}
	}
	for _, sub := range []map[string]any{
		{"id": "acme-orders", "tenant_id": "acme", "url": good.URL, "event_types": []string{"order.*"}, "secret": good.secret},
		{"id": "acme-invoices", "tenant_id": "acme", "url": bad.URL, "event_types": []string{"invoice.*"}, "secret": bad.secret, "max_attempts": 1},
	} {
		if code, answer := s.call("POST", "/subscriptions", sub); code != http.StatusCreated {
			s.t.Fatalf("create subscription %s: %d %v", sub["id"], code, answer)
		}
	}
	for i, typ := range []string{"order.created", "order.paid", "order.shipped", "invoice.paid"} {
		id := fmt.Sprintf("evt_acme_%d", i)
		if code, answer := s.call("POST", "/events", map[string]any{"id": id, "type": typ, "tenant_id": "acme", "source": "shop", "data": map[string]any{"n": i}}); code != http.StatusAccepted {
			s.t.Fatalf("post %s: %d %v", id, code, answer)
		}
	}
	eventually(s.t, 30*time.Second, func() bool {
		return s.count("SELECT count(*) FROM deliveries WHERE subscription_id LIKE 'acme-%' AND status IN ('delivered','failed')") == 4
	}, "acme's deliveries did not finish")
}

// TestDashboard drives the dashboard in chromium against the real stack:
// sign in, read the overview, find an event by id and read its attempts,
// redeliver it and see the new attempt, pause and resume a subscription,
// rotate its secret, list and search tenants and read one's page, filter
// events by tenant, sign out; a read-only key sees no action buttons and
// a forged action is refused by the API; a key bound to a tenant sees
// that tenant's dashboard.
func TestDashboard(t *testing.T) {
	s := newStack(t)
	s.startWorker("CIRCUIT_FAILURE_THRESHOLD=3")
	// One operational events pass, at the start: a later one would add an
	// event per delivery that fails for good (ADR 37) to the counts this
	// test reads, whenever it happened to run.
	s.startScheduler("OPERATIONAL_CHECK_INTERVAL=1h")
	good := newReceiver(t, http.StatusOK)
	bad := newReceiver(t, http.StatusInternalServerError)
	s.subscribe("orders", good, "order.*")
	if code, body := s.call("POST", "/subscriptions", map[string]any{"id": "billing", "url": bad.URL, "event_types": []string{"invoice.*"}, "secret": bad.secret, "max_attempts": 1}); code != http.StatusCreated {
		t.Fatalf("create billing: %d %v", code, body)
	}
	for i := range 3 {
		s.post(fmt.Sprintf("evt_order_%d", i), "order.created")
		s.post(fmt.Sprintf("evt_invoice_%d", i), "invoice.paid")
	}
	s.post("evt_unrouted", "user.signed_up")
	eventually(t, 30*time.Second, func() bool {
		return s.count("SELECT count(*) FROM deliveries WHERE status IN ('delivered','failed')") == 6
	}, "deliveries did not finish")
	code, body := s.call("POST", "/api-keys", map[string]any{"name": "viewer", "scopes": []string{"read"}})
	if code != http.StatusCreated {
		t.Fatalf("create read key: %d %v", code, body)
	}
	readKey := body["key"].(string)

	base := s.startDashboard()
	ctx := browser(t)

	// A wrong key: the error shows next to the field.
	do(t, ctx, "wrong key",
		chromedp.Navigate(base+"/events"), // not signed in: sent to /login
		chromedp.WaitVisible(chromedp.CSS(testid("login-form"))),
		chromedp.SendKeys(chromedp.CSS("#key"), "dsp_not_a_key"),
		chromedp.Click(chromedp.CSS(testid("sign-in"))),
		chromedp.WaitVisible(chromedp.CSS(testid("error-key"))),
	)
	signIn(t, ctx, base, adminKey)
	if got := text(t, ctx, testid("stats-1h")+" "+testid("received")); got != "7" {
		t.Errorf("events received in the last hour: %q, want 7", got)
	}
	if got := text(t, ctx, testid("stats-1h")+" "+testid("failed")); got != "3" {
		t.Errorf("deliveries failed in the last hour: %q, want 3", got)
	}
	if count(t, ctx, `[data-testid="subscription-row"][data-id="billing"] [data-testid="circuit"]`) != 1 {
		t.Errorf("the billing subscription's open circuit is not on the overview")
	}
	if got := text(t, ctx, `[data-testid="subscription-row"][data-id="billing"] [data-testid="last-failure"]`); !strings.Contains(got, "failed") || !strings.Contains(got, "500") {
		t.Errorf("why billing needs attention: %q, want its last failure with the receiver's 500", got)
	}
	if count(t, ctx, `[data-testid="subscription-row"][data-id="billing"] [data-testid="circuit-since"] time`) != 1 {
		t.Errorf("the overview does not say since when billing's circuit is open")
	}
	if got := text(t, ctx, `[data-testid="subscription-row"][data-id="billing"] [data-testid="failure-count"]`); got != "3" {
		t.Errorf("billing's failures in the last hour: %q, want 3", got)
	}
	// The chart: the hour's deliveries in words and in bars.
	if got := text(t, ctx, testid("legend-delivered")+" "+testid("legend-total")); got != "3" {
		t.Errorf("delivered in the chart's legend: %q, want 3", got)
	}
	if got := text(t, ctx, testid("legend-failed")+" "+testid("legend-total")); got != "3" {
		t.Errorf("failed in the chart's legend: %q, want 3", got)
	}
	if count(t, ctx, testid("chart-minute")) < 60 || count(t, ctx, `[data-testid="chart-bar"][data-series="failed"]`) == 0 {
		t.Errorf("the chart has %d minutes and no failed bar", count(t, ctx, testid("chart-minute")))
	}
	if os.Getenv("UPDATE_SCREENSHOTS") != "" {
		// A test's few seconds of traffic make one bar: for the picture
		// only, give the rolled-up minutes of the hour before it made-up
		// traffic, with a short outage, so the chart shows its shape.
		s.fakeHourOfActivity()
		do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(testid("deliveries-chart"))))
	}
	screenshot(t, ctx, "dashboard-overview.png")

	// Live refresh: htmx fetches the overview's live part again in place,
	// without reloading the page.
	do(t, ctx, "live refresh",
		chromedp.Navigate(base+"/?refresh=10"),
		chromedp.WaitVisible(chromedp.CSS(testid("live"))),
		chromedp.Evaluate[chromedp.Void](`window.sameDocument = true`),
	)
	before := text(t, ctx, testid("stats-1h")+" "+testid("received"))
	s.post("evt_live", "order.created")
	eventually(t, 20*time.Second, func() bool {
		// htmx may swap the node out between the query and the read: that
		// read fails, and the next one finds the new node.
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		now, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(testid("stats-1h")+" "+testid("received"))))
		return err == nil && strings.TrimSpace(now) != before
	}, "the overview's live part did not refresh")
	if same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.sameDocument === true`)); err != nil || !same {
		t.Errorf("the overview reloaded instead of refreshing in place (%v)", err)
	}

	// Find an event by id and read its attempt.
	do(t, ctx, "find the event",
		chromedp.Click(chromedp.CSS(`header nav a[href="/events"]`)),
		chromedp.WaitVisible(chromedp.CSS(testid("events"))),
		chromedp.SendKeys(chromedp.CSS(testid("jump-id")), "evt_order_1"),
		chromedp.Click(chromedp.CSS(testid("jump"))),
		chromedp.WaitVisible(chromedp.CSS(testid("attempts"))),
	)
	orders := `[data-testid="delivery"][data-subscription="orders"] `
	if n := count(t, ctx, orders+testid("attempt")); n != 1 {
		t.Fatalf("%d attempts shown, want 1", n)
	}
	if got := text(t, ctx, orders+testid("attempt-result")); got != "200 ok" {
		t.Errorf("attempt result %q", got)
	}
	// Redeliver it and see the new attempt.
	do(t, ctx, "redeliver",
		chromedp.Click(chromedp.CSS(orders+testid("redeliver-delivery"))),
		chromedp.WaitVisible(chromedp.CSS(testid("notice"))),
	)
	if got := text(t, ctx, testid("notice")); got != "1 delivery queued for redelivery." {
		t.Errorf("notice %q", got)
	}
	eventually(t, 30*time.Second, func() bool {
		do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(testid("attempts"))))
		return count(t, ctx, orders+testid("attempt")) == 2
	}, "the redelivery's attempt never showed")
	screenshot(t, ctx, "dashboard-event.png")

	// The failed event shows its failing attempt with the response.
	do(t, ctx, "failed event", chromedp.Navigate(base+"/events/evt_invoice_0"), chromedp.WaitVisible(chromedp.CSS(testid("attempts"))))
	if got := text(t, ctx, testid("attempt-result")); got != "500 failed" {
		t.Errorf("failed attempt result %q", got)
	}

	// Pause and resume a subscription, rotate its secret.
	do(t, ctx, "pause",
		chromedp.Navigate(base+"/subscriptions/orders"),
		chromedp.Click(chromedp.CSS(testid("pause"))),
		chromedp.WaitVisible(chromedp.CSS(testid("resume"))),
	)
	if got := text(t, ctx, testid("state")+" "+testid("status")); got != "paused" {
		t.Errorf("state after pause %q", got)
	}
	do(t, ctx, "resume", chromedp.Click(chromedp.CSS(testid("resume"))), chromedp.WaitVisible(chromedp.CSS(testid("pause"))))
	if got := text(t, ctx, testid("state")+" "+testid("status")); got != "active" {
		t.Errorf("state after resume %q", got)
	}
	do(t, ctx, "ask to rotate", chromedp.Click(chromedp.CSS(testid("rotate"))), chromedp.WaitVisible(chromedp.CSS(testid("confirm-rotate-button"))))
	do(t, ctx, "rotate", chromedp.Click(chromedp.CSS(testid("confirm-rotate-button"))), chromedp.WaitVisible(chromedp.CSS(testid("notice"))))
	if loc := location(t, ctx); loc != "/subscriptions/orders?done=rotated" || count(t, ctx, testid("secret")) != 1 {
		t.Fatalf("after rotating: %s with %d secrets shown", loc, count(t, ctx, testid("secret")))
	}
	if got := text(t, ctx, testid("secret")); !strings.HasPrefix(got, "whsec_") {
		t.Errorf("rotated secret %q", got)
	}

	// Edit: an internal URL is refused next to its field; a new rate limit shows.
	do(t, ctx, "edit: internal URL",
		chromedp.Navigate(base+"/subscriptions/orders"),
		chromedp.Click(chromedp.CSS(testid("edit-toggle"))),
		chromedp.WaitVisible(chromedp.CSS("#url")),
		chromedp.SetValue(chromedp.CSS("#url"), "http://10.1.2.3/hook"),
		chromedp.Click(chromedp.CSS(testid("save"))),
		chromedp.WaitVisible(chromedp.CSS(testid("error-url"))),
	)
	if got := text(t, ctx, testid("error-url")); !strings.Contains(got, "private") {
		t.Errorf("error next to the URL: %q", got)
	}
	if count(t, ctx, `#url[aria-invalid="true"] + [data-testid="error-url"], #url[aria-invalid="true"] ~ [data-testid="error-url"]`) != 1 {
		t.Error("the URL's error is not beside its field")
	}
	screenshot(t, ctx, "dashboard-edit.png")
	do(t, ctx, "edit: rate limit",
		chromedp.Navigate(base+"/subscriptions/orders"),
		chromedp.Click(chromedp.CSS(testid("edit-toggle"))),
		chromedp.WaitVisible(chromedp.CSS("#rate_limit_per_second")),
		chromedp.SetValue(chromedp.CSS("#rate_limit_per_second"), "25"),
		chromedp.Click(chromedp.CSS(testid("save"))),
		chromedp.WaitVisible(chromedp.CSS(testid("notice"))),
	)
	if got := text(t, ctx, `[data-testid="setting-rate limit"]`); got != "25/s" {
		t.Errorf("rate limit after the edit: %q", got)
	}
	if code, body := s.call("GET", "/subscriptions/orders", nil); code != http.StatusOK || body["rate_limit_per_second"] != float64(25) || body["url"] != good.URL {
		t.Errorf("after the edit the API has rate limit %v and URL %v", body["rate_limit_per_second"], body["url"])
	}

	// Tenants: the list, searched; a tenant's page; the events of one tenant.
	s.acmeTenant(good, bad)
	do(t, ctx, "tenants",
		chromedp.Click(chromedp.CSS(`header nav a[href="/tenants"]`)),
		chromedp.WaitVisible(chromedp.CSS(testid("tenants"))),
	)
	if n := count(t, ctx, testid("tenant-row")); n != 3 {
		t.Errorf("%d tenants listed, want acme, default and globex", n)
	}
	screenshot(t, ctx, "dashboard-tenants.png")
	do(t, ctx, "type a prefix", chromedp.SendKeys(chromedp.CSS(testid("prefix")), "ac"))
	// Through script (clickAndAwait): a row found by node id while the
	// search's page replaced the list was seen to vanish before the click.
	clickAndAwait(t, ctx, "search tenants", "Search", `[data-testid="tenant-row"][data-id="acme"]`)
	if n, loc := count(t, ctx, testid("tenant-row")), location(t, ctx); n != 1 || loc != "/tenants?prefix=ac" {
		t.Errorf("searching ac: %d tenants at %s", n, loc)
	}
	clickAndAwait(t, ctx, "a tenant's page", "acme", testid("tenant-counts"))
	for id, want := range map[string]string{"count-subscriptions": "2", "count-quota": "of 10", "count-events": "4", "count-failing": "1",
		"tenant-name": "Acme Inc.", `setting-max attempts`: "8"} {
		if got := text(t, ctx, `[data-testid="`+id+`"]`); got != want {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
	if got := text(t, ctx, testid("metadata")); !strings.Contains(got, `"email": "ops@acme.example"`) {
		t.Errorf("metadata %q", got)
	}
	if n := count(t, ctx, testid("subscription-row")); n != 2 || count(t, ctx, `[data-testid="subscription-row"][data-id="orders"]`) != 0 {
		t.Errorf("%d subscriptions on acme's page, or another tenant's among them", n)
	}
	if n := count(t, ctx, testid("tenant-events")+" "+testid("event-row")); n != 4 {
		t.Errorf("%d events on acme's page, want 4", n)
	}
	if count(t, ctx, testid("tenant-failing")+` [data-testid="event-row"][data-id="evt_acme_3"]`) != 1 {
		t.Error("the failed invoice is not among acme's failing deliveries")
	}
	screenshot(t, ctx, "dashboard-tenant.png")
	do(t, ctx, "events of a tenant",
		chromedp.Navigate(base+"/events"),
		chromedp.WaitVisible(chromedp.CSS(testid("events"))),
		chromedp.SendKeys(chromedp.CSS("#tenant_id"), "acme"),
		chromedp.Click(chromedp.CSS(testid("filter"))),
		chromedp.WaitNotPresent(chromedp.CSS(`[data-testid="event-row"][data-id="evt_unrouted"]`)),
	)
	if n, own := count(t, ctx, testid("event-row")), count(t, ctx, `[data-testid="event-row"] [data-tenant="acme"]`); n != 4 || own != 4 {
		t.Errorf("acme's events: %d rows, %d of them acme's", n, own)
	}

	do(t, ctx, "sign out", chromedp.Click(chromedp.CSS(testid("sign-out"))), chromedp.WaitVisible(chromedp.CSS(testid("login-form"))))
	do(t, ctx, "signed out", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(testid("login-form"))))

	// A read-only key sees everything and no action button.
	signIn(t, ctx, base, readKey)
	if count(t, ctx, testid("read-only")) != 1 {
		t.Error("no read-only marker")
	}
	do(t, ctx, "read-only event", chromedp.Navigate(base+"/events/evt_order_1"), chromedp.WaitVisible(chromedp.CSS(testid("attempts"))))
	if n := count(t, ctx, `form[method="post"]`); n != 1 {
		t.Errorf("a read-only key sees %d forms that post, want only sign-out", n)
	}
	do(t, ctx, "read-only subscription", chromedp.Navigate(base+"/subscriptions/orders"), chromedp.WaitVisible(chromedp.CSS(testid("subscription-facts"))))
	if count(t, ctx, testid("actions")) != 0 || count(t, ctx, testid("pause")) != 0 {
		t.Error("a read-only key sees subscription actions")
	}
	// A forged pause, with the session's own token, is refused by the API.
	do(t, ctx, "forged pause",
		chromedp.Evaluate[chromedp.Void](`(() => {
			const f = document.createElement("form"); f.method = "post"; f.action = "/subscriptions/orders/pause";
			const i = document.createElement("input"); i.type = "hidden"; i.name = "csrf";
			i.value = document.querySelector("input[name=csrf]").value; f.appendChild(i);
			document.body.appendChild(f); f.submit();
		})()`),
		chromedp.WaitVisible(chromedp.CSS(testid("page-error"))),
	)
	if got := text(t, ctx, testid("page-error")); !strings.Contains(got, "refused") || !strings.Contains(got, "write") {
		t.Errorf("forged pause: %q", got)
	}
	if code, body := s.call("GET", "/subscriptions/orders", nil); code != http.StatusOK || body["state"] != "active" {
		t.Errorf("after a forged pause the subscription is %v", body["state"])
	}

	// A key bound to acme sees acme's dashboard: its counts on the
	// overview, My tenant in place of the tenants, its events only.
	code, body = s.call("POST", "/api-keys", map[string]any{"name": "acme-viewer", "scopes": []string{"read"}, "tenant_id": "acme"})
	if code != http.StatusCreated {
		t.Fatalf("create a key bound to acme: %d %v", code, body)
	}
	do(t, ctx, "sign out", chromedp.Click(chromedp.CSS(testid("sign-out"))), chromedp.WaitVisible(chromedp.CSS(testid("login-form"))))
	signInTo(t, ctx, base, body["key"].(string), "tenant-counts")
	if count(t, ctx, testid("page-error")) != 0 || count(t, ctx, testid("stats")) != 0 || text(t, ctx, testid("count-events")) != "4" {
		t.Error("the overview of a key bound to acme")
	}
	if count(t, ctx, `header nav a[href="/tenants"]`) != 0 || text(t, ctx, `header nav a[href="/tenants/acme"]`) != "My tenant" ||
		text(t, ctx, testid("bound-tenant")+" code") != "acme" {
		t.Error("the header of a key bound to acme")
	}
	do(t, ctx, "the bound key's tenants", chromedp.Navigate(base+"/tenants"), chromedp.WaitVisible(chromedp.CSS(testid("tenant-counts"))))
	if loc := location(t, ctx); loc != "/tenants/acme" {
		t.Errorf("the tenants list leads a bound key to %s", loc)
	}
	do(t, ctx, "the bound key's events", chromedp.Navigate(base+"/events"), chromedp.WaitVisible(chromedp.CSS(testid("events"))))
	if n := count(t, ctx, `[data-testid="event-row"][data-id^="evt_acme_"]`); n != 4 || count(t, ctx, testid("event-row")) != 4 || count(t, ctx, "#tenant_id") != 0 {
		t.Errorf("a bound key's events: %d of acme's, %d in all, or a tenant filter", n, count(t, ctx, testid("event-row")))
	}
}

// TestDashboardEventWithLongHistory: an event whose delivery has 61
// attempts shows its newest 10 on the event page, in chromium with script
// disabled; "show more" shows the newest 50, then the older 11, then the
// newest again, each a plain link whose URL holds the page.
func TestDashboardEventWithLongHistory(t *testing.T) {
	s := newStack(t)
	rc := newReceiver(t, http.StatusOK)
	s.subscribe("orders", rc, "order.*")
	s.subscribe("audit", rc, "*")
	s.post("evt_long", "order.created")
	if _, err := s.db.Pool.Exec(context.Background(), `
		INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, error_class, error)
		SELECT d.id, n, now() - (62 - n) * interval '1 minute', 20, 503, 'http_status', 'HTTP 503'
		FROM deliveries d, generate_series(1, 61) n WHERE d.event_id = 'evt_long' AND d.subscription_id = 'orders';
		UPDATE deliveries SET status = 'retrying', attempts = 61 WHERE event_id = 'evt_long' AND subscription_id = 'orders'`); err != nil {
		t.Fatal(err)
	}
	base := s.startDashboard()
	ctx := browser(t)
	signIn(t, ctx, base, adminKey)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatalf("disable script: %v", err)
	}

	orders := `[data-testid="delivery"][data-subscription="orders"] `
	first := func() string { return text(t, ctx, orders+testid("attempt")+" td") }
	do(t, ctx, "event page", chromedp.Navigate(base+"/events/evt_long"), chromedp.WaitVisible(chromedp.CSS(orders+testid("attempts"))))
	if n := count(t, ctx, orders+testid("attempt")); n != 10 || first() != "61" {
		t.Fatalf("the event page shows %d of orders' attempts from #%s, want the newest 10 from #61", n, first())
	}
	do(t, ctx, "show more",
		chromedp.Click(chromedp.CSS(orders+testid("attempts-more"))),
		chromedp.WaitVisible(chromedp.CSS(orders+testid("attempts-older"))),
	)
	if n := count(t, ctx, orders+testid("attempt")); n != 50 || first() != "61" {
		t.Errorf("show more: %d attempts from #%s, want 50 from #61", n, first())
	}
	do(t, ctx, "older attempts",
		chromedp.Click(chromedp.CSS(orders+testid("attempts-older"))),
		chromedp.WaitVisible(chromedp.CSS(orders+testid("attempts-newest"))),
	)
	if n := count(t, ctx, orders+testid("attempt")); n != 11 || first() != "11" {
		t.Errorf("older attempts: %d from #%s, want 11 from #11", n, first())
	}
	if count(t, ctx, orders+testid("attempts-older")) != 0 {
		t.Error("the oldest page links to older attempts")
	}
	do(t, ctx, "newest attempts",
		chromedp.Click(chromedp.CSS(orders+testid("attempts-newest"))),
		chromedp.WaitVisible(chromedp.CSS(orders+testid("attempts-older"))),
	)
	if n := count(t, ctx, orders+testid("attempt")); n != 50 || first() != "61" {
		t.Errorf("back to the newest: %d attempts from #%s", n, first())
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(loc, "/events/evt_long?delivery=orders#delivery-orders") {
		t.Errorf("the URL does not hold the page: %s", loc)
	}
	audit := `[data-testid="delivery"][data-subscription="audit"] `
	if count(t, ctx, audit+testid("attempt")) != 0 || count(t, ctx, audit+testid("empty")) != 1 {
		t.Error("the delivery without attempts does not say so")
	}
}

// fakeHourOfActivity rewrites the rolled-up minutes from an hour ago to
// three minutes ago with steady traffic, some retries and a five-minute
// outage, for screenshots only.
func (s *stack) fakeHourOfActivity() {
	s.t.Helper()
	_, err := s.db.Pool.Exec(context.Background(), `
		UPDATE activity_minutes SET
			events_received = 40 + (extract(minute FROM minute)::int * 7) % 23,
			delivered = CASE WHEN n BETWEEN 38 AND 42 THEN 20 ELSE 70 + (extract(minute FROM minute)::int * 13) % 31 END,
			retrying = CASE WHEN n BETWEEN 38 AND 42 THEN 25 WHEN extract(minute FROM minute)::int % 9 = 0 THEN 3 ELSE 0 END,
			failed = CASE WHEN n BETWEEN 39 AND 42 THEN 12 ELSE 0 END
		FROM (SELECT minute AS m, 60 - (extract(epoch FROM date_trunc('minute', now()) - minute) / 60)::int AS n FROM activity_minutes) x
		WHERE activity_minutes.minute = x.m AND x.m >= now() - interval '59 minutes' AND x.m < now() - interval '3 minutes'`)
	if err != nil {
		s.t.Fatalf("fake an hour of activity: %v", err)
	}
}
