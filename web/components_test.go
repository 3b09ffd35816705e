package web

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
)

// render renders c and parses the result for queries by data-testid.
func render(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func testid(doc *goquery.Document, id string) *goquery.Selection {
	return doc.Find(`[data-testid="` + id + `"]`)
}

var now = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

func page(canWrite bool) Page {
	return Page{Title: "t", KeyID: "key_1", CanWrite: canWrite, CSRF: "tok", Now: now}
}

func TestStatusBadgeSaysTheWord(t *testing.T) {
	t.Parallel()
	for status, tone := range map[string]string{"delivered": "ok", "failed": "bad", "retrying": "warn", "pending": "info", "unmatched": "muted", "half_open": "warn"} {
		b := testid(render(t, StatusBadge(status)), "status")
		if got := strings.TrimSpace(b.Text()); got != Word(status) {
			t.Errorf("%s: text %q", status, got)
		}
		if !b.HasClass("tone-" + tone) {
			t.Errorf("%s: class %q, want tone-%s", status, b.AttrOr("class", ""), tone)
		}
	}
}

func TestRelTimeHasExactTimeOnHover(t *testing.T) {
	t.Parallel()
	el := testid(render(t, RelTime(now.Add(-3*time.Minute), now)), "time")
	if el.Text() != "3 min ago" || el.AttrOr("title", "") != "2026-03-04 11:57:00.000 UTC" || el.AttrOr("datetime", "") != "2026-03-04T11:57:00Z" {
		t.Fatalf("%q title %q datetime %q", el.Text(), el.AttrOr("title", ""), el.AttrOr("datetime", ""))
	}
}

func TestAgo(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		2 * time.Second: "just now", 42 * time.Second: "42 s ago", 5 * time.Minute: "5 min ago",
		5 * time.Hour: "5 h ago", 72 * time.Hour: "3 days ago", -3 * time.Minute: "in 3 min",
	} {
		if got := Ago(now.Add(-d), now); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

func TestEventPageShowsAttemptsAndActions(t *testing.T) {
	t.Parallel()
	code := "500"
	v := EventView{Page: page(true), Event: EventRow{ID: "evt_1", Type: "order.created", Status: "retrying", ReceivedAt: now.Add(-time.Minute)},
		Payload: "{\n  \"n\": 1\n}",
		Deliveries: []DeliveryView{{SubscriptionID: "orders", Status: "retrying", Attempts: 2, LastStatusCode: code, UpdatedAt: now,
			AttemptRows: []AttemptView{
				{Number: 1, StartedAt: now.Add(-time.Minute), StatusCode: "500", DurationMs: 12, ErrorClass: "http_status", Response: "boom"},
				{Number: 2, StartedAt: now, DurationMs: 5000, ErrorClass: "timeout", Error: "no answer within 5s"},
			}}}}
	doc := render(t, Event(v))
	if n := testid(doc, "attempt").Length(); n != 2 {
		t.Fatalf("%d attempts rendered", n)
	}
	first := testid(doc, "attempt").First()
	if got := first.Find(`[data-testid="attempt-result"]`).Text(); got != "500 failed" {
		t.Errorf("result %q", got)
	}
	if got := first.Find(`[data-testid="attempt-response"]`).Text(); got != "boom" {
		t.Errorf("response %q", got)
	}
	if got := testid(doc, "attempt").Last().Find(`[data-testid="attempt-error-class"]`).Text(); got != "timeout" {
		t.Errorf("error class %q", got)
	}
	if testid(doc, "redeliver-event").Length() != 1 || testid(doc, "redeliver-delivery").Length() != 1 {
		t.Error("redeliver buttons missing for a key that may write")
	}
	if got := testid(doc, "payload").Text(); !strings.Contains(got, `"n": 1`) {
		t.Errorf("payload %q", got)
	}
	// Every form carries the CSRF token.
	doc.Find("form[method=post]").Each(func(_ int, f *goquery.Selection) {
		if f.Find(`input[name=csrf][value="tok"]`).Length() != 1 {
			t.Errorf("form to %s has no CSRF token", f.AttrOr("action", "?"))
		}
	})
	v.Deliveries[0].Attempts, v.Deliveries[0].AttemptRows = 1, v.Deliveries[0].AttemptRows[:1]
	if got := render(t, Event(v)).Find("h3 .hint, .delivery .hint").First().Text(); !strings.HasPrefix(got, "1 attempt, updated") {
		t.Errorf("one attempt reads %q", got)
	}
}

func TestEventPageLinksToMoreAttemptsAndDeliveries(t *testing.T) {
	t.Parallel()
	v := EventView{Page: page(false), Event: EventRow{ID: "evt_1", Status: "retrying"},
		NextDeliveries: "/events/evt_1?after=b", FirstDeliveries: "/events/evt_1",
		Deliveries: []DeliveryView{
			{SubscriptionID: "a", Status: "retrying", Attempts: 30, AttemptRows: []AttemptView{{Number: 30}, {Number: 29}},
				MoreAttempts: "/events/evt_1?delivery=a#delivery-a"},
			{SubscriptionID: "b", Status: "retrying", Attempts: 90, AttemptRows: []AttemptView{{Number: 40}},
				NewestAttempts: "/events/evt_1?delivery=b#delivery-b", OlderAttempts: "/events/evt_1?attempts_after=x&delivery=b#delivery-b"},
			{SubscriptionID: "c", Status: "retrying", Attempts: 5, NewestAttempts: "/events/evt_1?delivery=c#delivery-c"},
			{SubscriptionID: "d", Status: "pending"},
		}}
	doc := render(t, Event(v))
	section := func(sub string) *goquery.Selection {
		return doc.Find(`[data-testid="delivery"][data-subscription="` + sub + `"]`)
	}
	links := func(sub string) map[string]string {
		got := map[string]string{}
		section(sub).Find(`[data-testid="attempts-pager"] a`).Each(func(_ int, a *goquery.Selection) {
			got[a.AttrOr("data-testid", "")] = a.AttrOr("href", "")
		})
		return got
	}
	for sub, want := range map[string]map[string]string{
		"a": {"attempts-more": "/events/evt_1?delivery=a#delivery-a"},
		"b": {"attempts-newest": "/events/evt_1?delivery=b#delivery-b", "attempts-older": "/events/evt_1?attempts_after=x&delivery=b#delivery-b"},
		"c": {"attempts-newest": "/events/evt_1?delivery=c#delivery-c"},
		"d": {},
	} {
		if got := links(sub); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s links %v, want %v", sub, got, want)
		}
		if got := section(sub).AttrOr("id", ""); got != "delivery-"+sub {
			t.Errorf("%s section id %q", sub, got)
		}
	}
	if section("c").Find(`[data-testid="empty"]`).Length() != 0 {
		t.Error("a page of attempts the API refused says there is no attempt yet")
	}
	if section("d").Find(`[data-testid="empty"]`).Length() != 1 {
		t.Error("a delivery without attempts does not say so")
	}
	if testid(doc, "deliveries-next").AttrOr("href", "") != "/events/evt_1?after=b" || testid(doc, "deliveries-first").AttrOr("href", "") != "/events/evt_1" {
		t.Error("the deliveries pager is missing")
	}
	// A later page of deliveries is not an event that matched nothing.
	later := render(t, Event(EventView{Page: page(false), Event: EventRow{ID: "evt_1"}, FirstDeliveries: "/events/evt_1"}))
	if testid(later, "empty").Length() != 0 {
		t.Error("an empty later page says no subscription matched")
	}
}

func TestReadOnlyKeySeesNoActions(t *testing.T) {
	t.Parallel()
	ev := render(t, Event(EventView{Page: page(false), Event: EventRow{ID: "e", Status: "failed"},
		Deliveries: []DeliveryView{{SubscriptionID: "s", Status: "failed"}}}))
	sub := render(t, Subscription(SubscriptionView{Page: page(false), Subscription: SubscriptionRow{ID: "s", State: "active"}, Errors: Errors{}}))
	subs := render(t, Subscriptions(SubscriptionsView{Page: page(false), Form: SubscriptionForm{Errors: Errors{}}}))
	for name, doc := range map[string]*goquery.Document{"event": ev, "subscription": sub, "subscriptions": subs} {
		// The sign-out form is the only one that posts.
		if n := doc.Find("form[method=post]").Length(); n != 1 {
			t.Errorf("%s: %d forms post, want only sign-out", name, n)
		}
		if testid(doc, "read-only").Length() != 1 {
			t.Errorf("%s: no read-only marker", name)
		}
		if testid(doc, "sign-out").Length() != 1 {
			t.Errorf("%s: no sign-out button", name)
		}
	}
}

// TestSignOutEverywhereOnlyForAdmins: the button that ends every session
// shows for an admin key only, and posts the CSRF token.
func TestSignOutEverywhereOnlyForAdmins(t *testing.T) {
	t.Parallel()
	for _, admin := range []bool{false, true} {
		p := page(true)
		p.Admin = admin
		doc := render(t, ErrorPage(ErrorView{Page: p, Message: "m"}))
		button := testid(doc, "sign-out-everywhere")
		if got := button.Length() == 1; got != admin {
			t.Fatalf("admin %v: sign-out-everywhere shown %v", admin, got)
		}
		if admin && button.Closest(`form[action="/logout/everywhere"]`).Find(`input[name=csrf][value="tok"]`).Length() != 1 {
			t.Error("the sign-out-everywhere form does not post the CSRF token")
		}
	}
}

func TestFieldErrorsShowNextToTheirField(t *testing.T) {
	t.Parallel()
	v := SubscriptionsView{Page: page(true), Form: SubscriptionForm{URL: "http://10.0.0.1/", Errors: Errors{"url": "points at a private address"}}}
	doc := render(t, Subscriptions(v))
	e := testid(doc, "error-url")
	if e.Text() != "points at a private address" {
		t.Fatalf("url error %q", e.Text())
	}
	if e.Parent().Find("input#url").AttrOr("aria-invalid", "") != "true" {
		t.Error("the error is not beside the url input, or the input is not marked invalid")
	}
	if doc.Find("input#url").AttrOr("value", "") != "http://10.0.0.1/" {
		t.Error("the typed URL was lost")
	}
	ev := render(t, Events(EventsView{Page: page(true), Errors: Errors{"since": "use a time"}}))
	if testid(ev, "error-since").Parent().Find("input#since").Length() != 1 {
		t.Error("since error not beside its input")
	}
}

func TestEmptyStatesSayWhatToDo(t *testing.T) {
	t.Parallel()
	doc := render(t, Events(EventsView{Page: page(true), Errors: Errors{}}))
	if e := testid(doc, "empty"); e.Length() != 1 || e.Find("a").Length() == 0 {
		t.Fatalf("events empty state: %q", e.Text())
	}
	ov := render(t, Overview(OverviewView{Page: page(true), Windows: []StatsWindow{{Window: "1h"}}}))
	if testid(ov, "empty").Length() != 2 {
		t.Fatalf("overview empty states: %d", testid(ov, "empty").Length())
	}
}

func TestOverviewStats(t *testing.T) {
	t.Parallel()
	v := OverviewView{Page: page(true), Windows: []StatsWindow{{Window: "1h", Received: 7, Delivered: 6, Failed: 1}, {Window: "24h", Received: 70}},
		Backlog:   Backlog{Due: 3, Oldest: 95 * time.Second},
		Attention: []SubscriptionRow{{ID: "flaky", State: "active", Circuit: "open", CreatedAt: now}}}
	doc := render(t, Overview(v))
	row := testid(doc, "stats-1h")
	if row.Find(`[data-testid="received"]`).Text() != "7" || row.Find(`[data-testid="failed"]`).Text() != "1" {
		t.Fatalf("1h row %q", row.Text())
	}
	if testid(doc, "stats-24h").Find(`[data-testid="received"]`).Text() != "70" {
		t.Error("24h row")
	}
	if testid(doc, "backlog-oldest").Text() != "1 min 35 s" {
		t.Errorf("backlog oldest %q", testid(doc, "backlog-oldest").Text())
	}
	att := doc.Find(`[data-testid="subscription-row"][data-id="flaky"]`)
	if att.Find(`[data-testid="circuit"] [data-status="open"]`).Length() != 1 {
		t.Error("open circuit not shown")
	}
}

func TestSecretShownOnce(t *testing.T) {
	t.Parallel()
	exp := now.Add(24 * time.Hour)
	doc := render(t, Subscription(SubscriptionView{Page: page(true), Subscription: SubscriptionRow{ID: "s", State: "paused"}, Errors: Errors{},
		NewSecret: &CreatedSecret{SubscriptionID: "s", Secret: "whsec_abc", PreviousExpiresAt: &exp}}))
	if testid(doc, "secret").Text() != "whsec_abc" || testid(doc, "previous-expires").Length() != 1 {
		t.Fatal("rotated secret not shown")
	}
	if testid(doc, "resume").Length() != 1 || testid(doc, "pause").Length() != 0 {
		t.Error("a paused subscription offers resume, not pause")
	}
}

func TestConfirmDelete(t *testing.T) {
	t.Parallel()
	doc := render(t, Subscription(SubscriptionView{Page: page(true), Subscription: SubscriptionRow{ID: "s/x", State: "active"}, Errors: Errors{}, ConfirmDelete: true}))
	f := testid(doc, "confirm-delete-button").Closest("form")
	if f.AttrOr("action", "") != "/subscriptions/s%2Fx/delete" {
		t.Fatalf("delete form posts to %q", f.AttrOr("action", ""))
	}
}

// TestContinueRedelivery: a redelivery the API has more of offers a plain
// form (no script) that posts the API's cursor back with the time, the
// count so far and the page's token; without one, nothing is offered.
func TestContinueRedelivery(t *testing.T) {
	t.Parallel()
	c := &RedeliveryContinuation{Since: "2026-01-02T15:04", After: "cursor/1=", Queued: 2000}
	doc := render(t, Subscription(SubscriptionView{Page: page(true), Subscription: SubscriptionRow{ID: "s/x", State: "active"}, Errors: Errors{}, Redelivery: c}))
	f := testid(doc, "redeliver-continue-button").Closest("form")
	if f.AttrOr("method", "") != "post" || f.AttrOr("action", "") != "/subscriptions/s%2Fx/redeliver" {
		t.Fatalf("continue form: %s to %q", f.AttrOr("method", ""), f.AttrOr("action", ""))
	}
	for name, want := range map[string]string{"csrf": "tok", "since": "2026-01-02T15:04", "after": "cursor/1=", "queued": "2000"} {
		if got := f.Find(`input[type=hidden][name=`+name+`]`).AttrOr("value", ""); got != want {
			t.Errorf("the form's %s is %q, want %q", name, got, want)
		}
	}
	if testid(doc, "redeliver-queued").Text() != "2000" || testid(doc, "redeliver-stop").AttrOr("href", "") != "/subscriptions/s%2Fx" {
		t.Errorf("the count so far, or the way out: %q", testid(doc, "redeliver-continue").Text())
	}
	if testid(render(t, Subscription(SubscriptionView{Page: page(true), Subscription: SubscriptionRow{ID: "s", State: "active"}, Errors: Errors{}})), "redeliver-continue").Length() != 0 {
		t.Error("a page with no redelivery to continue offers one")
	}
}

func TestPager(t *testing.T) {
	t.Parallel()
	doc := render(t, Pager("/events?type=a", "/events?after=c&type=a"))
	if testid(doc, "pager-next").AttrOr("href", "") != "/events?after=c&type=a" || testid(doc, "pager-first").Length() != 1 {
		t.Fatal(doc.Text())
	}
	if testid(render(t, Pager("", "")), "pager").Length() != 0 {
		t.Error("an empty pager renders")
	}
}

func TestLoginForm(t *testing.T) {
	t.Parallel()
	doc := render(t, Login(LoginView{CSRF: "tok", Error: "The API does not accept this key"}))
	if doc.Find(`label[for=key]`).Text() != "API key" || testid(doc, "sign-in").Text() != "Sign in" {
		t.Fatal("label or button")
	}
	if testid(doc, "error-key").Text() != "The API does not accept this key" || doc.Find("input#key").AttrOr("aria-describedby", "") != "key-error" {
		t.Error("error not tied to the key field")
	}
	if doc.Find(`input[name=csrf][value=tok]`).Length() != 1 {
		t.Error("no CSRF token")
	}
}

func TestEditFormCarriesWhatThePageShowed(t *testing.T) {
	t.Parallel()
	e := SubscriptionEdit{Values: EditValues{URL: "http://10.0.0.1/", EventTypes: "order.*\ninvoice.*", RateLimitPerSecond: "25"},
		Was:    EditValues{URL: "https://example.com/", EventTypes: "order.*\ninvoice.*", RateLimitPerSecond: "10"},
		Errors: Errors{"url": "points at a private address"}, Open: true}
	doc := render(t, Subscription(SubscriptionView{Page: page(true), Subscription: SubscriptionRow{ID: "s", State: "active"}, Errors: Errors{}, Edit: e}))
	f := testid(doc, "edit-subscription")
	if f.AttrOr("action", "") != "/subscriptions/s/edit" || f.Find(`input[name=csrf][value=tok]`).Length() != 1 {
		t.Fatalf("edit form posts to %q without its token", f.AttrOr("action", ""))
	}
	if _, open := testid(doc, "edit").Attr("open"); !open {
		t.Error("a form with a problem starts folded")
	}
	if f.Find(`input[name=was_url]`).AttrOr("value", "") != "https://example.com/" || f.Find(`input[name=was_rate_limit_per_second]`).AttrOr("value", "") != "10" {
		t.Error("the values the page showed are not carried")
	}
	if f.Find("input#rate_limit_per_second").AttrOr("value", "") != "25" || f.Find("textarea#event_types").Text() != "order.*\ninvoice.*" {
		t.Error("typed values lost")
	}
	if testid(doc, "error-url").Parent().Find("input#url").AttrOr("aria-invalid", "") != "true" {
		t.Error("the URL's error is not beside it")
	}
}

func TestMillis(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ms   float64
		want string
	}{
		{0.312, "0.312 ms"},
		{0.005, "0.005 ms"},
		{0, "0 ms"},
		{4.56, "4.6 ms"},
		{12, "12 ms"},
		{5000.4, "5000 ms"},
	} {
		if got := Millis(tc.ms); got != tc.want {
			t.Errorf("Millis(%v) = %q, want %q", tc.ms, got, tc.want)
		}
	}
}

