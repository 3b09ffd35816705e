package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

// labelled finds the one button or link whose visible text is label: the
// portal's controls are named by their labels, as a customer's own tests
// would name them.
func labelled(label string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//*[self::button or self::a][normalize-space(.)=%q]`, label))
}

// portalTenant gives the stack a tenant acme ("Acme Inc.") with an
// endpoint billing that fails at once, and an order and two invoices
// sent to it, all finished on return.
func (s *stack) portalTenant(bad *receiver) {
	s.t.Helper()
	if code, answer := s.call("PUT", "/tenants/acme", map[string]any{"name": "Acme Inc."}); code != http.StatusCreated {
		s.t.Fatalf("create tenant acme: %d %v", code, answer)
	}
	sub := map[string]any{"id": "acme-billing", "tenant_id": "acme", "url": bad.URL, "event_types": []string{"invoice.*"}, "secret": bad.secret, "max_attempts": 1}
	if code, answer := s.call("POST", "/subscriptions", sub); code != http.StatusCreated {
		s.t.Fatalf("create subscription: %d %v", code, answer)
	}
	for i, typ := range []string{"order.created", "invoice.created", "invoice.paid"} {
		id := fmt.Sprintf("evt_acme_%d", i)
		if code, answer := s.call("POST", "/events", map[string]any{"id": id, "type": typ, "tenant_id": "acme", "source": "shop", "data": map[string]any{"n": i}}); code != http.StatusAccepted {
			s.t.Fatalf("post %s: %d %v", id, code, answer)
		}
	}
	eventually(s.t, 30*time.Second, func() bool {
		return s.count("SELECT count(*) FROM deliveries WHERE subscription_id = 'acme-billing' AND status = 'failed'") == 2
	}, "acme's deliveries did not finish")
}

// portalLink asks the API for a link to tenant's portal, as an operator
// or a product's back end does, and returns its URL.
func (s *stack) portalLink(tenant string, body map[string]any) string {
	s.t.Helper()
	code, answer := s.call("POST", "/tenants/"+tenant+"/portal-links", body)
	if code != http.StatusCreated {
		s.t.Fatalf("portal link: %d %v", code, answer)
	}
	return answer["url"].(string)
}

// revokePortal ends every portal link and session of tenant.
func (s *stack) revokePortal(tenant string) {
	s.t.Helper()
	if code, answer := s.call("POST", "/tenants/"+tenant+"/portal-links/revoke", nil); code != http.StatusOK {
		s.t.Fatalf("revoke: %d %v", code, answer)
	}
}

// addEndpoint adds an endpoint to rc on the portal's Endpoints page for
// types, hands the secret the page shows once to rc, and returns the new
// endpoint's id and secret.
func addEndpoint(t *testing.T, ctx context.Context, rc *receiver, types string) (id, secret string) {
	t.Helper()
	do(t, ctx, "add endpoint",
		chromedp.WaitVisible(chromedp.CSS(testid("add-endpoint-form"))),
		// Values set whole: keys typed into another site's frame were
		// sometimes lost on the way (a URL arrived as "ht").
		chromedp.SetValue(chromedp.CSS(`input[name="url"]`), rc.URL),
		chromedp.SetValue(chromedp.CSS(`input[name="event_types"]`), types),
		chromedp.Click(labelled("Add endpoint")),
		chromedp.WaitVisible(chromedp.CSS(testid("secret-once"))),
	)
	secret = shownSecret(t, ctx, testid("secret-once"))
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("the new endpoint's secret: %q", secret)
	}
	rc.trust(t, secret)
	// Adding leads to the new endpoint's own page, which shows its secret
	// once; its id ends the page's path.
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`decodeURIComponent(location.pathname.split("/").pop())`))
	if err != nil || id == "" {
		t.Fatalf("adding the endpoint did not lead to its page (%v)", err)
	}
	return id, secret
}

