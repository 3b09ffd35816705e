package server

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// serveCatalog answers the catalog's GETs as the API would, for a catalog
// of order.created (schema members in a deliberate order, two versions)
// and the deprecated order.old; false for any other request.
func serveCatalog(w http.ResponseWriter, r *http.Request) bool {
	const created = `{"name":"order.created","description":"An order was placed.\nSecond line.","schema":{"type":"object","required":["id"],"properties":{"id":{"type":"string"}}},` +
		`"examples":[{"id":"ord_1"}],"validation":"enforce","version":2,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-02T00:00:00Z"}`
	const old = `{"name":"order.old","schema":true,"examples":[{}],"deprecated":true,"validation":"warn","version":1,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`
	write := func(body string) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
	switch r.URL.Path {
	case "/event-types":
		switch r.URL.Query().Get("deprecated") {
		case "true":
			write(`{"data":[` + old + `]}`)
		default:
			write(`{"data":[` + created + `,` + old + `]}`)
		}
	case "/event-types/order.created":
		write(created)
	case "/event-types/order.created/versions":
		write(`{"data":[{"version":2,"schema":{"type":"object","required":["id"],"properties":{"id":{"type":"string"}}},"examples":[{"id":"ord_1"}],"created_at":"2026-01-02T00:00:00Z"},` +
			`{"version":1,"schema":{"type":"object"},"examples":[{}],"created_at":"2026-01-01T00:00:00Z"}]}`)
	default:
		return false
	}
	return true
}

func TestCatalogPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	home := b.signIn(t, "dsp_reader")
	if home.Find(`header nav a[href="/event-types"]`).Text() != "Event types" {
		t.Error("no Event types in the navigation")
	}
	resp, doc := b.get(t, "/event-types")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /event-types: %d", resp.StatusCode)
	}
	rows := testid(doc, "event-type-row")
	if rows.Length() != 2 {
		t.Fatalf("%d rows", rows.Length())
	}
	first := rows.First()
	if first.Find("a").AttrOr("href", "") != "/event-types/order.created" || !strings.Contains(first.Text(), "An order was placed.") || strings.Contains(first.Text(), "Second line") {
		t.Errorf("first row: %q", first.Text())
	}
	if rows.Last().Find(`[data-testid="deprecated"]`).Text() != "deprecated" {
		t.Error("order.old is not marked deprecated in words")
	}
	_, doc = b.get(t, "/event-types?deprecated=true&prefix=order.")
	if got := testid(doc, "event-type-row").Length(); got != 1 {
		t.Errorf("%d deprecated rows", got)
	}
	if !slices.ContainsFunc(b.api.asked("/event-types"), func(q url.Values) bool {
		return q.Get("deprecated") == "true" && q.Get("prefix") == "order."
	}) {
		t.Error("the filters did not reach the API")
	}

	resp, doc = b.get(t, "/event-types/order.created")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /event-types/order.created: %d", resp.StatusCode)
	}
	schema := testid(doc, "schema").Text()
	if !strings.Contains(schema, "\n  \"type\": \"object\",\n  \"required\"") {
		t.Errorf("the schema is not indented in its own order:\n%s", schema)
	}
	if ex := testid(doc, "example").Text(); !strings.Contains(ex, `"id": "ord_1"`) {
		t.Errorf("example %q", ex)
	}
	if got := testid(doc, "version").Length(); got != 2 {
		t.Errorf("%d versions", got)
	}
	if !strings.Contains(testid(doc, "description").Text(), "Second line.") {
		t.Error("the description is not shown whole")
	}
	resp, _ = b.get(t, "/event-types/nope")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown type: %d", resp.StatusCode)
	}
}

func TestSubscriptionFormOffersTheCatalog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	_, doc := b.get(t, "/subscriptions")
	boxes := testid(doc, "catalog-types").Find(`input[type="checkbox"][name="catalog_type"]`)
	if boxes.Length() != 2 || boxes.First().AttrOr("value", "") != "order.created" {
		t.Fatalf("%d catalog types offered", boxes.Length())
	}
	b.post(t, "/subscriptions", url.Values{"csrf": {csrf(doc)}, "url": {"https://example.com/h"}, "event_types": {"user.*"}, "catalog_type": {"order.created"}})
	b.api.mu.Lock()
	posts := slices.Clone(b.api.posts)
	b.api.mu.Unlock()
	if !slices.ContainsFunc(posts, func(p string) bool {
		return strings.HasPrefix(p, "POST /subscriptions ") && strings.Contains(p, `"event_types":["user.*","order.created"]`)
	}) {
		t.Errorf("the ticked type was not sent: %v", posts)
	}
}
