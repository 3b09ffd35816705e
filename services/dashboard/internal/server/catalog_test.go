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

func TestSchemaFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, schema string
		want         []string // path | type | required | description
	}{
		{"in the order written", `{"properties":{"z":{"type":"string"},"a":{"type":"integer"}},"required":["a"]}`,
			[]string{"z|string||", "a|integer|required|"}},
		{"nested objects and a $ref", `{"properties":{"customer":{"$ref":"#/$defs/c"}},"$defs":{"c":{"type":"object","required":["email"],"properties":{"email":{"type":"string","format":"email","description":"Where receipts go."}}}}}`,
			[]string{"customer|object||", "customer.email|string (email)|required|Where receipts go."}},
		{"arrays", `{"properties":{"tags":{"type":"array","items":{"type":"string"}},"items":{"type":"array","items":{"properties":{"sku":{"type":"string"}},"required":["sku"]}}}}`,
			[]string{"tags|array of string||", "items|array||", "items[].sku|string|required|"}},
		{"values", `{"properties":{"currency":{"enum":["EUR","USD"]},"kind":{"const":"order"},"note":{"type":["string","null"]}}}`,
			[]string{`currency|one of "EUR", "USD"||`, `kind|always "order"||`, "note|string or null||"}},
		{"a recursive schema stops", `{"$defs":{"n":{"type":"object","properties":{"next":{"$ref":"#/$defs/n"}}}},"$ref":"#/$defs/n"}`,
			[]string{"next|object||", "next.next|object||", "next.next.next|object||", "next.next.next.next|object||", "next.next.next.next.next|object||", "next.next.next.next.next.next|object||", "next.next.next.next.next.next.next|object||"}},
		{"no properties", `true`, nil},
		{"a ref to nowhere", `{"properties":{"a":{"$ref":"#/$defs/missing"}}}`, []string{"a|||"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, f := range schemaFields([]byte(tc.schema)) {
				req := ""
				if f.Required {
					req = "required"
				}
				got = append(got, f.Path+"|"+f.Type+"|"+req+"|"+f.Description)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestCatalogWarningsSurviveTheRedirect: the API's warnings about a new or
// changed subscription's event types (not in the catalog, deprecated) are
// shown on the page the redirect leads to, once.
func TestCatalogWarningsSurviveTheRedirect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	const unknown, deprecated = `event type "order.creatd" is not in the catalog`, `event type "order.old" is deprecated`
	b.api.mu.Lock()
	b.api.answer = func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/subscriptions":
			writeJSON(w, http.StatusCreated, map[string]any{"id": "new", "url": "https://example.com", "event_types": []string{"order.creatd"}, "state": "active",
				"secret": "whsec_shownonce", "created_at": time.Now(), "updated_at": time.Now(), "warnings": []string{unknown}})
		case r.Method == http.MethodPatch && r.URL.Path == "/subscriptions/orders":
			writeJSON(w, http.StatusOK, map[string]any{"id": "orders", "warnings": []string{deprecated}})
		default:
			return false
		}
		return true
	}
	b.api.mu.Unlock()
	warnings := func(doc *goquery.Document) []string {
		var out []string
		testid(doc, "warning").Each(func(_ int, s *goquery.Selection) { out = append(out, s.Text()) })
		return out
	}

	_, page := b.get(t, "/subscriptions")
	resp, doc := b.postRedirected(t, "/subscriptions", url.Values{"csrf": {csrf(page)}, "url": {"https://example.com"}, "event_types": {"order.creatd"}})
	if resp.Request.URL.RequestURI() != "/subscriptions/new?done=created" || testid(doc, "secret").Text() != "whsec_shownonce" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Request.URL)
	}
	if got := warnings(doc); !slices.Equal(got, []string{unknown}) {
		t.Errorf("after create: warnings %q", got)
	}
	if _, again := b.get(t, "/subscriptions/new?done=created"); len(warnings(again)) != 0 {
		t.Error("the warnings show again on a reload")
	}

	_, page = b.get(t, "/subscriptions/orders")
	resp, doc = b.postRedirected(t, "/subscriptions/orders/edit", url.Values{"csrf": {csrf(page)}, "url": {"https://example.com/hook"}, "was_url": {"https://example.com/hook"},
		"event_types": {"order.old"}, "was_event_types": {"order.*"}})
	if resp.Request.URL.RequestURI() != "/subscriptions/orders?done=updated" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Request.URL)
	}
	if got := warnings(doc); !slices.Equal(got, []string{deprecated}) {
		t.Errorf("after edit: warnings %q", got)
	}
}