// shownSecret is the secret shown in the section sel, as its copy button
// copies it.
func shownSecret(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	secret, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).dataset.copy`, sel+" "+testid("secret"))))
	if err != nil {
		t.Fatalf("the secret in %s: %v", sel, err)
	}
	return secret
}

// sendTestEvent presses "Send test event" on an endpoint's page and waits
// until the page shows the newest test event's attempt, returning how
// many deliveries rc has then.
func sendTestEvent(t *testing.T, ctx context.Context, rc *receiver, want int) {
	t.Helper()
	do(t, ctx, "send test event",
		// The page before the click is marked, so that the waits below
		// are on the page the click leads to, not on the one still shown.
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.before = "1", {}`),
		chromedp.Click(labelled("Send test event")),
		chromedp.WaitReady(chromedp.CSS(`body:not([data-before])`)),
		chromedp.WaitVisible(chromedp.CSS(testid("recent-deliveries"))),
		// The page watches until the attempt is recorded, then stops.
		chromedp.WaitNotPresent(chromedp.CSS(testid("watching"))),
		chromedp.WaitVisible(chromedp.CSS(`#recent [data-testid="delivery-row"] [data-status="delivered"]`)),
	)
	if got := rc.deliveries(); len(got) != want || got[len(got)-1].Type != "dispatch.test" {
		t.Fatalf("the receiver has %d deliveries, want %d, the last a dispatch.test (rejected: %v)", len(got), want, rc.rejected())
	}
}

// portalWay is what differs between the portal's runs: how its link is
// opened and where its pages are, and which pages are saved as pictures.
type portalWay struct {
	// open asks for a fresh link to acme's portal, opens it, and returns
	// the context whose target shows the portal: a tab, or a frame.
	open func() context.Context
	// backTo is what the way back to the product reads, "" for none.
	backTo string
	// shoot saves the page the flow is on as name (see shoot); nil saves
	// nothing.
	shoot func(ctx context.Context, name string)
}

