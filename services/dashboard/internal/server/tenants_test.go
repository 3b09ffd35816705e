package server

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// fakeTenantIDs are the fake API's tenants, in id order. acme has a name,
// metadata, a quota and a setting, the subscription acme-orders and
// three events; the others have nothing of their own (default has the
// subscription orders, which the fake lists without a tenant filter).
var fakeTenantIDs = []string{"acme", "acme-eu", "acme-us", "default", "globex"}

// fakeTenantsPage is how many tenants the fake API answers a page with,
// whatever the limit asked, so that a few tenants make several pages.
const fakeTenantsPage = 2

func fakeTenant(id string) map[string]any {
	t := map[string]any{"id": id, "metadata": map[string]any{}, "created_at": longAgo, "updated_at": longAgo}
	if id == "acme" {
		t["name"] = "Acme Inc."
		t["metadata"] = map[string]any{"plan": "gold", "contact": map[string]any{"email": "ops@acme.example"}}
		t["max_subscriptions"] = 10
		t["max_attempts"] = 5
	}
	return t
}

// fakeTenantEvents are a tenant's events, newest first, in status if it
// is not "".
func fakeTenantEvents(tenant, status string) []any {
	out := []any{}
	if tenant != "acme" {
		return out
	}
	now := time.Now()
	for i, e := range []struct{ id, status string }{{"evt_a3", "delivered"}, {"evt_a2", "retrying"}, {"evt_a1", "failed"}} {
		if status == "" || status == e.status {
			out = append(out, map[string]any{"id": e.id, "type": "order.created", "status": e.status, "tenant_id": "acme",
				"received_at": now.Add(-time.Duration(i+1) * time.Minute)})
		}
	}
	return out
}

// serveTenants answers GET /tenants and /tenants/{id}, and the listings
// of subscriptions and events that name a tenant_id, as the API would for
// a key bound to own (none: ""); false for any other request.
func (f *fakeAPI) serveTenants(w http.ResponseWriter, r *http.Request, own string) bool {
	q := r.URL.Query()
	tenant := q.Get("tenant_id")
	if own != "" && tenant == "" {
		tenant = own
	}
	switch {
	case own != "" && r.URL.Path == "/tenants":
		writeProblem(w, http.StatusForbidden, "this API key is bound to tenant '"+own+"' and may not use this operation")
	case own != "" && strings.HasPrefix(r.URL.Path, "/tenants/") && r.URL.Path != "/tenants/"+own,
		own != "" && tenant != own && (r.URL.Path == "/subscriptions" || r.URL.Path == "/events"):
		// Another tenant's: not found, or nothing listed.
		if strings.HasPrefix(r.URL.Path, "/tenants/") {
			writeProblem(w, http.StatusNotFound, "tenant not found")
		} else {
			writeJSON(w, http.StatusOK, map[string]any{"data": []any{}})
		}
	case r.URL.Path == "/tenants":
		prefix, after := q.Get("prefix"), q.Get("after")
		if len(prefix) > 255 {
			writeProblem(w, http.StatusUnprocessableEntity, "validation failed", map[string]string{"location": "query.prefix", "message": "expected length <= 255"})
			return true
		}
		page, next := []any{}, ""
		for _, id := range fakeTenantIDs {
			if !strings.HasPrefix(id, prefix) || id <= after {
				continue
			}
			if len(page) == fakeTenantsPage {
				next = page[len(page)-1].(map[string]any)["id"].(string)
				break
			}
			page = append(page, fakeTenant(id))
		}
		body := map[string]any{"data": page}
		if next != "" {
			body["next_cursor"] = next
		}
		writeJSON(w, http.StatusOK, body)
	case strings.HasPrefix(r.URL.Path, "/tenants/"):
		id := strings.TrimPrefix(r.URL.Path, "/tenants/")
		if !slices.Contains(fakeTenantIDs, id) {
			writeProblem(w, http.StatusNotFound, "tenant not found")
			return true
		}
		t := fakeTenant(id)
		t["subscriptions"], t["events_last_24h"], t["failing_deliveries"] = 0, 0, 0
		if id == "acme" {
			t["subscriptions"], t["events_last_24h"], t["failing_deliveries"] = 1, 3, 2
		}
		writeJSON(w, http.StatusOK, t)
	case (r.URL.Path == "/subscriptions" || r.URL.Path == "/events") && len(tenant) > 255:
		writeProblem(w, http.StatusUnprocessableEntity, "validation failed", map[string]string{"location": "query.tenant_id", "message": "expected length <= 255"})
	case r.URL.Path == "/subscriptions" && tenant != "":
		body := map[string]any{"data": []any{}}
		if tenant == "acme" && q.Get("after") == "" {
			body["data"] = []any{map[string]any{"id": "acme-orders", "tenant_id": "acme", "url": "https://acme.example/hook",
				"event_types": []string{"order.*"}, "state": "active", "created_at": longAgo, "updated_at": longAgo}}
			body["next_cursor"] = "acme-orders"
		}
		writeJSON(w, http.StatusOK, body)
	case r.URL.Path == "/events" && tenant != "":
		body := map[string]any{"data": []any{}}
		if q.Get("after") == "" {
			body["data"] = fakeTenantEvents(tenant, q.Get("status"))
			body["next_cursor"] = "c1"
		}
		writeJSON(w, http.StatusOK, body)
	default:
		return false
	}
	return true
}

