package web

import (
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

func TestTenantsTableLinksEachTenant(t *testing.T) {
	t.Parallel()
	v := TenantsView{Page: page(true), Prefix: "ac", Errors: Errors{}, Next: "/tenants?after=acme.eu&prefix=ac",
		Tenants: []TenantRow{{ID: "acme", Name: "Acme Inc.", MaxSubscriptions: 1200, CreatedAt: now.Add(-time.Hour)}, {ID: "acme.eu"}}}
	doc := render(t, Tenants(v))
	rows := testid(doc, "tenant-row")
	if rows.Length() != 2 {
		t.Fatalf("%d rows", rows.Length())
	}
	acme := rows.First()
	if id := acme.Find(`code.id[data-testid="id"]`); id.Text() != "acme" || id.Parent().AttrOr("href", "") != "/tenants/acme" {
		t.Errorf("id %q links to %q", id.Text(), id.Parent().AttrOr("href", ""))
	}
	if got := acme.Find(`[data-testid="quota"]`).Text(); strings.TrimSpace(got) != "1,200 subscriptions" {
		t.Errorf("quota %q", got)
	}
	if got := strings.TrimSpace(rows.Last().Find(`[data-testid="quota"]`).Text()); got != "none" {
		t.Errorf("no quota shows as %q", got)
	}
	if acme.Find(`a[href="/events?tenant_id=acme"]`).Length() != 1 || acme.Find(`a[href="/subscriptions?tenant_id=acme"]`).Length() != 1 {
		t.Error("no links to the tenant's events and subscriptions")
	}
	if doc.Find("form#tenant-search, [data-testid=tenant-search]").AttrOr("method", "") != "get" || doc.Find("input#prefix").AttrOr("value", "") != "ac" {
		t.Error("the search is not a GET form holding the prefix")
	}
	if testid(doc, "pager-next").Text() != "Next »" || testid(doc, "pager-next").AttrOr("href", "") != v.Next {
		t.Errorf("pager %q", testid(doc, "pager").Text())
	}
}

func TestTenantsEmptyStatesSayWhatToDo(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		v    TenantsView
		want string
	}{
		{TenantsView{Page: page(true)}, "No tenants yet: create one with PUT /tenants/{id}."},
		{TenantsView{Page: page(true), Prefix: "zz"}, "No tenant's id starts with zz. Show every tenant."},
		{TenantsView{Page: page(true), First: "/tenants"}, ""},
	} {
		e := testid(render(t, Tenants(c.v)), "empty")
		if got := strings.Join(strings.Fields(e.Text()), " "); got != c.want {
			t.Errorf("%+v: empty state %q, want %q", c.v.Prefix, got, c.want)
		}
	}
}