// portalFlow drives acme's portal (see portalTenant) the way w opens it,
// as the tenant's customer would: adds an endpoint pointing at good,
// sends a test event and sees it delivered with its attempt and its
// headers, reveals and rotates the secret (the next delivery verifies
// with the old secret and with the new one), pauses and resumes the
// endpoint, redelivers from the event log, reads an event type's fields;
// the link is revoked and the next click shows the expired page. It
// returns the portal's context, on the expired page.
func portalFlow(t *testing.T, s *stack, good *receiver, w portalWay) context.Context {
	t.Helper()
	shot := func(ctx context.Context, name string) {
		t.Helper()
		if w.shoot != nil {
			w.shoot(ctx, name)
		}
	}
	ctx := w.open()
	do(t, ctx, "the portal's home", chromedp.WaitVisible(chromedp.CSS(testid("endpoints"))))
	if got := text(t, ctx, testid("portal-tenant")); got != "Acme Inc." {
		t.Errorf("the header names the tenant %q", got)
	}
	if w.backTo == "" {
		if n := count(t, ctx, testid("portal-back")); n != 0 {
			t.Errorf("a link without a return URL shows %d ways back", n)
		}
	} else if got := text(t, ctx, testid("portal-back")); got != w.backTo {
		t.Errorf("the way back reads %q, want %q", got, w.backTo)
	}
	if count(t, ctx, testid("endpoint-row")) != 1 || text(t, ctx, testid("known-types")) != "Types received lately: invoice.created invoice.paid order.created" {
		t.Errorf("acme's endpoints page: %d endpoints, known types %q", count(t, ctx, testid("endpoint-row")), text(t, ctx, testid("known-types")))
	}

	// Add an endpoint: the secret shows once, and the receiver is given it.
	id, oldSecret := addEndpoint(t, ctx, good, "order.* dispatch.test")
	row := `[data-testid="endpoint-row"][data-id="` + id + `"] `
	do(t, ctx, "back to the endpoints", chromedp.Click(labelled("Endpoints")), chromedp.WaitVisible(chromedp.CSS(row)))
	if got := text(t, ctx, row+testid("status")); got != "active" {
		t.Errorf("the new endpoint is %q", got)
	}
	do(t, ctx, "open the endpoint",
		chromedp.Click(chromedp.CSS(row+testid("endpoint-link"))),
		chromedp.WaitVisible(chromedp.CSS(testid("endpoint-facts"))),
	)
	if count(t, ctx, testid("secret-hidden")) != 1 || count(t, ctx, testid("secret")) != 0 {
		t.Error("the endpoint's page shows its secret before Reveal")
	}

	// Send a test event: the page follows it until its attempt is recorded.
	sendTestEvent(t, ctx, good, 1)
	testEvent := good.deliveries()[0].EventID
	shot(ctx, "portal-endpoint")
	do(t, ctx, "the test event's page",
		chromedp.Click(chromedp.CSS(`#recent [data-testid="delivery-row"][data-id="`+testEvent+`"] a`)),
		chromedp.WaitVisible(chromedp.CSS(testid("attempts"))),
	)
	if n, got := count(t, ctx, testid("attempt")), text(t, ctx, testid("attempt-result")); n != 1 || got != "200 ok" {
		t.Errorf("the test event shows %d attempts, the first %q", n, got)
	}
	// Its headers: those sent, as the receiver got them, and the answer's.
	header := func(list, name string) string {
		return `[data-testid="` + list + `"] [data-testid="header"][data-name="` + name + `"] td`
	}
	do(t, ctx, "the attempt's headers",
		chromedp.Click(chromedp.CSS(testid("attempt-headers")+" summary")),
		chromedp.WaitVisible(chromedp.CSS(header("response-headers", "X-Receiver-Note"))),
	)
	if got := text(t, ctx, header("response-headers", "X-Receiver-Note")); got != "<b>thanks</b>" {
		t.Errorf("the receiver's header shows %q, want its markup as text", got)
	}
	if n := count(t, ctx, header("response-headers", "X-Receiver-Note")+" b"); n != 0 {
		t.Error("the receiver's markup became elements")
	}
	shot(ctx, "portal-attempt-headers")
	sent := good.deliveries()[0].Header
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature", "User-Agent"} {
		if got := text(t, ctx, header("request-headers", name)); got != sent.Get(name) {
			t.Errorf("request header %s shows %q, the receiver got %q", name, got, sent.Get(name))
		}
	}

	// Reveal, then rotate: both secrets sign the next delivery.
	do(t, ctx, "reveal",
		chromedp.Click(chromedp.CSS(testid("delivery-endpoint"))),
		chromedp.WaitVisible(chromedp.CSS(testid("secret-hidden"))),
		chromedp.Click(labelled("Reveal")),
		chromedp.WaitVisible(chromedp.CSS(testid("signing-secret")+" "+testid("secret"))),
	)
	if got := shownSecret(t, ctx, testid("signing-secret")); got != oldSecret {
		t.Errorf("Reveal shows %q, want the secret shown at creation", got)
	}
	do(t, ctx, "rotate",
		chromedp.Click(labelled("Rotate secret")),
		chromedp.WaitVisible(chromedp.CSS(testid("previous-expires"))),
	)
	newSecret := shownSecret(t, ctx, testid("secret-once"))
	if newSecret == oldSecret || !strings.HasPrefix(newSecret, "whsec_") {
		t.Fatalf("rotated secret %q", newSecret)
	}
	good.trust(t, oldSecret, newSecret)
	sendTestEvent(t, ctx, good, 2)
	next := good.deliveries()[1]
	for _, secret := range []string{oldSecret, newSecret} {
		v, err := signing.NewVerifier([]string{secret})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.VerifyHeaders(next.Header, next.Raw); err != nil {
			t.Errorf("the delivery after the rotation does not verify with one of the secrets: %v (signature %q)", err, next.Header.Get("webhook-signature"))
		}
	}
	if sigs := strings.Fields(next.Header.Get("webhook-signature")); len(sigs) != 2 {
		t.Errorf("the delivery after the rotation carries %d signatures, want 2", len(sigs))
	}

	// Pause and resume.
	do(t, ctx, "pause", chromedp.Click(labelled("Pause")), chromedp.WaitVisible(labelled("Resume")))
	if got := text(t, ctx, testid("state")+" "+testid("status")); got != "paused" {
		t.Errorf("state after Pause: %q", got)
	}
	if code, body := s.call("GET", "/subscriptions/"+id, nil); code != http.StatusOK || body["state"] != "paused" {
		t.Errorf("after Pause the API has %v", body["state"])
	}
	do(t, ctx, "resume", chromedp.Click(labelled("Resume")), chromedp.WaitVisible(labelled("Pause")))
	if got := text(t, ctx, testid("state")+" "+testid("status")); got != "active" {
		t.Errorf("state after Resume: %q", got)
	}
	do(t, ctx, "endpoints",
		chromedp.Click(labelled("Endpoints")),
		chromedp.WaitVisible(chromedp.CSS(row+testid("attempts-24h"))),
	)
	if got := text(t, ctx, row+testid("attempts-24h")); got != "2" {
		t.Errorf("the new endpoint's attempts over 24 h: %q, want 2", got)
	}
	if got := text(t, ctx, testid("known-types")); strings.Contains(got, "dispatch.test") {
		t.Errorf("the test events' type is offered to subscribe to: %q", got)
	}
	shot(ctx, "portal-endpoints")

	// The event log: find the first test event and redeliver it.
	do(t, ctx, "event log",
		chromedp.Click(labelled("Event log")),
		chromedp.WaitVisible(chromedp.CSS(testid("events"))),
	)
	if n := count(t, ctx, testid("event-row")); n != 5 {
		t.Errorf("the event log lists %d events, want acme's 3 and the 2 test events", n)
	}
	shot(ctx, "portal-events")
	do(t, ctx, "the failed invoice",
		chromedp.Click(chromedp.CSS(`[data-testid="event-row"][data-id="evt_acme_2"] `+testid("event-link"))),
		chromedp.WaitVisible(chromedp.CSS(testid("attempts"))),
	)
	if got := text(t, ctx, testid("attempt-result")); got != "500 failed" {
		t.Errorf("the failed invoice's attempt: %q", got)
	}
	shot(ctx, "portal-event")
	do(t, ctx, "back to the event log", chromedp.Click(labelled("Event log")), chromedp.WaitVisible(chromedp.CSS(testid("events"))))
	do(t, ctx, "redeliver",
		chromedp.Click(chromedp.CSS(`[data-testid="event-row"][data-id="`+testEvent+`"] `+testid("event-link"))),
		chromedp.WaitVisible(chromedp.CSS(testid("attempts"))),
		chromedp.Click(labelled("Redeliver")),
		chromedp.WaitVisible(chromedp.CSS(testid("notice"))),
	)
	if got := text(t, ctx, testid("notice")); got != "1 delivery queued for redelivery." {
		t.Errorf("notice %q", got)
	}
	eventually(t, 30*time.Second, func() bool { return good.requests(testEvent) == 2 }, "the redelivery did not reach the receiver")
	eventually(t, 30*time.Second, func() bool {
		reload(t, ctx, testid("attempts"))
		return count(t, ctx, testid("attempt")) == 2
	}, "the redelivery's attempt never showed")

	// The catalog, read-only: a type's page shows the fields of its data.
	if code, body := s.call("PUT", "/event-types/invoice.paid", map[string]any{
		"description": "An invoice was paid in full. Its amount is in the smallest unit of the invoice's currency, such as cents for USD.",
		"schema":      map[string]any{"type": "object", "required": []string{"amount"}, "properties": map[string]any{"amount": map[string]any{"type": "integer"}}},
		"examples":    []any{map[string]any{"amount": 7}}, "validation": "warn"}); code != http.StatusCreated {
		t.Fatalf("PUT /event-types/invoice.paid: %d %v", code, body)
	}
	do(t, ctx, "event types",
		chromedp.Click(labelled("Event types")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="event-type-row"][data-name="invoice.paid"]`)),
	)
	shot(ctx, "portal-event-types")
	do(t, ctx, "an event type",
		chromedp.Click(chromedp.CSS(`[data-testid="event-type-row"][data-name="invoice.paid"] a`)),
		chromedp.WaitVisible(chromedp.CSS(testid("schema-fields"))),
	)
	if got := text(t, ctx, `[data-testid="schema-field"][data-path="amount"] td:nth-child(2)`); got != "integer" {
		t.Errorf("the amount field's type reads %q", got)
	}
	shot(ctx, "portal-event-type")

	// Revoked: the next click shows the expired page.
	s.revokePortal("acme")
	clickAndAwait(t, ctx, "after the revocation", "Endpoints", testid("portal-expired"))
	if got := text(t, ctx, testid("portal-expired")); got != "This link has expired; ask for a new one." {
		t.Errorf("the expired page says %q", got)
	}
	shot(ctx, "portal-expired")
	return ctx
}

// clickAndAwait clicks the link or button labelled label on the page ctx
// shows and waits until the page the click leads to has an element
// matching sel. Both go through script, not through DOM node ids: a node
// id that chromedp found in the page the click replaces can vanish
// between the lookup and its use ("Could not find node with given id"),
// which the framed portal was seen to do when its next page was the
// expired one. The page before the click is marked, so that the wait is
// on the new page; a check that meets the page mid-navigation is asked
// again.
func clickAndAwait(t *testing.T, ctx context.Context, what, label, sel string) {
	t.Helper()
	click := fmt.Sprintf(`(() => {
		const e = [...document.querySelectorAll("a, button")].find(e => e.textContent.trim() === %q);
		if (!e) return false;
		document.body.dataset.before = "1";
		e.click();
		return true;
	})()`, label)
	if found, err := chromedp.Run(ctx, chromedp.Evaluate[bool](click)); err != nil || !found {
		t.Fatalf("%s: click %q: found %v, %v", what, label, found, err)
	}
	shown := fmt.Sprintf(`document.body !== null && !document.body.dataset.before && document.querySelector(%q) !== null`, sel)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !poll(wctx, func() bool {
		ok, err := chromedp.Run(wctx, chromedp.Evaluate[bool](shown))
		return err == nil && ok
	}) {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %s never showed after clicking %q\npage: %s", what, sel, label, html)
	}
}

// reload loads the page ctx shows again, a tab's or a frame's, and waits
// until the new page shows sel.
func reload(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	do(t, ctx, "reload",
		// Marked as in sendTestEvent: the waits are on the new page.
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.before = "1", location.reload(), {}`),
		chromedp.WaitReady(chromedp.CSS(`body:not([data-before])`)),
		chromedp.WaitVisible(chromedp.CSS(sel)),
	)
}

