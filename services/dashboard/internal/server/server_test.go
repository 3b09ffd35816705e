package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/dashboard/internal/session"
)

// fakeAPI answers as the ingest-api would for the few routes a test needs.
type fakeAPI struct {
	mu   sync.Mutex
	keys map[string][]string // key → scopes
	// bound maps a key bound to a tenant to its tenant.
	bound map[string]string
	posts []string // "METHOD path body" of every change
	gets  []string // the path and query of every GET
	// answer, if set, answers a change instead of the default 2xx.
	answer func(w http.ResponseWriter, r *http.Request) bool
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	scopes, ok := f.keys[key]
	own := f.bound[key]
	f.mu.Unlock()
	problem := func(status int, detail string, errs ...map[string]string) { writeProblem(w, status, detail, errs...) }
	if !ok {
		problem(http.StatusUnauthorized, "unknown key")
		return
	}
	reply := func(status int, v any) { writeJSON(w, status, v) }
	if r.Method == http.MethodGet {
		f.mu.Lock()
		f.gets = append(f.gets, r.URL.RequestURI())
		f.mu.Unlock()
		if f.serveTenants(w, r, own) || serveCatalog(w, r) {
			return
		}
	}
	if r.Method != http.MethodGet {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.posts = append(f.posts, r.Method+" "+r.URL.Path+" "+string(bytes.TrimSpace(body)))
		answer := f.answer
		f.mu.Unlock()
		if answer != nil && answer(w, r) {
			return
		}
	}
	sub := map[string]any{"id": "orders", "tenant_id": "default", "url": "https://example.com/hook", "event_types": []string{"order.*"}, "state": "active",
		"circuit_state": "closed", "created_at": time.Now(), "updated_at": time.Now(), "headers": map[string]string{"X-Api-Key": "********"},
		"tls": map[string]any{"client_certificate": "-----BEGIN CERTIFICATE-----", "client_key": "********", "client_certificate_expires_at": time.Now().Add(10 * 24 * time.Hour)}}
	switch {
	case r.URL.Path == "/me" && own != "":
		reply(200, map[string]any{"id": "key_1", "scopes": scopes, "tenant_id": own})
	case r.URL.Path == "/me":
		reply(200, map[string]any{"id": "key_1", "scopes": scopes})
	case strings.HasPrefix(r.URL.Path, "/stats") && own != "":
		problem(403, "this API key is bound to tenant '"+own+"' and may not use this operation")
	case r.URL.Path == "/stats":
		reply(200, map[string]any{"window": r.URL.Query().Get("window"), "from": time.Now(), "to": time.Now(), "events_received": 4,
			"deliveries_delivered": 3, "deliveries_retrying": 0, "deliveries_failed": 1, "backlog_due": 0, "backlog_oldest_due_seconds": 0})
	case r.URL.Path == "/stats/minutes":
		var minutes []any
		start := time.Now().Truncate(time.Minute).Add(-59 * time.Minute)
		for i := range 60 {
			delivered, failed := 0, 0
			if i == 58 {
				delivered, failed = 3, 1
			}
			minutes = append(minutes, map[string]any{"minute": start.Add(time.Duration(i) * time.Minute), "events_received": delivered + failed,
				"deliveries_delivered": delivered, "deliveries_retrying": 0, "deliveries_failed": failed})
		}
		reply(200, map[string]any{"data": minutes})
	case r.URL.Path == "/events" && r.URL.Query().Get("after") == "forged":
		problem(422, "validation failed", map[string]string{"location": "query.after", "message": "is not a cursor from this API"})
	case r.URL.Path == "/events" && r.URL.Query().Get("type") == "bad pattern":
		problem(422, "validation failed", map[string]string{"location": "query.type", "message": "must be a type or a pattern"})
	case r.URL.Path == "/events":
		reply(200, map[string]any{"data": []any{}})
	case r.URL.Path == "/subscriptions" && r.Method == http.MethodGet:
		reply(200, map[string]any{"data": []any{sub}})
	case r.URL.Path == "/subscriptions" && r.Method == http.MethodPost:
		reply(201, map[string]any{"id": "new", "url": "https://example.com", "event_types": []string{"*"}, "state": "active",
			"secret": "whsec_shownonce", "created_at": time.Now(), "updated_at": time.Now()})
	case r.URL.Path == "/subscriptions/orders" && r.Method == http.MethodGet:
		reply(200, sub)
	case r.URL.Path == "/subscriptions/orders" && r.Method == http.MethodPatch:
		if !contains(scopes, "write") && !contains(scopes, "admin") {
			problem(403, "this operation needs the write scope")
			return
		}
		reply(200, sub)
	case r.URL.Path == "/subscriptions/orders/secret/rotate" && r.Method == http.MethodPost:
		reply(200, map[string]any{"secret": "whsec_rotated", "previous_secret_expires_at": time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)})
	case r.URL.Path == "/subscriptions/new" && r.Method == http.MethodGet:
		created := maps.Clone(sub)
		created["id"] = "new"
		reply(200, created)
	case r.URL.Path == "/subscriptions/new/deliveries":
		reply(200, map[string]any{"data": []any{}})
	case r.URL.Path == "/subscriptions/orders/deliveries" && r.URL.Query().Get("after") == "forged":
		problem(422, "validation failed", map[string]string{"location": "query.after", "message": "is not a cursor from this API"})
	case r.URL.Path == "/subscriptions/orders/deliveries":
		reply(200, map[string]any{"data": []any{}})
	default:
		problem(404, "not found")
	}
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeProblem answers a problem+json as the API writes them.
func writeProblem(w http.ResponseWriter, status int, detail string, errs ...map[string]string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "detail": detail, "errors": errs, "request_id": "req-1"})
}