// rowIDs are the data-id of the rows sel holds.
func rowIDs(sel *goquery.Selection) []string {
	var ids []string
	sel.Each(func(_ int, s *goquery.Selection) { ids = append(ids, s.AttrOr("data-id", "")) })
	return ids
}

// TestTenantsListPagesAndSearches: the tenants page lists a page of
// tenants with a link to the next; the search box asks the API for the
// tenants whose id starts with its value, keeps that value in the box and
// in the pager's links, and shows the API's objection next to it.
func TestTenantsListPagesAndSearches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	home := b.signIn(t, "dsp_admin")
	if home.Find(`header nav a[href="/tenants"]`).Text() != "Tenants" {
		t.Error("no Tenants in the navigation")
	}
	for _, step := range []struct {
		path, prefix string
		rows         []string
		first, next  string
	}{
		{"/tenants", "", []string{"acme", "acme-eu"}, "", "/tenants?after=acme-eu"},
		{"/tenants?after=acme-eu", "", []string{"acme-us", "default"}, "/tenants", "/tenants?after=default"},
		{"/tenants?prefix=acme", "acme", []string{"acme", "acme-eu"}, "", "/tenants?after=acme-eu&prefix=acme"},
		{"/tenants?after=acme-eu&prefix=acme", "acme", []string{"acme-us"}, "/tenants?prefix=acme", ""},
	} {
		resp, doc := b.get(t, step.path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", step.path, resp.StatusCode)
		}
		if got := rowIDs(testid(doc, "tenant-row")); !slices.Equal(got, step.rows) {
			t.Errorf("%s: rows %v, want %v", step.path, got, step.rows)
		}
		if got := testid(doc, "pager-first").AttrOr("href", ""); got != step.first {
			t.Errorf("%s: first page %q, want %q", step.path, got, step.first)
		}
		if got := testid(doc, "pager-next").AttrOr("href", ""); got != step.next {
			t.Errorf("%s: next page %q, want %q", step.path, got, step.next)
		}
		if got := doc.Find("input#prefix").AttrOr("value", ""); got != step.prefix {
			t.Errorf("%s: search box %q, want %q", step.path, got, step.prefix)
		}
		if got := doc.Find(`[data-testid="tenant-row"] [data-testid="id"]`).First().Parent().AttrOr("href", ""); got != "/tenants/"+step.rows[0] {
			t.Errorf("%s: the first tenant links to %q", step.path, got)
		}
	}
	if asked := b.api.asked("/tenants"); !slices.ContainsFunc(asked, func(q url.Values) bool {
		return slices.Equal(q["prefix"], []string{"acme"}) && slices.Equal(q["after"], []string{"acme-eu"})
	}) {
		t.Errorf("the API was never asked for the page after acme-eu of the tenants starting with acme: %v", asked)
	}

	_, none := b.get(t, "/tenants?prefix=zzz")
	if e := testid(none, "empty"); !strings.Contains(e.Text(), "No tenant's id starts with zzz") || e.Find(`a[href="/tenants"]`).Length() != 1 {
		t.Errorf("empty search: %q", e.Text())
	}
	resp, bad := b.get(t, "/tenants?prefix="+strings.Repeat("a", 256))
	if resp.StatusCode != http.StatusUnprocessableEntity || testid(bad, "error-prefix").Parent().Find("input#prefix").Length() != 1 {
		t.Errorf("too long a prefix: %d %q", resp.StatusCode, testid(bad, "error-prefix").Text())
	}
}

