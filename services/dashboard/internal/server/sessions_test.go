package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/dashboard/internal/session"
)

// another starts a second dashboard instance beside b's: the same API and
// session key, its own connection to the same Redis keys.
func (b *bundle) another(t *testing.T) *bundle {
	t.Helper()
	opts, err := redis.ParseURL(testkit.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	cfg := b.cfg
	cfg.Revocations = session.NewRevocations(rdb, b.redisPrefix, nil)
	return start(t, b.api, cfg, b.redisPrefix)
}

// sessionCookieOf is the session cookie b's browser holds.
func (b *bundle) sessionCookieOf(t *testing.T) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(b.url)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// getWith fetches path from base sending only the cookie value, as a
// copy of the cookie in another client would, and returns the status and
// where it redirects.
func getWith(t *testing.T, base, path, cookie string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
	resp, err := browserClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// TestSignOutEndsCopiesOfTheSession: signing out on one instance refuses
// a copy of the cookie on it and on another instance sharing the Redis,
// from the next request on.
func TestSignOutEndsCopiesOfTheSession(t *testing.T) {
	t.Parallel()
	a := setup(t)
	b := a.another(t)
	home := a.signIn(t, "dsp_admin")
	copied := a.sessionCookieOf(t).Value
	for name, base := range map[string]string{"this instance": a.url, "another instance": b.url} {
		if status, _ := getWith(t, base, "/", copied); status != http.StatusOK {
			t.Fatalf("%s: the copied cookie before sign-out: %d", name, status)
		}
	}
	resp, _ := a.post(t, "/logout", url.Values{"csrf": {csrf(home)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?signed_out=1" {
		t.Fatalf("sign-out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for name, base := range map[string]string{"this instance": a.url, "another instance": b.url} {
		for _, path := range []string{"/", "/events", "/subscriptions/orders"} {
			if status, to := getWith(t, base, path, copied); status != http.StatusSeeOther || to != "/login?expired=1" {
				t.Errorf("%s %s: the copied cookie after sign-out: %d to %q", name, path, status, to)
			}
		}
	}
	// Nor does it act, with its own token.
	req, _ := http.NewRequest(http.MethodPost, b.url+"/subscriptions/orders/pause", strings.NewReader(url.Values{"csrf": {csrf(home)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: copied})
	r, err := browserClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther || len(a.api.posts) != 0 {
		t.Fatalf("a pause with the signed-out cookie: %d, sent %v", r.StatusCode, a.api.posts)
	}
	// Signing in again starts a new session, which works.
	a.signIn(t, "dsp_admin")
	if status, _ := getWith(t, b.url, "/", a.sessionCookieOf(t).Value); status != http.StatusOK {
		t.Fatalf("a new session after sign-out: %d", status)
	}
}

// TestSignOutEverywhere: an admin ends every session of every instance,
// its own too; a key without admin cannot, and neither can a form without
// the session's token.
func TestSignOutEverywhere(t *testing.T) {
	t.Parallel()
	a := setup(t)
	b := a.another(t)
	adminHome := a.signIn(t, "dsp_admin")
	if testid(adminHome, "sign-out-everywhere").Length() != 1 {
		t.Fatal("no sign-out-everywhere button for an admin key")
	}
	readerHome := b.signIn(t, "dsp_reader")
	if testid(readerHome, "sign-out-everywhere").Length() != 0 {
		t.Error("a read key sees the sign-out-everywhere button")
	}
	other := a.another(t)
	other.signIn(t, "dsp_admin")
	sessions := map[string]*bundle{"the admin's": a, "the reader's": b, "another admin's": other}
	cookies := map[string]string{}
	for name, s := range sessions {
		cookies[name] = s.sessionCookieOf(t).Value
	}

	// Refused: a key without admin (the API says so), and a form without
	// the token.
	resp, doc := b.post(t, "/logout/everywhere", url.Values{"csrf": {csrf(readerHome)}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(testid(doc, "error-message").Text(), "admin scope") {
		t.Fatalf("a reader's sign-out everywhere: %d %q", resp.StatusCode, testid(doc, "error-message").Text())
	}
	if resp, _ := a.post(t, "/logout/everywhere", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-out everywhere without a token: %d", resp.StatusCode)
	}
	for name, c := range cookies {
		if status, _ := getWith(t, a.url, "/", c); status != http.StatusOK {
			t.Fatalf("%s session after refused attempts: %d", name, status)
		}
	}

	resp, _ = a.post(t, "/logout/everywhere", url.Values{"csrf": {csrf(adminHome)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?signed_out_everywhere=1" {
		t.Fatalf("sign-out everywhere: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for name, c := range cookies {
		for _, base := range []string{a.url, b.url} {
			if status, to := getWith(t, base, "/", c); status != http.StatusSeeOther || to != "/login?expired=1" {
				t.Errorf("%s session after sign-out everywhere: %d to %q", name, status, to)
			}
		}
	}
	_, login := a.get(t, "/login?signed_out_everywhere=1")
	if !strings.Contains(testid(login, "notice").Text(), "Every session was ended") {
		t.Errorf("notice %q", testid(login, "notice").Text())
	}
	// A session begun afterwards works.
	b.signIn(t, "dsp_reader")
	if status, _ := getWith(t, a.url, "/", b.sessionCookieOf(t).Value); status != http.StatusOK {
		t.Fatalf("a new session after sign-out everywhere: %d", status)
	}
}

// TestCookieWithoutSessionIDRefused: a cookie sealed under the right key
// but without a session id or issue time (one sealed before sessions had
// them, or forged by someone holding the key) opens no session, since no
// sign-out could end it.
func TestCookieWithoutSessionIDRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	issued, err := b.cfg.Revocations.Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	good := session.Session{ID: session.Nonce(), Issued: issued, APIKey: "dsp_admin", KeyID: "key_1", Scopes: []string{"admin"}, Expires: time.Now().Add(time.Hour)}
	noID, noIssued := good, good
	noID.ID = ""
	noIssued.Issued = time.Time{}
	for name, want := range map[string]struct {
		s      session.Session
		status int
	}{"complete": {good, http.StatusOK}, "without an id": {noID, http.StatusSeeOther}, "without an issue time": {noIssued, http.StatusSeeOther}} {
		value, err := b.cfg.Sealer.Seal(want.s)
		if err != nil {
			t.Fatal(err)
		}
		if status, to := getWith(t, b.url, "/", value); status != want.status || (status == http.StatusSeeOther && to != "/login") {
			t.Errorf("%s: %d to %q, want %d", name, status, to, want.status)
		}
	}
}

// TestRedisDownFailsClosed: while Redis does not answer, no session is
// honoured, since it may have been signed out: pages and actions answer
// 503, signing out says it did not happen and keeps the cookie, signing in
// is refused. A Redis back without its data ends the sessions begun
// before, which it can no longer tell from signed-out ones.
func TestRedisDownFailsClosed(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{keys: map[string][]string{"dsp_admin": {"admin"}}}
	apiSrv := newAPIServer(t, api)
	srv := testkit.StartRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	b := start(t, api, Config{APIURL: apiSrv, SessionTTL: time.Hour, Revocations: session.NewRevocations(rdb, "dispatch", nil)}, "dispatch")
	home := b.signIn(t, "dsp_admin")
	cookie := b.sessionCookieOf(t).Value

	srv.Stop()
	for _, path := range []string{"/", "/events", "/subscriptions/orders"} {
		resp, doc := b.get(t, path)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(testid(doc, "error-message").Text(), "cannot tell whether this session is still valid") {
			t.Errorf("%s with Redis down: %d %q", path, resp.StatusCode, testid(doc, "error-message").Text())
		}
	}
	resp, _ := b.post(t, "/subscriptions/orders/pause", url.Values{"csrf": {csrf(home)}})
	if resp.StatusCode != http.StatusServiceUnavailable || len(api.posts) != 0 {
		t.Errorf("an action with Redis down: %d, sent %v", resp.StatusCode, api.posts)
	}
	resp, doc := b.post(t, "/logout", url.Values{"csrf": {csrf(home)}})
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(testid(doc, "error-message").Text(), "you are still signed in") {
		t.Errorf("sign-out with Redis down: %d %q", resp.StatusCode, testid(doc, "error-message").Text())
	}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			t.Errorf("sign-out with Redis down dropped the cookie: %+v", c)
		}
	}
	newcomer := &bundle{api: api, url: b.url, client: browserClient()}
	_, login := newcomer.get(t, "/login")
	resp, doc = newcomer.post(t, "/login", url.Values{"key": {"dsp_admin"}, "csrf": {csrf(login)}})
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(testid(doc, "error-key").Text(), "cannot sign you in") {
		t.Errorf("sign-in with Redis down: %d %q", resp.StatusCode, testid(doc, "error-key").Text())
	}
	if err := b.cfg.Revocations.Ping(context.Background()); err == nil {
		t.Error("readiness: Ping answers with Redis down")
	}

	srv.Start() // empty: it keeps nothing on disk
	testkit.AwaitRedis(t, rdb)
	if status, to := getWith(t, b.url, "/", cookie); status != http.StatusSeeOther || to != "/login?expired=1" {
		t.Fatalf("a session from before Redis lost its data: %d to %q", status, to)
	}
	b.signIn(t, "dsp_admin")
	if resp, _ := b.get(t, "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a new session once Redis is back: %d", resp.StatusCode)
	}
}