// TestEventFiltersInvalidShowOnlyTheFieldError: a filter the API refused
// matched nothing, so the page says what is wrong with it, not that no
// event matches; a valid filter that matches nothing says so, with a
// space before its way out.
func TestEventFiltersInvalidShowOnlyTheFieldError(t *testing.T) {
	t.Parallel()
	doc := render(t, Events(EventsView{Page: page(true), Filter: EventFilter{Since: "yesterday"}, Errors: Errors{"since": "enter a time such as 2026-01-02T15:04 (UTC)"}}))
	if testid(doc, "empty").Length() != 0 || testid(doc, "error-since").Text() != "enter a time such as 2026-01-02T15:04 (UTC)" {
		t.Errorf("an invalid filter shows %q and the field error %q", testid(doc, "empty").Text(), testid(doc, "error-since").Text())
	}
	doc = render(t, Events(EventsView{Page: page(true), Filter: EventFilter{Type: "order.*"}, Errors: Errors{}}))
	if got := strings.Join(strings.Fields(testid(doc, "empty").Text()), " "); got != "No event matches these filters. Clear the filters, or post an event to the API (POST /events)." {
		t.Errorf("empty state = %q", got)
	}
}

func TestPlural(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0 attempts"}, {1, "1 attempt"}, {2, "2 attempts"}, {1200, "1,200 attempts"}} {
		if got := Plural(tc.n, "attempt", "attempts"); got != tc.want {
			t.Errorf("Plural(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// TestAttentionSaysWhy: a subscription on the overview's attention list
// shows its newest failing delivery, not when it was created.
func TestAttentionSaysWhy(t *testing.T) {
	t.Parallel()
	v := OverviewView{Page: page(true), Windows: []StatsWindow{{Window: "1h"}},
		Attention: []SubscriptionRow{
			{ID: "flaky", State: "active", Circuit: "open", CreatedAt: now.Add(-48 * time.Hour),
				LastFailure: &FailureView{At: now.Add(-3 * time.Minute), EventID: "evt_9", Status: "retrying", StatusCode: "503", Error: "HTTP 503"}},
			{ID: "gone", State: "disabled", StateReason: "endpoint answered 410 Gone", CreatedAt: now.Add(-48 * time.Hour)},
		}}
	doc := render(t, Overview(v))
	why := doc.Find(`[data-testid="subscription-row"][data-id="flaky"] [data-testid="why"]`)
	var parts []string
	why.Find(`[data-testid="last-failure"] > div`).Each(func(_ int, d *goquery.Selection) { parts = append(parts, strings.Join(strings.Fields(d.Text()), " ")) })
	if got := strings.Join(parts, " / "); got != "last failure 3 min ago / retrying 503 HTTP 503 event" || why.Find(`a[href="/events/evt_9"]`).Length() != 1 {
		t.Errorf("why = %q", got)
	}
	if got := strings.TrimSpace(doc.Find(`[data-testid="subscription-row"][data-id="gone"] [data-testid="why"]`).Text()); got != "endpoint answered 410 Gone" {
		t.Errorf("why = %q", got)
	}
	if strings.Contains(strings.ToLower(doc.Find(`[data-testid="subscriptions"] thead`).Text()), "created") {
		t.Error("the attention table still shows when each was created")
	}
}

// TestHeldDeliveriesSayWhatTheyWaitFor: a delivery held behind an earlier
// event of its ordering key is marked so wherever deliveries are listed or
// shown, in the dashboard and in the portal, and no other is.
func TestHeldDeliveriesSayWhatTheyWaitFor(t *testing.T) {
	t.Parallel()
	due := now.Add(time.Minute)
	rows := []DeliveryRow{
		{EventID: "evt_held", Status: "pending", Held: true, CreatedAt: now},
		{EventID: "evt_due", Status: "pending", NextAttemptAt: &due, CreatedAt: now},
	}
	deliveries := []DeliveryView{
		{SubscriptionID: "held", Status: "pending", Held: true, UpdatedAt: now},
		{SubscriptionID: "due", Status: "retrying", NextAttemptAt: &due, UpdatedAt: now},
	}
	event := func(p Page) EventView {
		return EventView{Page: p, Event: EventRow{ID: "evt_1", Type: "order.created", Status: "pending", ReceivedAt: now}, Deliveries: deliveries}
	}
	for name, doc := range map[string]*goquery.Document{
		"subscription":    render(t, Subscription(SubscriptionView{Page: page(false), Subscription: SubscriptionRow{ID: "s", State: "active"}, Errors: Errors{}, Deliveries: rows})),
		"portal endpoint": render(t, PortalEndpoint(SubscriptionView{Page: portalPage(false), Subscription: SubscriptionRow{ID: "s", State: "active"}, Errors: Errors{}, Deliveries: rows})),
		"event":           render(t, Event(event(page(false)))),
		"portal event":    render(t, PortalEvent(event(portalPage(false)))),
	} {
		held := testid(doc, "held")
		if held.Length() != 1 {
			t.Errorf("%s: %d deliveries marked held, want 1", name, held.Length())
			continue
		}
		beside := held.Closest(`[data-testid="delivery-row"]`).AttrOr("data-id", "") +
			held.Closest(`[data-testid="delivery"]`).AttrOr("data-subscription", "")
		if beside != "evt_held" && beside != "held" {
			t.Errorf("%s: the mark is beside %q, not the held delivery", name, beside)
		}
		if !strings.Contains(held.Text(), "key") {
			t.Errorf("%s: the mark %q does not say what it waits for", name, held.Text())
		}
		if strings.Contains(held.Closest(`[data-testid="delivery"]`).Text(), "No attempt yet") {
			t.Errorf("%s: a held delivery is said to be about to be attempted", name)
		}
	}
}