// TestTenantPageShowsOnlyItsOwn: a tenant's page shows its counts,
// metadata and settings from GET /tenants/{id}, and lists only its
// subscriptions, events and failing events, each asked for with its
// tenant_id; the newest failing ones merge the failed and the retrying.
func TestTenantPageShowsOnlyItsOwn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	b.api.forgetAsked()
	resp, doc := b.get(t, "/tenants/acme")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d: %s", resp.StatusCode, testid(doc, "error-message").Text())
	}
	if testid(doc, "tenant-name").Text() != "Acme Inc." || doc.Find(`header nav a[aria-current="page"]`).Text() != "Tenants" {
		t.Error("the name, or Tenants is not the current section")
	}
	for id, want := range map[string]string{"count-subscriptions": "1", "count-quota": "of 10", "count-events": "3", "count-failing": "2",
		"setting-max attempts": "5", "setting-timeout": "the worker's default"} {
		if got := strings.TrimSpace(testid(doc, id).Text()); got != want {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
	if !testid(doc, "count-failing").HasClass("tone-bad-text") {
		t.Error("failing deliveries are not marked")
	}
	if got := testid(doc, "metadata").Text(); !strings.Contains(got, "\n  \"plan\": \"gold\"") || !strings.Contains(got, "\n    \"email\": \"ops@acme.example\"") {
		t.Errorf("metadata not indented JSON: %q", got)
	}
	if got := rowIDs(testid(doc, "subscription-row")); !slices.Equal(got, []string{"acme-orders"}) {
		t.Errorf("subscriptions %v, want acme's only", got)
	}
	if got := rowIDs(testid(doc, "tenant-events").Find(`[data-testid="event-row"]`)); !slices.Equal(got, []string{"evt_a3", "evt_a2", "evt_a1"}) {
		t.Errorf("events %v", got)
	}
	if got := rowIDs(testid(doc, "tenant-failing").Find(`[data-testid="event-row"]`)); !slices.Equal(got, []string{"evt_a2", "evt_a1"}) {
		t.Errorf("failing events %v, want the retrying and the failed, newest first", got)
	}
	for link, want := range map[string]string{"all-subscriptions": "/subscriptions?tenant_id=acme", "all-events": "/events?tenant_id=acme",
		"all-failed": "/events?tenant_id=acme&status=failed", "all-retrying": "/events?tenant_id=acme&status=retrying"} {
		if got := testid(doc, link).AttrOr("href", ""); got != want {
			t.Errorf("%s links to %q, want %q", link, got, want)
		}
	}
	if asked := b.api.asked("/subscriptions"); len(asked) != 1 || asked[0].Get("tenant_id") != "acme" {
		t.Errorf("subscriptions asked with %v", asked)
	}
	var statuses []string
	for _, q := range b.api.asked("/events") {
		if q.Get("tenant_id") != "acme" {
			t.Errorf("events asked without the tenant: %v", q)
		}
		statuses = append(statuses, q.Get("status"))
	}
	if slices.Sort(statuses); !slices.Equal(statuses, []string{"", "failed", "retrying"}) {
		t.Errorf("events asked with the statuses %q", statuses)
	}

	// A tenant with nothing yet says what to do about each part.
	_, empty := b.get(t, "/tenants/globex")
	if n := testid(empty, "empty").Length(); n != 4 {
		t.Errorf("%d empty states, want metadata, subscriptions, events and failing", n)
	}
	resp, missing := b.get(t, "/tenants/nope")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(testid(missing, "error-message").Text(), "no tenant has the id nope") {
		t.Errorf("unknown tenant: %d %q", resp.StatusCode, testid(missing, "error-message").Text())
	}
}

// TestTenantFilterOnEventsAndSubscriptions: the events and subscriptions
// pages pass tenant_id to the API, keep it in the filter form and in the
// pager's links, and show each row's tenant linked to its page.
func TestTenantFilterOnEventsAndSubscriptions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	tenantOf := func(row *goquery.Selection) (string, string) {
		cell := row.Find(`[data-testid="tenant"]`)
		return cell.AttrOr("data-tenant", "?"), cell.Find("a").AttrOr("href", "")
	}

	b.api.forgetAsked()
	_, events := b.get(t, "/events?tenant_id=acme&status=")
	if asked := b.api.asked("/events"); len(asked) != 1 || asked[0].Get("tenant_id") != "acme" {
		t.Errorf("events asked with %v", asked)
	}
	if got := rowIDs(testid(events, "event-row")); !slices.Equal(got, []string{"evt_a3", "evt_a2", "evt_a1"}) {
		t.Errorf("events %v", got)
	}
	if tenant, href := tenantOf(testid(events, "event-row").First()); tenant != "acme" || href != "/tenants/acme" {
		t.Errorf("event row's tenant %q links to %q", tenant, href)
	}
	if events.Find("input#tenant_id").AttrOr("value", "") != "acme" {
		t.Error("the filter form lost the tenant")
	}
	if got := testid(events, "pager-next").AttrOr("href", ""); got != "/events?after=c1&tenant_id=acme" {
		t.Errorf("next page of events %q", got)
	}
	_, later := b.get(t, "/events?after=c1&tenant_id=acme")
	if got := testid(later, "pager-first").AttrOr("href", ""); got != "/events?tenant_id=acme" {
		t.Errorf("first page of events %q", got)
	}
	resp, bad := b.get(t, "/events?tenant_id="+strings.Repeat("a", 256))
	if resp.StatusCode != http.StatusUnprocessableEntity || testid(bad, "error-tenant_id").Parent().Find("input#tenant_id").Length() != 1 {
		t.Errorf("events for a bad tenant id: %d %q", resp.StatusCode, testid(bad, "error-tenant_id").Text())
	}

	b.api.forgetAsked()
	_, subs := b.get(t, "/subscriptions?tenant_id=acme")
	if asked := b.api.asked("/subscriptions"); len(asked) != 1 || asked[0].Get("tenant_id") != "acme" {
		t.Errorf("subscriptions asked with %v", asked)
	}
	if got := rowIDs(testid(subs, "subscription-row")); !slices.Equal(got, []string{"acme-orders"}) {
		t.Errorf("subscriptions %v", got)
	}
	if tenant, href := tenantOf(testid(subs, "subscription-row")); tenant != "acme" || href != "/tenants/acme" {
		t.Errorf("subscription row's tenant %q links to %q", tenant, href)
	}
	if testid(subs, "subscription-filters").Find("input#tenant_id").AttrOr("value", "") != "acme" {
		t.Error("the filter form lost the tenant")
	}
	if got := testid(subs, "pager-next").AttrOr("href", ""); got != "/subscriptions?after=acme-orders&tenant_id=acme" {
		t.Errorf("next page of subscriptions %q", got)
	}
	_, last := b.get(t, "/subscriptions?after=acme-orders&tenant_id=acme")
	if got := testid(last, "pager-first").AttrOr("href", ""); got != "/subscriptions?tenant_id=acme" {
		t.Errorf("first page of subscriptions %q", got)
	}
	if e := testid(last, "empty").Text(); !strings.Contains(e, "Tenant acme has no subscription here.") {
		t.Errorf("empty state %q", e)
	}
	_, all := b.get(t, "/subscriptions")
	if tenant, href := tenantOf(testid(all, "subscription-row")); tenant != "default" || href != "/tenants/default" {
		t.Errorf("unfiltered: tenant %q links to %q", tenant, href)
	}
	resp, bad = b.get(t, "/subscriptions?tenant_id="+strings.Repeat("a", 256))
	if resp.StatusCode != http.StatusUnprocessableEntity || testid(bad, "error-tenant_id").Parent().Find("input#tenant_id").Length() != 1 {
		t.Errorf("subscriptions for a bad tenant id: %d %q", resp.StatusCode, testid(bad, "error-tenant_id").Text())
	}
}