// portalStack starts the whole stack with env for the API, acme's
// portal data (see portalTenant) and a receiver that answers 200 with a
// header of its own, markup included, which the attempt's page shows as
// text.
func portalStack(t *testing.T, env ...string) (*stack, *receiver) {
	t.Helper()
	s := startStack(t, env...)
	s.startWorker()
	s.startScheduler()
	good := newReceiver(t, http.StatusOK)
	good.respond = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		w.Header().Set("X-Receiver-Note", "<b>thanks</b>")
		w.WriteHeader(http.StatusOK)
		return true
	}
	s.portalTenant(newReceiver(t, http.StatusInternalServerError))
	return s, good
}

// TestPortal runs portalFlow in a chromium tab against the real stack:
// the operator asks the API for a link with a return URL and the browser
// opens it; after the revocation the used link shows the expired page
// too. With UPDATE_SCREENSHOTS set, it saves every portal page at 1280
// and 375 px under docs/img.
func TestPortal(t *testing.T) {
	t.Parallel()
	dashAddr := freeAddr(t)
	s, good := portalStack(t, "PORTAL_URL=http://"+dashAddr+"/portal", "PORTAL_RETURN_ORIGINS=https://app.example.com")
	s.startDashboardAt(dashAddr)
	ctx := browser(t)

	link := s.portalLink("acme", map[string]any{"expires_in": "2h", "return_url": "https://app.example.com/settings/webhooks"})
	portalFlow(t, s, good, portalWay{
		open: func() context.Context {
			do(t, ctx, "open the link", chromedp.Navigate(link))
			return ctx
		},
		backTo: "Back to app.example.com",
		shoot:  func(ctx context.Context, name string) { shoot(t, ctx, name) },
	})
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(link))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusGone || count(t, ctx, testid("portal-expired")) != 1 {
		t.Errorf("the used link answers %d", resp.Status)
	}
}