// asked returns the path and query of every GET the API got whose path
// is path.
func (f *fakeAPI) asked(path string) []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []url.Values
	for _, g := range f.gets {
		p, q, _ := strings.Cut(g, "?")
		if p == path {
			v, _ := url.ParseQuery(q)
			out = append(out, v)
		}
	}
	return out
}

// forgetAsked forgets the GETs asked so far.
func (f *fakeAPI) forgetAsked() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = nil
}

func (f *fakeAPI) setAnswer(a func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = a
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// bundle is a dashboard in front of a fake API, and a browser-like client
// with a cookie jar that does not follow redirects.
type bundle struct {
	api    *fakeAPI
	url    string
	client *http.Client
	// cfg is the dashboard's configuration; another instance shares its
	// session key and Redis prefix.
	cfg Config
	// redisPrefix is the test's Redis key prefix.
	redisPrefix string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	api := &fakeAPI{keys: map[string][]string{"dsp_admin": {"admin"}, "dsp_reader": {"read"}, "dsp_publisher": {"publish"}, "dsp_acme": {"read", "write"}},
		bound: map[string]string{"dsp_acme": "acme"}}
	return setupWith(t, api, api)
}

// setupWith is setup with h answering for api, and sessions recorded under
// a Redis prefix of the test's own.
func setupWith(t *testing.T, api *fakeAPI, h http.Handler) *bundle {
	t.Helper()
	rdb, prefix := testkit.Redis(t)
	return start(t, api, Config{APIURL: newAPIServer(t, h), SessionTTL: time.Hour, Revocations: session.NewRevocations(rdb, prefix, nil)}, prefix)
}

// newAPIServer serves h as the API until the test ends and returns its URL.
func newAPIServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// start serves a dashboard with cfg, its sealer made from the tests'
// session key, and returns a bundle with a fresh browser for it.
func start(t *testing.T, api *fakeAPI, cfg Config, redisPrefix string) *bundle {
	t.Helper()
	sealer, err := session.NewSealer(bytes.Repeat([]byte{1}, session.KeySize), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sealer = sealer
	dash := httptest.NewServer(New(cfg).Handler())
	t.Cleanup(dash.Close)
	return &bundle{api: api, url: dash.URL, client: browserClient(), cfg: cfg, redisPrefix: redisPrefix}
}

// browserClient keeps cookies and does not follow redirects.
func browserClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// postRedirected posts a form that must answer 303 (post, redirect, get)
// and follows the redirect as a browser would.
func (b *bundle) postRedirected(t *testing.T, path string, form url.Values) (*http.Response, *goquery.Document) {
	t.Helper()
	resp, doc := b.post(t, path, form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST %s answered %d, want 303 to a page:\n%s", path, resp.StatusCode, doc.Text())
	}
	return b.get(t, resp.Header.Get("Location"))
}

// get fetches a page and parses it.
func (b *bundle) get(t *testing.T, path string) (*http.Response, *goquery.Document) {
	t.Helper()
	resp, err := b.client.Get(b.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, doc
}

func (b *bundle) post(t *testing.T, path string, form url.Values) (*http.Response, *goquery.Document) {
	t.Helper()
	resp, err := b.client.PostForm(b.url+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, doc
}

func csrf(doc *goquery.Document) string {
	return doc.Find("input[name=csrf]").First().AttrOr("value", "")
}

func (b *bundle) signIn(t *testing.T, key string) *goquery.Document {
	t.Helper()
	_, login := b.get(t, "/login")
	resp, doc := b.post(t, "/login", url.Values{"key": {key}, "csrf": {csrf(login)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, doc.Text())
	}
	_, home := b.get(t, "/")
	return home
}

func testid(doc *goquery.Document, id string) *goquery.Selection {
	return doc.Find(`[data-testid="` + id + `"]`)
}

func TestSignedOutGoesToLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/", "/events", "/subscriptions/orders"} {
		resp, _ := b.get(t, path)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
			t.Errorf("%s: %d to %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestSignInSessionCookie(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, login := b.get(t, "/login")
	resp, _ := b.post(t, "/login", url.Values{"key": {"dsp_admin"}, "csrf": {csrf(login)}})
	var c *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == sessionCookie {
			c = k
		}
	}
	if c == nil {
		t.Fatal("no session cookie")
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Expires.IsZero() {
		t.Errorf("cookie attributes: %+v", c)
	}
	if strings.Contains(c.Value, "dsp_admin") {
		t.Error("the key is in the cookie in clear")
	}
	_, home := b.get(t, "/")
	if testid(home, "stats").Length() != 1 || testid(home, "key-id").Find("code").Text() != "key_1" {
		t.Fatalf("overview after sign-in: %s", home.Text())
	}
}

func TestSignInRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for key, want := range map[string]string{
		"dsp_unknown":   "does not accept this key",
		"dsp_publisher": "lacks the read scope",
		"":              "Enter an API key",
	} {
		_, login := b.get(t, "/login")
		resp, doc := b.post(t, "/login", url.Values{"key": {key}, "csrf": {csrf(login)}})
		if resp.StatusCode < 400 || !strings.Contains(testid(doc, "error-key").Text(), want) {
			t.Errorf("key %q: %d %q", key, resp.StatusCode, testid(doc, "error-key").Text())
		}
	}
	// Without the sign-in form's token nothing is checked.
	resp, _ := b.post(t, "/login", url.Values{"key": {"dsp_admin"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without a token: %d", resp.StatusCode)
	}
}

func TestPostWithoutCSRFRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	for _, form := range []url.Values{{}, {"csrf": {"forged"}}} {
		resp, doc := b.post(t, "/subscriptions/orders/pause", form)
		if resp.StatusCode != http.StatusForbidden || testid(doc, "error-message").Length() != 1 {
			t.Errorf("pause with %v: %d", form, resp.StatusCode)
		}
	}
	if len(b.api.posts) != 0 {
		t.Fatalf("the API was called: %v", b.api.posts)
	}
	_, page := b.get(t, "/subscriptions/orders")
	resp, _ := b.post(t, "/subscriptions/orders/pause", url.Values{"csrf": {csrf(page)}})
	if resp.StatusCode != http.StatusSeeOther || len(b.api.posts) != 1 || !strings.Contains(b.api.posts[0], `"state":"paused"`) {
		t.Fatalf("pause with the token: %d %v", resp.StatusCode, b.api.posts)
	}
}

func TestReadOnlyForgedActionShowsTheAPIRefusal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	home := b.signIn(t, "dsp_reader")
	if testid(home, "read-only").Length() != 1 {
		t.Error("no read-only marker")
	}
	_, page := b.get(t, "/subscriptions/orders")
	if testid(page, "actions").Length() != 0 {
		t.Error("a read-only key sees actions")
	}
	resp, doc := b.post(t, "/subscriptions/orders/pause", url.Values{"csrf": {csrf(page)}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(testid(doc, "page-error").Text(), "needs the write scope") {
		t.Fatalf("forged pause: %d %q", resp.StatusCode, testid(doc, "page-error").Text())
	}
}

func TestAPIErrorsNextToTheirField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	resp, doc := b.get(t, "/events?type=bad+pattern")
	if resp.StatusCode != http.StatusUnprocessableEntity || testid(doc, "error-type").Text() != "must be a type or a pattern" {
		t.Errorf("events: %d %q", resp.StatusCode, testid(doc, "error-type").Text())
	}
	resp, doc = b.get(t, "/events?since=yesterday")
	if resp.StatusCode != http.StatusUnprocessableEntity || testid(doc, "error-since").Length() != 1 {
		t.Errorf("since: %d", resp.StatusCode)
	}
	b.api.setAnswer(func(w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, `{"status":422,"detail":"validation failed","errors":[{"location":"body.url","message":"points at a private address"}]}`)
		return true
	})
	_, page := b.get(t, "/subscriptions")
	resp, doc = b.post(t, "/subscriptions", url.Values{"csrf": {csrf(page)}, "url": {"http://10.0.0.1/"}, "event_types": {"order.*"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || testid(doc, "error-url").Text() != "points at a private address" {
		t.Errorf("create: %d %q", resp.StatusCode, testid(doc, "error-url").Text())
	}
	if doc.Find("input#url").AttrOr("value", "") != "http://10.0.0.1/" {
		t.Error("the typed URL was lost")
	}
}

func TestServerErrorIsExplainedNotShown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	b.api.setAnswer(func(w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"status":500,"detail":"panic: runtime error: index out of range\ngoroutine 1","request_id":"req-9"}`)
		return true
	})
	_, page := b.get(t, "/subscriptions/orders")
	resp, doc := b.post(t, "/subscriptions/orders/rotate", url.Values{"csrf": {csrf(page)}})
	msg := testid(doc, "page-error").Text()
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(doc.Text(), "goroutine") || !strings.Contains(msg, "req-9") {
		t.Fatalf("%d %q", resp.StatusCode, msg)
	}
}

func TestCreateShowsSecretOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	_, page := b.get(t, "/subscriptions")
	resp, doc := b.postRedirected(t, "/subscriptions", url.Values{"csrf": {csrf(page)}, "url": {"https://example.com"}, "event_types": {"order.*, invoice.*"}})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != "/subscriptions/new?done=created" || testid(doc, "secret").Text() != "whsec_shownonce" {
		t.Fatalf("%d %s %q", resp.StatusCode, resp.Request.URL, testid(doc, "secret").Text())
	}
	if !strings.Contains(b.api.posts[0], `"event_types":["order.*","invoice.*"]`) {
		t.Errorf("posted %s", b.api.posts[0])
	}
	// A reload shows the page again, without the secret, and creates nothing.
	_, again := b.get(t, "/subscriptions/new?done=created")
	if testid(again, "secret").Length() != 0 {
		t.Error("the secret shows again")
	}
	if len(b.api.posts) != 1 {
		t.Errorf("the API got %v", b.api.posts)
	}
}

// TestRotateAsksFirstAndShowsTheSecretOnce: the rotate button asks for
// confirmation; the rotation redirects to the page, which shows the new
// secret once, so a reload neither rotates again nor shows it again.
func TestRotateAsksFirstAndShowsTheSecretOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	_, page := b.get(t, "/subscriptions/orders")
	link := testid(page, "rotate")
	if goquery.NodeName(link) != "a" || link.AttrOr("href", "") != "/subscriptions/orders?confirm=rotate" {
		t.Fatalf("the rotate button is %s %v: want a link to the confirmation", goquery.NodeName(link), link.Nodes)
	}
	_, confirm := b.get(t, "/subscriptions/orders?confirm=rotate")
	f := testid(confirm, "confirm-rotate-button").Closest("form")
	if f.AttrOr("action", "") != "/subscriptions/orders/rotate" || f.AttrOr("method", "") != "post" {
		t.Fatalf("no confirmation form: %s", testid(confirm, "confirm-rotate").Text())
	}
	if len(b.api.posts) != 0 {
		t.Fatalf("asking rotated already: %v", b.api.posts)
	}
	resp, doc := b.postRedirected(t, "/subscriptions/orders/rotate", url.Values{"csrf": {csrf(confirm)}})
	if resp.Request.URL.RequestURI() != "/subscriptions/orders?done=rotated" || testid(doc, "secret").Text() != "whsec_rotated" ||
		testid(doc, "previous-expires").Length() != 1 || testid(doc, "notice").Text() != "Secret rotated." {
		t.Fatalf("after rotating: %s %q %q", resp.Request.URL, testid(doc, "secret").Text(), testid(doc, "notice").Text())
	}
	_, again := b.get(t, "/subscriptions/orders?done=rotated")
	if testid(again, "secret").Length() != 0 || len(b.api.posts) != 1 {
		t.Errorf("a reload shows the secret again or rotates again: %v", b.api.posts)
	}
}

func TestSignOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	home := b.signIn(t, "dsp_admin")
	resp, _ := b.post(t, "/logout", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without a token: %d", resp.StatusCode)
	}
	resp, _ = b.post(t, "/logout", url.Values{"csrf": {csrf(home)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?signed_out=1" {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	resp, _ = b.get(t, "/")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("still signed in: %d", resp.StatusCode)
	}
}

func TestRevokedKeyEndsTheSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	b.api.mu.Lock()
	delete(b.api.keys, "dsp_admin")
	b.api.mu.Unlock()
	resp, _ := b.get(t, "/events")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?expired=1" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestEventIDBoxJumps(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	resp, _ := b.get(t, "/events?id=+evt%2F1+")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/events/evt%2F1" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestFieldOf(t *testing.T) {
	t.Parallel()
	for loc, want := range map[string]string{"body.url": "url", "body.event_types[1]": "event_types", "query.type": "type", "body.data.items[2].name": "data", "body": ""} {
		if got := fieldOf(loc); got != want {
			t.Errorf("%s: %q, want %q", loc, got, want)
		}
	}
}

func TestOverviewChartsTheLastHour(t *testing.T) {
	t.Parallel()
	b := setup(t)
	home := b.signIn(t, "dsp_admin")
	if n := testid(home, "chart-minute").Length(); n != 60 {
		t.Fatalf("%d minutes charted", n)
	}
	if n := testid(home, "chart-bar").Length(); n != 2 {
		t.Errorf("%d bars, want delivered and failed in one minute", n)
	}
	if got := testid(home, "legend-failed").Find(`[data-testid="legend-total"]`).Text(); got != "1" {
		t.Errorf("failed total %q", got)
	}
}

// Without the minutes the overview still answers, and says why.
func TestOverviewWithoutMinutesStillAnswers(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{keys: map[string][]string{"dsp_admin": {"admin"}}}
	old := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stats/minutes" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"status":404,"detail":"no such route"}`)
			return
		}
		api.ServeHTTP(w, r)
	})
	b := setupWith(t, api, old)
	home := b.signIn(t, "dsp_admin")
	if testid(home, "stats").Length() != 1 || testid(home, "deliveries-chart").Length() != 0 || !strings.Contains(testid(home, "chart-error").Text(), "no such route") {
		t.Fatalf("overview without minutes: chart error %q", testid(home, "chart-error").Text())
	}
}

func TestEditSendsOnlyChangedFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	_, page := b.get(t, "/subscriptions/orders")
	form := testid(page, "edit-subscription")
	if form.Length() != 1 || testid(page, "edit").AttrOr("open", "none") != "none" {
		t.Fatal("no folded edit form")
	}
	values := url.Values{}
	form.Find("input, textarea").Each(func(_ int, s *goquery.Selection) {
		name := s.AttrOr("name", "")
		if goquery.NodeName(s) == "textarea" {
			values.Set(name, s.Text())
		} else {
			values.Set(name, s.AttrOr("value", ""))
		}
	})
	if values.Get("url") != "https://example.com/hook" || values.Get("event_types") != "order.*" || values.Get("was_url") != values.Get("url") {
		t.Fatalf("form values %v", values)
	}
	// Nothing changed: nothing sent.
	resp, _ := b.post(t, "/subscriptions/orders/edit", values)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/subscriptions/orders?done=unchanged" || len(b.api.posts) != 0 {
		t.Fatalf("unchanged: %d %q %v", resp.StatusCode, resp.Header.Get("Location"), b.api.posts)
	}
	// The rate limit and the event types (one per line) changed: only they are sent.
	values.Set("rate_limit_per_second", "25")
	values.Set("event_types", "order.*\r\ninvoice.paid")
	resp, _ = b.post(t, "/subscriptions/orders/edit", values)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/subscriptions/orders?done=updated" {
		t.Fatalf("edit: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if want := `PATCH /subscriptions/orders {"event_types":["order.*","invoice.paid"],"rate_limit_per_second":25}`; len(b.api.posts) != 1 || b.api.posts[0] != want {
		t.Fatalf("sent %v, want %s", b.api.posts, want)
	}
	_, done := b.get(t, "/subscriptions/orders?done=updated")
	if testid(done, "notice").Text() != "Subscription updated." {
		t.Errorf("notice %q", testid(done, "notice").Text())
	}
}

func TestEditShowsAPIErrorsNextToTheField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	_, page := b.get(t, "/subscriptions/orders")
	b.api.setAnswer(func(w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, `{"status":422,"detail":"validation failed","errors":[{"location":"body.url","message":"points at a private address"},{"location":"body.timeout_ms","message":"must be at least 100"}]}`)
		return true
	})
	form := url.Values{"csrf": {csrf(page)}, "was_url": {"https://example.com/hook"}, "url": {"http://10.0.0.1/"},
		"was_event_types": {"order.*"}, "event_types": {"order.*"}, "timeout_ms": {"5"}}
	resp, doc := b.post(t, "/subscriptions/orders/edit", form)
	if resp.StatusCode != http.StatusUnprocessableEntity || testid(doc, "error-url").Text() != "points at a private address" {
		t.Fatalf("%d url error %q", resp.StatusCode, testid(doc, "error-url").Text())
	}
	if testid(doc, "error-timeout_ms").Text() != "must be at least 100" {
		t.Errorf("timeout error %q", testid(doc, "error-timeout_ms").Text())
	}
	if testid(doc, "edit").AttrOr("open", "none") == "none" || doc.Find("input#url").AttrOr("value", "") != "http://10.0.0.1/" ||
		doc.Find("input#url").AttrOr("aria-invalid", "") != "true" {
		t.Error("the form is folded, lost the typed URL, or does not mark it")
	}
	if !strings.Contains(b.api.posts[0], `"url":"http://10.0.0.1/"`) || !strings.Contains(b.api.posts[0], `"timeout_ms":5`) || strings.Contains(b.api.posts[0], "event_types") {
		t.Errorf("sent %s", b.api.posts[0])
	}
}