func TestTenantPage(t *testing.T) {
	t.Parallel()
	v := TenantView{Page: page(false),
		Tenant:        TenantRow{ID: "acme", Name: "Acme Inc.", MaxSubscriptions: 10, CreatedAt: now, UpdatedAt: now},
		Counts:        TenantCounts{Subscriptions: 3, MaxSubscriptions: 10, EventsLast24h: 1234, FailingDeliveries: 2},
		Metadata:      "{\n  \"plan\": \"gold\"\n}",
		Settings:      []Setting{{Name: "max attempts", Value: "5"}, {Name: "timeout", Value: "the worker's default", Default: true}},
		Subscriptions: []SubscriptionRow{{ID: "acme-orders", State: "active"}},
		Events:        []EventRow{{ID: "evt_2", Status: "delivered"}, {ID: "evt_1", Status: "failed"}},
		Failing:       []EventRow{{ID: "evt_1", Status: "failed"}},
	}
	doc := render(t, Tenant(v))
	for id, want := range map[string]string{"count-subscriptions": "3", "count-quota": "of 10", "count-events": "1,234", "count-failing": "2",
		"tenant-name": "Acme Inc.", "setting-max attempts": "5", "setting-timeout": "the worker's default", "quota": "10 subscriptions"} {
		if got := strings.TrimSpace(testid(doc, id).Text()); got != want {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
	if testid(doc, "count-subscriptions").AttrOr("href", "") != "/subscriptions?tenant_id=acme" || testid(doc, "count-events").AttrOr("href", "") != "/events?tenant_id=acme" {
		t.Error("the counts do not link to what they count")
	}
	if m := testid(doc, "metadata"); goquery.NodeName(m) != "pre" || !m.HasClass("json") || m.Text() != v.Metadata {
		t.Errorf("metadata is not the JSON in monospace: %q", m.Text())
	}
	if testid(doc, "setting-timeout").Find(".hint").Length() != 1 {
		t.Error("an unset setting is not dimmed")
	}
	if testid(doc, "subscription-row").Length() != 1 || testid(doc, "tenant-events").Find(`[data-testid="event-row"]`).Length() != 2 ||
		testid(doc, "tenant-failing").Find(`[data-testid="status"][data-status="failed"]`).Length() != 1 {
		t.Error("subscriptions, events or failing events missing")
	}
	if testid(doc, "empty").Length() != 0 {
		t.Errorf("empty states on a full page: %q", testid(doc, "empty").Text())
	}
	if testid(doc, "tenant").Length() != 0 {
		t.Error("the tenant's page names the tenant in every row")
	}

	empty := render(t, Tenant(TenantView{Page: page(false), Tenant: TenantRow{ID: "globex"}}))
	if n := testid(empty, "empty").Length(); n != 4 {
		t.Fatalf("%d empty states, want metadata, subscriptions, events and failing", n)
	}
	if got := testid(empty, "empty").Eq(1).Text(); !strings.Contains(got, `"tenant_id": "globex"`) {
		t.Errorf("the subscriptions' empty state does not say how to create one: %q", got)
	}
	if testid(empty, "count-quota").Length() != 0 || strings.TrimSpace(testid(empty, "quota").Text()) != "none" {
		t.Error("a tenant without a quota shows one")
	}
}

// TestTenantColumns: events and subscriptions name their tenant, linked
// to its page; an event sent to every tenant says so.
func TestTenantColumns(t *testing.T) {
	t.Parallel()
	events := render(t, EventsTable([]EventRow{{ID: "a", Tenant: "acme"}, {ID: "b", Tenant: "*"}}, now, true))
	if got := events.Find("thead th").Eq(3).Text(); got != "tenant" {
		t.Errorf("events' fourth column %q", got)
	}
	cells := testid(events, "tenant")
	if cells.Length() != 2 {
		t.Fatalf("%d tenant cells", cells.Length())
	}
	if id := cells.Eq(0).Find(`code.id`); id.Text() != "acme" || id.Parent().AttrOr("href", "") != "/tenants/acme" {
		t.Errorf("acme: %q links to %q", id.Text(), id.Parent().AttrOr("href", ""))
	}
	if got := cells.Eq(1).Text(); strings.TrimSpace(got) != "every tenant" || cells.Eq(1).Find("a").Length() != 0 {
		t.Errorf("an event for every tenant: %q", got)
	}
	subs := render(t, SubscriptionsTable([]SubscriptionRow{{ID: "s", State: "active", Tenant: "acme"}}, now, true))
	if got := subs.Find("thead th").Eq(2).Text(); got != "tenant" {
		t.Errorf("subscriptions' third column %q", got)
	}
	if testid(subs, "tenant").Find(`a[href="/tenants/acme"] code.id`).Text() != "acme" {
		t.Error("a subscription's tenant is not linked")
	}
	for name, doc := range map[string]*goquery.Document{
		"event":        render(t, Event(EventView{Page: page(false), Event: EventRow{ID: "e", Status: "delivered", Tenant: "acme"}})),
		"subscription": render(t, Subscription(SubscriptionView{Page: page(false), Subscription: SubscriptionRow{ID: "s", State: "active", Tenant: "acme"}, Errors: Errors{}})),
	} {
		if doc.Find(`.facts [data-testid="tenant"] a[href="/tenants/acme"]`).Length() != 1 {
			t.Errorf("the %s page does not link its tenant", name)
		}
	}
}

// TestTenantFilterFields: the events and subscriptions pages filter by
// tenant with a GET form whose field holds the filter and shows the API's
// objection next to it.
func TestTenantFilterFields(t *testing.T) {
	t.Parallel()
	events := render(t, Events(EventsView{Page: page(true), Filter: EventFilter{TenantID: "acme"}, Errors: Errors{"tenant_id": "bad"}}))
	subs := render(t, Subscriptions(SubscriptionsView{Page: page(true), TenantID: "acme", FilterErrors: Errors{"tenant_id": "bad"}, Form: SubscriptionForm{Errors: Errors{}}}))
	for name, doc := range map[string]*goquery.Document{"events": events, "subscriptions": subs} {
		field := doc.Find(`form[method="get"] input#tenant_id[name="tenant_id"]`)
		if field.AttrOr("value", "") != "acme" {
			t.Errorf("%s: the tenant field holds %q", name, field.AttrOr("value", ""))
		}
		if testid(doc, "error-tenant_id").Parent().Find("input#tenant_id").Length() != 1 {
			t.Errorf("%s: the error is not next to the tenant field", name)
		}
	}
	if e := testid(subs, "empty"); !strings.Contains(e.Text(), "Tenant acme has no subscription here.") || e.Find(`a[href="/subscriptions"]`).Length() != 1 {
		t.Errorf("filtered empty state: %q", e.Text())
	}
}

// TestBoundTenantPages: a key bound to a tenant sees its tenant in the
// header and "My tenant" in place of the tenants, no tenant filter, and
// an overview with its tenant's counts in place of the stats and chart of
// every tenant.
func TestBoundTenantPages(t *testing.T) {
	t.Parallel()
	bound := page(true)
	bound.BoundTenant = "acme"
	ov := render(t, Overview(OverviewView{Page: bound, Counts: &TenantCounts{Subscriptions: 4, EventsLast24h: 9, FailingDeliveries: 1}}))
	if ov.Find(`header nav a[href="/tenants"]`).Length() != 0 || ov.Find(`header nav a[href="/tenants/acme"]`).Text() != "My tenant" {
		t.Errorf("navigation %q", ov.Find("header nav").Text())
	}
	if testid(ov, "bound-tenant").Find("code").Text() != "acme" {
		t.Error("the header does not name the tenant")
	}
	if testid(ov, "stats").Length() != 0 || testid(ov, "chart-error").Length() != 0 || testid(ov, "count-events").Text() != "9" {
		t.Error("the overview shows every tenant's stats instead of the tenant's counts")
	}
	events := render(t, Events(EventsView{Page: bound, Errors: Errors{}, Events: []EventRow{{ID: "e", Tenant: "acme"}}}))
	subs := render(t, Subscriptions(SubscriptionsView{Page: bound, Form: SubscriptionForm{Errors: Errors{}}, Subscriptions: []SubscriptionRow{{ID: "s", Tenant: "acme"}}}))
	if events.Find("input#tenant_id").Length() != 0 || subs.Find("input#tenant_id").Length() != 0 {
		t.Error("a bound key is offered a tenant filter")
	}
	if testid(events, "tenant").Length() != 0 || testid(subs, "tenant").Length() != 0 {
		t.Error("a bound key's tables name its tenant in every row")
	}
	// A key bound to no tenant: the tenants, and no tenant in the header.
	open := render(t, Overview(OverviewView{Page: page(true), Windows: []StatsWindow{{Window: "1h"}}}))
	if open.Find(`header nav a[href="/tenants"]`).Text() != "Tenants" || testid(open, "bound-tenant").Length() != 0 || testid(open, "tenant-counts").Length() != 0 {
		t.Error("a key bound to no tenant sees a tenant's navigation")
	}
}