// TestTenantBoundSession: a key bound to a tenant signs in to a dashboard
// of its tenant: the tenant in the header, "My tenant" instead of the
// tenants, whose list leads to its own page, an overview with its
// tenant's counts where the stats of every tenant would be, no tenant
// filter or column, and listings asked for its tenant.
func TestTenantBoundSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_acme")
	b.api.forgetAsked()
	resp, home := b.get(t, "/")
	if resp.StatusCode != http.StatusOK || testid(home, "error-message").Length() != 0 {
		t.Fatalf("overview: %d %q", resp.StatusCode, testid(home, "error-message").Text())
	}
	if home.Find(`header nav a[href="/tenants"]`).Length() != 0 {
		t.Error("a bound key is offered the list of tenants")
	}
	if mine := home.Find(`header nav a[href="/tenants/acme"]`); mine.Text() != "My tenant" {
		t.Errorf("no My tenant in the navigation: %q", home.Find("header nav").Text())
	}
	if got := testid(home, "bound-tenant").Find("code").Text(); got != "acme" {
		t.Errorf("the header names the tenant %q", got)
	}
	if testid(home, "stats").Length() != 0 || testid(home, "deliveries-chart").Length() != 0 || testid(home, "chart-error").Length() != 0 {
		t.Error("the overview shows the stats of every tenant")
	}
	if got := testid(home, "count-subscriptions").Text(); got != "1" || testid(home, "count-failing").Text() != "2" {
		t.Errorf("the tenant's counts: subscriptions %q, failing %q", got, testid(home, "count-failing").Text())
	}
	if got := rowIDs(testid(home, "event-row")); !slices.Equal(got, []string{"evt_a1"}) {
		t.Errorf("recently failed %v, want the tenant's", got)
	}
	if asked := append(b.api.asked("/stats"), b.api.asked("/stats/minutes")...); len(asked) != 0 {
		t.Errorf("the overview asked for the stats of every tenant: %v", asked)
	}

	resp, _ = b.get(t, "/tenants")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/tenants/acme" {
		t.Errorf("the tenants list: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, mine := b.get(t, "/tenants/acme")
	if resp.StatusCode != http.StatusOK || mine.Find(`header nav a[aria-current="page"]`).Text() != "My tenant" {
		t.Errorf("its own page: %d", resp.StatusCode)
	}
	if resp, _ := b.get(t, "/tenants/globex"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another tenant's page: %d", resp.StatusCode)
	}

	b.api.forgetAsked()
	_, events := b.get(t, "/events?tenant_id=globex")
	_, subs := b.get(t, "/subscriptions")
	if testid(events, "tenant-filter").Length() != 0 || testid(subs, "subscription-filters").Length() != 0 {
		t.Error("a bound key is offered a tenant filter")
	}
	if asked := b.api.asked("/events"); len(asked) != 1 || asked[0].Get("tenant_id") != "acme" {
		t.Errorf("events asked with %v, want its own tenant", asked)
	}
	if testid(events, "event-row").Length() != 3 || testid(events, "tenant").Length() != 0 {
		t.Error("its events, without a tenant column")
	}
	if got := rowIDs(testid(subs, "subscription-row")); !slices.Equal(got, []string{"acme-orders"}) {
		t.Errorf("subscriptions %v", got)
	}
}