func TestEditRefusesWhatTheAPICannotDo(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	_, page := b.get(t, "/subscriptions/orders")
	form := url.Values{"csrf": {csrf(page)}, "was_url": {"https://example.com/hook"}, "url": {"https://example.com/hook"},
		"was_event_types": {"order.*"}, "event_types": {" , "}, "was_max_attempts": {"5"}, "max_attempts": {""}, "max_concurrency": {"many"}}
	resp, doc := b.post(t, "/subscriptions/orders/edit", form)
	if resp.StatusCode != http.StatusUnprocessableEntity || len(b.api.posts) != 0 {
		t.Fatalf("%d, sent %v", resp.StatusCode, b.api.posts)
	}
	for field, want := range map[string]string{"event_types": "at least one", "max_attempts": "default", "max_concurrency": "whole number"} {
		if got := testid(doc, "error-"+field).Text(); !strings.Contains(got, want) {
			t.Errorf("%s: %q", field, got)
		}
	}
	// Without the token nothing is sent.
	form.Del("csrf")
	if resp, _ := b.post(t, "/subscriptions/orders/edit", form); resp.StatusCode != http.StatusForbidden || len(b.api.posts) != 0 {
		t.Errorf("edit without a token: %d", resp.StatusCode)
	}
}

func TestLiveRefreshWithAndWithoutScript(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	_, doc := b.get(t, "/?refresh=10")
	live := testid(doc, "live")
	if live.AttrOr("hx-get", "") != "/?refresh=10" || live.AttrOr("hx-trigger", "") != "every 10s" || live.AttrOr("hx-select", "") != "#live" {
		t.Fatalf("live part: %v", live.Nodes)
	}
	if live.Find(`[data-testid="stats"]`).Length() != 1 || live.Find(`[data-testid="deliveries-chart"]`).Length() != 1 {
		t.Error("stats or chart outside the live part")
	}
	if doc.Find(`script[src="/static/htmx.min.js"]`).Length() != 1 || !strings.Contains(doc.Find("head noscript").Text(), `http-equiv="refresh"`) {
		t.Error("no htmx, or no meta refresh for browsers without script")
	}
	_, plain := b.get(t, "/")
	if testid(plain, "live").Length() != 0 || plain.Find(`script[src="/static/htmx.min.js"]`).Length() != 0 {
		t.Error("the overview refreshes without being asked")
	}
	// htmx follows redirects silently, so a request it makes after the
	// session ended is told where to go instead.
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, b.url+"/?refresh=10", nil)
	req.Header.Set("HX-Request", "true")
	resp, err := anon.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("HX-Redirect") != "/login" {
		t.Errorf("htmx request without a session: %d HX-Redirect %q", resp.StatusCode, resp.Header.Get("HX-Redirect"))
	}
	resp, _ = b.get(t, "/static/htmx.min.js")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("htmx not served: %d", resp.StatusCode)
	}
}

