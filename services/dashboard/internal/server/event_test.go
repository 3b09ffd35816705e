package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// longHistory answers as the ingest-api would for evt_many, an event with
// 60 deliveries (orders, then sub_001 … sub_059) whose delivery to orders
// has 300 attempts and every other one attempt, in the API's pages; it
// hands anything else to the fake API.
type longHistory struct {
	*fakeAPI
	subs []string
	// attempts in the order of their ids, which is the order they started.
	attempts []fakeAttempt

	mu sync.Mutex
	// asked is the query of every attempts request.
	asked []url.Values
}

type fakeAttempt struct {
	id     int
	sub    string
	number int
}

func newLongHistory(api *fakeAPI) *longHistory {
	h := &longHistory{fakeAPI: api, subs: []string{"orders"}}
	for i := 1; i < 60; i++ {
		h.subs = append(h.subs, fmt.Sprintf("sub_%03d", i))
	}
	for n := 1; n <= 300; n++ {
		for _, sub := range h.subs {
			if sub == "orders" || n == 1 {
				h.attempts = append(h.attempts, fakeAttempt{id: len(h.attempts) + 1, sub: sub, number: n})
			}
		}
	}
	return h
}

var longAgo = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func (h *longHistory) delivery(sub string) map[string]any {
	n := 1
	if sub == "orders" {
		n = 300
	}
	return map[string]any{"subscription_id": sub, "status": "retrying", "attempts": n, "updated_at": longAgo}
}

// deliveries is a page of the event's deliveries after the subscription
// id after, and the next page's cursor.
func (h *longHistory) deliveries(after string, limit int) ([]any, string) {
	page := []any{}
	for _, sub := range h.subs {
		if sub > after {
			page = append(page, h.delivery(sub))
		}
	}
	if len(page) > limit {
		return page[:limit], page[limit-1].(map[string]any)["subscription_id"].(string)
	}
	return page, ""
}

func (h *longHistory) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/events/evt_many") {
		h.fakeAPI.ServeHTTP(w, r)
		return
	}
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	q := r.URL.Query()
	limit := 50
	if l := q.Get("limit"); l != "" {
		limit, _ = strconv.Atoi(l)
	}
	if limit < 1 || limit > 250 {
		reply(http.StatusUnprocessableEntity, map[string]any{"status": 422, "detail": "validation failed",
			"errors": []map[string]string{{"location": "query.limit", "message": "expected number <= 250"}}})
		return
	}
	switch r.URL.Path {
	case "/events/evt_many":
		ds, next := h.deliveries("", 50)
		reply(http.StatusOK, map[string]any{"id": "evt_many", "type": "order.created", "data": map[string]any{}, "received_at": longAgo,
			"status": "retrying", "deliveries": ds, "deliveries_next_cursor": next})
	case "/events/evt_many/deliveries":
		if !subscriptionID.MatchString(q.Get("after")) {
			reply(http.StatusUnprocessableEntity, map[string]any{"status": 422, "detail": "validation failed",
				"errors": []map[string]string{{"location": "query.after", "message": "is not a cursor from this API"}}})
			return
		}
		ds, next := h.deliveries(q.Get("after"), limit)
		body := map[string]any{"data": ds}
		if next != "" {
			body["next_cursor"] = next
		}
		reply(http.StatusOK, body)
	case "/events/evt_many/attempts":
		h.mu.Lock()
		h.asked = append(h.asked, q)
		h.mu.Unlock()
		after := -1
		if a := q.Get("after"); a != "" {
			var err error
			if after, err = strconv.Atoi(a); err != nil {
				reply(http.StatusUnprocessableEntity, map[string]any{"status": 422, "detail": "validation failed",
					"errors": []map[string]string{{"location": "query.after", "message": "is not a cursor from this API"}}})
				return
			}
		}
		newest := q.Get("order") == "newest"
		var page []any
		next := ""
		for i := range h.attempts {
			a := h.attempts[i]
			if newest {
				a = h.attempts[len(h.attempts)-1-i]
			}
			if sub := q.Get("subscription_id"); (sub != "" && a.sub != sub) || (after >= 0 && (newest && a.id >= after || !newest && a.id <= after)) {
				continue
			}
			if len(page) == limit {
				next = strconv.Itoa(page[limit-1].(map[string]any)["id"].(int))
				break
			}
			page = append(page, map[string]any{"id": a.id, "subscription_id": a.sub, "number": a.number,
				"started_at": longAgo.Add(time.Duration(a.id) * time.Second), "duration_ms": 12, "status_code": 503})
		}
		if page == nil {
			page = []any{}
		}
		body := map[string]any{"data": page}
		if next != "" {
			body["next_cursor"] = next
		}
		reply(http.StatusOK, body)
	default:
		reply(http.StatusNotFound, map[string]any{"status": 404, "detail": "not found"})
	}
}