// TestPortalEmbedded runs portalFlow inside the example product's iframe
// (examples/portal-embed) on another site, as a product embeds it: the
// product's page on http://127.0.0.1, whose server asks for the link with
// a portal key and the Go client, and the portal on https://portal.test
// (TLS in front of the dashboard, which is told so by
// X-Forwarded-Proto). The frame's cookie is SameSite=None, Secure and
// Partitioned. With UPDATE_SCREENSHOTS set, it saves the product's page
// with an endpoint's page in the frame as portal-embed.
func TestPortalEmbedded(t *testing.T) {
	t.Parallel()
	dashAddr := freeAddr(t)
	tlsProxy := httptest.NewUnstartedServer(nil)
	t.Cleanup(tlsProxy.Close)
	_, port, _ := strings.Cut(tlsProxy.Listener.Addr().String(), ":")
	portalBase := "https://portal.test:" + port
	s, good := portalStack(t, "PORTAL_URL="+portalBase+"/portal")
	code, key := s.call("POST", "/api-keys", map[string]any{"name": "example product", "scopes": []string{"portal"}})
	if code != http.StatusCreated {
		t.Fatalf("portal key: %d %v", code, key)
	}

	exampleAddr := freeAddr(t)
	product := "http://" + exampleAddr
	s.start("portal-embed", "ADDR="+exampleAddr, "DISPATCH_API_URL="+s.apiURL, "DISPATCH_PORTAL_KEY="+key["key"].(string), "TENANT=acme")
	dash := s.startDashboardAt(dashAddr, "PORTAL_FRAME_ANCESTORS="+product)
	dashURL, err := url.Parse(dash)
	if err != nil {
		t.Fatal(err)
	}
	tlsProxy.Config.Handler = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(dashURL)
		r.SetXForwarded()
		r.Out.Host = r.In.Host
	}}
	tlsProxy.StartTLS()

	ctx := browser(t,
		chromedp.Flag("host-resolver-rules", "MAP portal.test 127.0.0.1"),
		chromedp.Flag("ignore-certificate-errors", true))
	eventually(t, 30*time.Second, func() bool {
		resp, err := http.Get(product)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, "the example product never answered")

	open := func() context.Context {
		do(t, ctx, "the product's page", chromedp.Navigate(product), chromedp.WaitVisible(chromedp.CSS(testid("portal-frame"))))
		// The portal is another site's frame: a target of its own.
		var frameID string
		eventually(t, 30*time.Second, func() bool {
			infos, err := chromedp.Targets(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, info := range infos {
				if info.Type == "iframe" && info.URL == portalBase+"/portal/" {
					frameID = string(info.TargetID)
				}
			}
			return frameID != ""
		}, "the portal never opened in the product's frame")
		frame, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(target.ID(frameID)))
		t.Cleanup(cancel)
		// The first run attaches to the frame for as long as its context
		// lives: the frame's own, not one of do's bounded ones.
		if err := chromedp.Do(frame, chromedp.Evaluate[chromedp.Void](`void 0`)); err != nil {
			t.Fatalf("attach to the frame: %v", err)
		}
		do(t, frame, "the portal in the frame", chromedp.WaitVisible(chromedp.CSS(testid("portal-header"))))
		cookies, err := chromedp.Call(frame, network.GetCookies, network.GetCookiesParams{URLs: []string{portalBase + "/portal/"}})
		if err != nil {
			t.Fatal(err)
		}
		var session *network.Cookie
		for _, c := range cookies.Cookies {
			if c.Name == "dispatch_portal" {
				session = c
			}
		}
		if session == nil || session.SameSite != network.CookieSameSiteNone || !session.Secure || !session.HTTPOnly || session.PartitionKey == nil {
			t.Fatalf("the framed portal's cookie: %+v", session)
		}
		return frame
	}
	portalFlow(t, s, good, portalWay{
		open: open,
		// The product's page, with the frame in it, is the picture.
		shoot: func(_ context.Context, name string) {
			if name == "portal-endpoint" {
				shoot(t, ctx, "portal-embed")
			}
		},
	})
}