// TestRedeliverQueuesOnePagePerClick: the API queues a bounded number of
// deliveries per request, and "redeliver failed since" asks it once per
// click. While the API has more, the page after says how many were queued
// and offers a plain form (no script) that sends the cursor back for the
// next page; a page that fails keeps the form, so the count and the place
// are not lost; the last page redirects with the total.
func TestRedeliverQueuesOnePagePerClick(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_admin")
	var fail atomic.Bool
	b.api.setAnswer(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/subscriptions/orders/redeliver" {
			return false
		}
		b.api.mu.Lock()
		n := len(b.api.posts)
		b.api.mu.Unlock()
		if fail.Load() {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":503,"detail":"database temporarily unavailable"}`))
			return true
		}
		answer := map[string]any{"queued": 1000, "next_cursor": fmt.Sprintf("c%d", n)}
		if n == 5 {
			answer = map[string]any{"queued": 7}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(answer)
		return true
	})
	afters := func() []string {
		b.api.mu.Lock()
		defer b.api.mu.Unlock()
		var out []string
		for _, p := range b.api.posts {
			var body struct{ After string }
			if i := strings.Index(p, "{"); i >= 0 {
				_ = json.Unmarshal([]byte(p[i:]), &body)
			}
			out = append(out, body.After)
		}
		return out
	}
	// continueForm is what the browser would post from the page's Continue button.
	continueForm := func(t *testing.T, page *goquery.Document) url.Values {
		t.Helper()
		f := testid(page, "redeliver-continue-button").Closest("form")
		if f.AttrOr("method", "") != "post" || f.AttrOr("action", "") != "/subscriptions/orders/redeliver" {
			t.Fatalf("no form to continue with: %s", page.Text())
		}
		form := url.Values{}
		f.Find("input").Each(func(_ int, in *goquery.Selection) { form.Set(in.AttrOr("name", ""), in.AttrOr("value", "")) })
		return form
	}
	_, page := b.get(t, "/subscriptions/orders")

	resp, page := b.postRedirected(t, "/subscriptions/orders/redeliver", url.Values{"csrf": {csrf(page)}, "since": {"2026-01-02T15:04"}})
	if resp.StatusCode != http.StatusOK || testid(page, "notice").Text() != "1000 deliveries queued for redelivery." || testid(page, "redeliver-queued").Text() != "1000" {
		t.Fatalf("first click: %d %q %q", resp.StatusCode, testid(page, "notice").Text(), testid(page, "redeliver-continue").Text())
	}
	if got := afters(); !slices.Equal(got, []string{""}) {
		t.Fatalf("one click sent %v: want one request", got)
	}
	form := continueForm(t, page)
	if form.Get("after") != "c1" || form.Get("since") != "2026-01-02T15:04" || form.Get("csrf") != csrf(page) {
		t.Fatalf("the continue form carries %v", form)
	}

	resp, page = b.postRedirected(t, "/subscriptions/orders/redeliver", form)
	if resp.StatusCode != http.StatusOK || testid(page, "redeliver-queued").Text() != "2000" {
		t.Fatalf("second click: %d %q", resp.StatusCode, testid(page, "redeliver-continue").Text())
	}
	form = continueForm(t, page)

	// A page that fails: said so, and the same place offered again.
	fail.Store(true)
	resp, page = b.post(t, "/subscriptions/orders/redeliver", form)
	if resp.StatusCode != http.StatusServiceUnavailable || testid(page, "page-error").Length() != 1 {
		t.Fatalf("a failed page: %d %q", resp.StatusCode, testid(page, "page-error").Text())
	}
	if again := continueForm(t, page); again.Get("after") != "c2" || again.Get("queued") != "2000" {
		t.Fatalf("after a failure the form carries %v", again)
	}
	fail.Store(false)

	resp, page = b.postRedirected(t, "/subscriptions/orders/redeliver", continueForm(t, page))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("third click: %d", resp.StatusCode)
	}
	// A reload of the page that offers to continue queues nothing.
	before := len(afters())
	if resp, again := b.get(t, resp.Request.URL.RequestURI()); resp.StatusCode != http.StatusOK || testid(again, "redeliver-queued").Text() != "3000" || len(afters()) != before {
		t.Fatalf("a reload: %d %q, %d requests", resp.StatusCode, testid(again, "redeliver-queued").Text(), len(afters())-before)
	}
	resp, _ = b.post(t, "/subscriptions/orders/redeliver", continueForm(t, page))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/subscriptions/orders?done=redeliver&n=3007" {
		t.Fatalf("the last page: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if want := []string{"", "c1", "c2", "c2", "c4"}; !slices.Equal(afters(), want) {
		t.Fatalf("sent the cursors %v, want %v", afters(), want)
	}
}

