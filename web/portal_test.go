package web

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

func portalPage(canWrite bool) Page {
	p := page(canWrite)
	p.Portal = &PortalChrome{Title: "Acme webhooks", LogoURL: "https://cdn.example.com/logo.svg", TenantName: "Globex", ReturnURL: "https://app.example.com/settings"}
	return p
}

// TestPortalControlsCarryTheirLabels: every control of the portal has
// the visible label the customers' own documentation names, and a stable
// data-testid; a read-only session gets none of them.
func TestPortalControlsCarryTheirLabels(t *testing.T) {
	t.Parallel()
	sub := SubscriptionRow{ID: "ep_1", URL: "https://r.example/hook", EventTypes: []string{"order.*"}, State: "active", Circuit: "closed"}
	paused := sub
	paused.State = "paused"
	endpoints := func(p Page) SubscriptionsView {
		return SubscriptionsView{Page: p, Subscriptions: []SubscriptionRow{sub}, Activity: map[string]EndpointActivity{"ep_1": {Attempts: 4, Succeeded: 3}},
			KnownTypes: []string{"order.created", "order.paid"}, Form: SubscriptionForm{Errors: Errors{}}}
	}
	endpoint := func(p Page, s SubscriptionRow) SubscriptionView {
		return SubscriptionView{Page: p, Subscription: s, Errors: Errors{}, Edit: SubscriptionEdit{Errors: Errors{}}}
	}
	event := func(p Page) EventView {
		return EventView{Page: p, Event: EventRow{ID: "evt_1", Type: "order.created", Status: "failed"},
			Deliveries: []DeliveryView{{SubscriptionID: "ep_1", Status: "failed", Attempts: 1, AttemptRows: []AttemptView{{Number: 1, StatusCode: "500", ErrorClass: "http_status"}}}}}
	}
	for _, tc := range []struct {
		name     string
		rw, ro   *goquery.Document
		controls map[string]string
	}{
		{"endpoints", render(t, PortalEndpoints(endpoints(portalPage(true)))), render(t, PortalEndpoints(endpoints(portalPage(false)))),
			map[string]string{"add-endpoint": "Add endpoint"}},
		{"endpoint", render(t, PortalEndpoint(endpoint(portalPage(true), sub))), render(t, PortalEndpoint(endpoint(portalPage(false), sub))),
			map[string]string{"reveal": "Reveal", "rotate": "Rotate secret", "send-test": "Send test event", "recover": "Recover failed messages",
				"pause": "Pause", "delete": "Delete", "save": "Save"}},
		{"paused endpoint", render(t, PortalEndpoint(endpoint(portalPage(true), paused))), render(t, PortalEndpoint(endpoint(portalPage(false), paused))),
			map[string]string{"resume": "Resume"}},
		{"event", render(t, PortalEvent(event(portalPage(true)))), render(t, PortalEvent(event(portalPage(false)))),
			map[string]string{"redeliver": "Redeliver"}},
	} {
		for id, label := range tc.controls {
			if got := strings.TrimSpace(testid(tc.rw, id).Text()); got != label {
				t.Errorf("%s: %s reads %q, want %q", tc.name, id, got, label)
			}
		}
		if n := tc.ro.Find("form[method=post]").Length(); n != 0 {
			t.Errorf("%s: a read-only session gets %d forms that change something", tc.name, n)
		}
		for _, d := range []*goquery.Document{tc.rw, tc.ro} {
			if d.Find(`nav a:contains("Endpoints")`).Length() != 1 || d.Find(`nav a:contains("Event log")`).Length() != 1 {
				t.Errorf("%s: no Endpoints and Event log navigation", tc.name)
			}
			if got := testid(d, "portal-tenant").Text(); got != "Globex" {
				t.Errorf("%s: tenant %q in the header", tc.name, got)
			}
			if d.Find(`input:not([type=hidden]):not([id]), select:not([id])`).Length() != 0 {
				t.Errorf("%s: a field without an id its label can name", tc.name)
			}
			d.Find("input[id]:not([type=hidden]), select[id], textarea[id]").Each(func(_ int, f *goquery.Selection) {
				if d.Find(`label[for="`+f.AttrOr("id", "")+`"]`).Length() == 0 {
					t.Errorf("%s: field %s has no label", tc.name, f.AttrOr("id", ""))
				}
			})
		}
	}
	rw := render(t, PortalEndpoints(endpoints(portalPage(true))))
	if rw.Find(`form[data-testid=add-endpoint-form] input[name=url]`).Length() != 1 {
		t.Error("the endpoint form's URL field is not name=url")
	}
	if got := strings.TrimSpace(testid(rw, "success-rate").Text()); got != "75.0 %" {
		t.Errorf("success rate %q", got)
	}
	if got := strings.TrimSpace(testid(rw, "portal-back").Text()); got != "Back to app.example.com" {
		t.Errorf("back link %q", got)
	}
}

// TestPortalSecretHiddenUntilRevealed: the endpoint page shows no secret
// until the session asked for it.
func TestPortalSecretHiddenUntilRevealed(t *testing.T) {
	t.Parallel()
	v := SubscriptionView{Page: portalPage(true), Subscription: SubscriptionRow{ID: "ep_1", State: "active"}, Errors: Errors{}, Edit: SubscriptionEdit{Errors: Errors{}}}
	hidden := render(t, PortalEndpoint(v))
	if testid(hidden, "secret").Length() != 0 || testid(hidden, "secret-hidden").Length() != 1 {
		t.Error("the secret shows before Reveal")
	}
	v.Revealed = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	shown := render(t, PortalEndpoint(v))
	if got := testid(shown, "secret").Text(); got != v.Revealed {
		t.Errorf("revealed secret %q", got)
	}
	if testid(shown, "reveal").Length() != 0 {
		t.Error("Reveal is offered again beside the revealed secret")
	}
}

// TestErrorClassInWords: the portal explains each error class.
func TestErrorClassInWords(t *testing.T) {
	t.Parallel()
	for _, class := range []string{"http_status", "timeout", "connection_refused", "connection_reset", "dns", "tls", "network", "blocked",
		"invalid_response", "response_too_large", "informational_response", "internal", "auth"} {
		if w := ErrorClassWords(class); w == class || w == "" {
			t.Errorf("%s has no words", class)
		}
	}
}

func TestCounted(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 attempts", 1: "1 attempt", 2: "2 attempts", 1024: "1,024 attempts"} {
		if got := Counted(n, "attempt"); got != want {
			t.Errorf("Counted(%d) = %q, want %q", n, got, want)
		}
	}
}