// phoneFits fails the test when the page, now 375 px wide, is wider than
// the screen, or when a listing in a box that scrolls sideways shows its
// rows without their header row: values nobody can name. An attempt's
// table is the exception: on a phone each attempt is read as a line of
// its own.
func phoneFits(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	problem, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const width = document.documentElement.scrollWidth;
		if (width > innerWidth) return "the page is " + width + " px wide";
		for (const head of document.querySelectorAll(".scroll > table:not(.attempts) > thead"))
			if (getComputedStyle(head).display === "none") return "the table " + head.parentElement.dataset.testid + " hides its header row";
		return "";
	})()`))
	if err != nil {
		t.Fatalf("%s at 375 px: %v", name, err)
	}
	if problem != "" {
		t.Errorf("%s at 375 px: %s", name, problem)
	}
}

// shoot saves the page as docs/img/name-1280.png and name-375.png (at
// 1280 and 375 px wide) when UPDATE_SCREENSHOTS is set, and in the test's
// temporary directory otherwise, then leaves the page 1280 px wide again.
// At 375 px the page must fit (see phoneFits). With UPDATE_SCREENSHOTS=dark it saves the pages as a browser that
// prefers dark colours shows them.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := t.TempDir()
	if os.Getenv("UPDATE_SCREENSHOTS") != "" {
		dir = filepath.Join("..", "..", "docs", "img")
	}
	if os.Getenv("UPDATE_SCREENSHOTS") == "dark" {
		name += "-dark"
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
			t.Fatalf("dark colours: %v", err)
		}
	}
	for _, width := range []int64{1280, 375} {
		do(t, ctx, fmt.Sprintf("%d px wide", width), chromedp.EmulateViewport(width, 860))
		if width == 375 {
			phoneFits(t, ctx, name)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s at %d px: %v", name, width, err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width)), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do(t, ctx, "back to 1280 px", chromedp.EmulateViewport(1280, 860))
}