// TestRefusedPositionIsA422: a page whose position (after) the API refuses,
// or whose filter is not valid, answers 422 and says what is wrong on the
// page, the subscription's deliveries as the events list.
func TestRefusedPositionIsA422(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t, "dsp_reader")
	for _, tt := range []struct {
		path, testid, want string
	}{
		{"/events?after=forged", "page-error", "This page's position is not valid (is not a cursor from this API); start from the newest events."},
		{"/subscriptions/orders?after=forged", "page-error", "This page's position is not valid (is not a cursor from this API); start from the newest deliveries."},
		{"/subscriptions/orders?status=lost", "error-status", "choose one of pending, processing, delivered, retrying, failed"},
	} {
		resp, doc := b.get(t, tt.path)
		if got := testid(doc, tt.testid).Text(); resp.StatusCode != http.StatusUnprocessableEntity || got != tt.want {
			t.Errorf("%s: %d %q, want 422 %q", tt.path, resp.StatusCode, got, tt.want)
		}
	}
}

// TestHTTPSBySetting: with the dashboard configured as reached over HTTPS
// (DASHBOARD_PUBLIC_URL), every cookie it sets, the dashboard's and the
// portal's, is Secure and every answer carries HSTS, though the request
// came over plain HTTP without a proxy's header; without the setting only
// X-Forwarded-Proto makes cookies Secure, and HSTS is never sent over
// plain HTTP.
func TestHTTPSBySetting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		https      bool
		forwarded  string
		wantSecure bool
		wantHSTS   bool
	}{
		{"setting", true, "", true, true},
		{"setting and proxy header", true, "https", true, true},
		{"proxy header alone", false, "https", true, false},
		{"neither", false, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := &fakeAPI{keys: map[string][]string{"dsp_admin": {"admin"}}}
			rdb, prefix := testkit.Redis(t)
			b := start(t, api, Config{APIURL: newAPIServer(t, api), SessionTTL: time.Hour, Revocations: session.NewRevocations(rdb, prefix, nil), HTTPS: tt.https}, prefix)
			do := func(method, path string, form url.Values) *http.Response {
				t.Helper()
				req, err := http.NewRequest(method, b.url+path, strings.NewReader(form.Encode()))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tt.forwarded != "" {
					req.Header.Set("X-Forwarded-Proto", tt.forwarded)
				}
				resp, err := b.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				doc, err := goquery.NewDocumentFromReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				form.Set("csrf", csrf(doc))
				return resp
			}
			form := url.Values{}
			answers := map[string]*http.Response{
				"login page":   do(http.MethodGet, "/login", form),
				"sign-in":      do(http.MethodPost, "/login", url.Values{"key": {"dsp_admin"}, "csrf": {form.Get("csrf")}}),
				"portal ended": do(http.MethodGet, "/portal/events", url.Values{}),
			}
			for what, resp := range answers {
				if got := resp.Header.Get("Strict-Transport-Security"); (got == hsts) != tt.wantHSTS {
					t.Errorf("%s: Strict-Transport-Security %q, want sent %v", what, got, tt.wantHSTS)
				}
				if len(resp.Cookies()) == 0 {
					t.Errorf("%s: no cookie set", what)
				}
				for _, c := range resp.Cookies() {
					if c.Secure != tt.wantSecure {
						t.Errorf("%s: cookie %s Secure=%v, want %v", what, c.Name, c.Secure, tt.wantSecure)
					}
				}
			}
			if resp := answers["sign-in"]; resp.StatusCode != http.StatusSeeOther {
				t.Errorf("sign-in answered %d", resp.StatusCode)
			}
		})
	}
}
