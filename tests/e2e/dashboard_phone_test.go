package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// phoneWidth is the viewport width every dashboard page must fit: a
// common phone's, in CSS pixels.
const phoneWidth = 390

// TestDashboardFitsAPhone opens every page of the dashboard 390 px wide,
// with long ids and a failing subscription on them, and checks that none
// is wider than the screen: nothing needs scrolling sideways.
// UPDATE_SCREENSHOTS=1 saves each as docs/img/phone-*.png.
func TestDashboardFitsAPhone(t *testing.T) {
	s := newStack(t)
	s.startWorker("CIRCUIT_FAILURE_THRESHOLD=3")
	s.startScheduler()
	good := newReceiver(t, http.StatusOK)
	bad := newReceiver(t, http.StatusInternalServerError)
	s.subscribe("orders", good, "order.*")
	if code, body := s.call("POST", "/subscriptions", map[string]any{"id": "billing-reminders-for-enterprise-customers", "url": bad.URL + "/with/a/rather/long/path?and=query",
		"event_types": []string{"invoice.*"}, "secret": bad.secret, "max_attempts": 1}); code != http.StatusCreated {
		t.Fatalf("create a subscription: %d %v", code, body)
	}
	for i := range 3 {
		s.post(fmt.Sprintf("evt_order_2026_03_01_customer_%d", i), "order.created")
		s.post(fmt.Sprintf("evt_invoice_2026_03_01_customer_%d", i), "invoice.payment_failed")
	}
	eventually(t, 30*time.Second, func() bool {
		return s.count("SELECT count(*) FROM deliveries WHERE status IN ('delivered','failed')") == 6
	}, "deliveries did not finish")
	if code, body := s.call("PUT", "/tenants/acme", map[string]any{"name": "Acme Incorporated", "max_subscriptions": 20}); code != http.StatusCreated {
		t.Fatalf("create a tenant: %d %v", code, body)
	}

	base := s.startDashboard()
	ctx := browser(t)
	do(t, ctx, "phone", chromedp.EmulateViewport(phoneWidth, 844))
	do(t, ctx, "sign-in page", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS(testid("login-form"))))
	fits(t, ctx, "the sign-in page")
	screenshot(t, ctx, "phone-login.png")
	signIn(t, ctx, base, adminKey)
	for _, p := range []struct{ name, path, shown, file string }{
		{"the overview", "/", "stats", "phone-overview.png"},
		{"the events", "/events", "events", "phone-events.png"},
		{"an event", "/events/evt_invoice_2026_03_01_customer_0", "attempts", "phone-event.png"},
		{"the subscriptions", "/subscriptions", "subscriptions", "phone-subscriptions.png"},
		{"a subscription", "/subscriptions/billing-reminders-for-enterprise-customers", "subscription-facts", "phone-subscription.png"},
		{"the tenants", "/tenants", "tenants", "phone-tenants.png"},
		{"a tenant", "/tenants/acme", "tenant-counts", "phone-tenant.png"},
	} {
		do(t, ctx, p.name, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS(testid(p.shown))))
		fits(t, ctx, p.name)
		screenshot(t, ctx, p.file)
	}
}

// fits fails the test when the page is wider than the viewport.
func fits(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const w = document.documentElement.clientWidth;
		if (document.documentElement.scrollWidth <= w) return "";
		const over = [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > w + 1)
			.map(e => e.tagName.toLowerCase() + (e.dataset.testid ? "[" + e.dataset.testid + "]" : "") + (e.className ? "." + String(e.className).split(" ").join(".") : ""));
		return document.documentElement.scrollWidth + " px wide: " + over.slice(0, 8).join(", ");
	})()`))
	if err != nil {
		t.Fatalf("measure %s: %v", page, err)
	}
	if wide != "" {
		t.Errorf("%s does not fit %d px: %s", page, phoneWidth, wide)
	}
}