// subscriptionID is what the API takes as the after of an event's deliveries.
var subscriptionID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,255}$`)

// numbers are the attempt numbers a delivery's section shows, in order.
func numbers(s *goquery.Selection) []int {
	var ns []int
	s.Find(`[data-testid="attempt"]`).Each(func(_ int, a *goquery.Selection) {
		n, _ := strconv.Atoi(a.AttrOr("data-number", ""))
		ns = append(ns, n)
	})
	return ns
}

// countdown is from, from-1, … down to to.
func countdown(from, to int) []int {
	var ns []int
	for n := from; n >= to; n-- {
		ns = append(ns, n)
	}
	return ns
}

// TestEventPageIsBoundedAndShowsMore: an event with 60 deliveries and 300
// attempts to one of them shows 50 deliveries, each with its newest 10
// attempts at most; plain links (no script) show a page of 50 of one
// delivery's attempts, older pages, the newest again, and the next page of
// deliveries. The URL holds which.
func TestEventPageIsBoundedAndShowsMore(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{keys: map[string][]string{"dsp_admin": {"admin"}}}
	h := newLongHistory(api)
	b := setupWith(t, api, h)
	b.signIn(t, "dsp_admin")

	resp, doc := b.get(t, "/events/evt_many")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event page: %d %s", resp.StatusCode, doc.Text())
	}
	if n := testid(doc, "delivery").Length(); n != 50 {
		t.Errorf("%d deliveries shown, want the first 50", n)
	}
	if n := testid(doc, "attempt").Length(); n != 10+49 {
		t.Errorf("%d attempts shown, want the newest 10 of orders and one of each other delivery", n)
	}
	orders := func(doc *goquery.Document) *goquery.Selection {
		return doc.Find(`[data-testid="delivery"][data-subscription="orders"]`)
	}
	if got := numbers(orders(doc)); !slices.Equal(got, countdown(300, 291)) {
		t.Errorf("orders shows attempts %v, want the newest 10", got)
	}
	if orders(doc).AttrOr("id", "") != "delivery-orders" {
		t.Errorf("the orders section's id is %q", orders(doc).AttrOr("id", ""))
	}
	if testid(doc, "attempts-more").Length() != 1 {
		t.Errorf("%d show-more links, want one: only orders has more", testid(doc, "attempts-more").Length())
	}
	more := orders(doc).Find(`[data-testid="attempts-more"]`).AttrOr("href", "")
	if more != "/events/evt_many?delivery=orders#delivery-orders" {
		t.Fatalf("show more links to %q", more)
	}
	h.mu.Lock()
	for _, q := range h.asked {
		if q.Get("subscription_id") == "" || q.Get("order") != "newest" || q.Get("limit") != "10" {
			t.Errorf("the event page asked for attempts with %v, want one delivery's newest 10", q)
		}
	}
	if len(h.asked) != 50 {
		t.Errorf("%d attempts requests for 50 deliveries", len(h.asked))
	}
	h.asked = nil
	h.mu.Unlock()

	// Show more: a page of 50 of orders' attempts, newest first.
	_, doc = b.get(t, more)
	if got := numbers(orders(doc)); !slices.Equal(got, countdown(300, 251)) {
		t.Errorf("after show more: %v", got)
	}
	if testid(doc, "attempts-newest").Length() != 0 || testid(doc, "attempts-more").Length() != 0 {
		t.Error("the newest page links to the newest, or to more than it shows")
	}
	older := orders(doc).Find(`[data-testid="attempts-older"]`).AttrOr("href", "")
	u, err := url.Parse(older)
	if err != nil || u.Path != "/events/evt_many" || u.Query().Get("delivery") != "orders" || u.Query().Get("attempts_after") == "" || u.Fragment != "delivery-orders" {
		t.Fatalf("older attempts link %q", older)
	}
	if n := testid(doc, "delivery").Length(); n != 50 {
		t.Errorf("the other deliveries are still shown: %d", n)
	}
	// Older pages, down to the first attempt, then the newest again.
	var seen []int
	for range 10 {
		_, doc = b.get(t, older)
		seen = append(seen, numbers(orders(doc))...)
		if orders(doc).Find(`[data-testid="attempts-newest"]`).AttrOr("href", "") != "/events/evt_many?delivery=orders#delivery-orders" {
			t.Fatal("an older page has no link back to the newest attempts")
		}
		if older = orders(doc).Find(`[data-testid="attempts-older"]`).AttrOr("href", ""); older == "" {
			break
		}
	}
	if !slices.Equal(seen, countdown(250, 1)) {
		t.Errorf("older pages showed %v, want 250 down to 1, each once", seen)
	}
	h.mu.Lock()
	for _, q := range h.asked {
		if n, _ := strconv.Atoi(q.Get("limit")); n > 50 {
			t.Errorf("asked for %d attempts at once", n)
		}
	}
	h.mu.Unlock()

	// The next page of deliveries.
	_, doc = b.get(t, "/events/evt_many")
	next := testid(doc, "deliveries-next").AttrOr("href", "")
	if next != "/events/evt_many?after=sub_049" || testid(doc, "deliveries-first").Length() != 0 {
		t.Fatalf("more deliveries links to %q", next)
	}
	_, doc = b.get(t, next)
	if n := testid(doc, "delivery").Length(); n != 10 || doc.Find(`[data-testid="delivery"]`).First().AttrOr("data-subscription", "") != "sub_050" {
		t.Errorf("the second page of deliveries has %d, from %q", n, doc.Find(`[data-testid="delivery"]`).First().AttrOr("data-subscription", ""))
	}
	if testid(doc, "deliveries-first").AttrOr("href", "") != "/events/evt_many" || testid(doc, "deliveries-next").Length() != 0 {
		t.Error("the last page of deliveries links to the first, and nowhere else")
	}

	// A position the API refuses is said so, as a 422 like the events
	// list's; the newest attempts, or the first deliveries, are a link away.
	resp, doc = b.get(t, "/events/evt_many?delivery=orders&attempts_after=forged")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(testid(doc, "page-error").Text(), "not valid") {
		t.Errorf("a forged attempts position: %d %q", resp.StatusCode, testid(doc, "page-error").Text())
	}
	if orders(doc).Find(`[data-testid="attempts-newest"]`).Length() != 1 {
		t.Error("no way back to the newest attempts after a forged position")
	}
	resp, doc = b.get(t, "/events/evt_many?after=forged!")
	if want := "This page's position is not valid (is not a cursor from this API); start from the first deliveries."; resp.StatusCode != http.StatusUnprocessableEntity || testid(doc, "page-error").Text() != want {
		t.Errorf("a forged deliveries position: %d %q", resp.StatusCode, testid(doc, "page-error").Text())
	}
	if testid(doc, "deliveries-first").AttrOr("href", "") != "/events/evt_many" {
		t.Error("no way back to the first deliveries after a forged position")
	}
}
