package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/egress"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// tokenServer issues numbered tokens with the client credentials grant
// and counts the fetches; its receiver accepts only tokens it issued and
// has not revoked.
type tokenServer struct {
	fetches atomic.Int64
	status  atomic.Int64 // the token endpoint's answer; 0 is 200
	mu      sync.Mutex
	valid   map[string]bool
	seen    []string // tokens the receiver was sent, in order
	token   *httptest.Server
	recv    *httptest.Server
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{valid: map[string]bool{}}
	ts.token = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// RFC 6749 2.3.1: both form-encoded, then Basic.
		id, secret, _ := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if r.PostFormValue("grant_type") != "client_credentials" || id != "dispatch" || secret != "cs/secret+1" ||
			r.PostFormValue("scope") != "hooks:write hooks:read" || r.PostFormValue("audience") != "https://api.example" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		if s := ts.status.Load(); s != 0 {
			http.Error(w, `{"error":"server_error","echo":"cs/secret+1"}`, int(s))
			return
		}
		n := ts.fetches.Add(1)
		tok := fmt.Sprintf("tok-%d", n)
		ts.mu.Lock()
		ts.valid[tok] = true
		ts.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 5})
	}))
	t.Cleanup(ts.token.Close)
	ts.recv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		ts.mu.Lock()
		ts.seen = append(ts.seen, tok)
		ok := ts.valid[tok]
		ts.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(ts.recv.Close)
	return ts
}

func (ts *tokenServer) revokeAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.valid = map[string]bool{}
}

func (ts *tokenServer) job() store.Job {
	j := job(ts.recv.URL, signing.GenerateSecret())
	j.OAuth2 = &domain.OAuth2{TokenURL: ts.token.URL + "/oauth/token", ClientID: "dispatch", ClientSecret: "cs/secret+1",
		Scopes: []string{"hooks:write", "hooks:read"}, Audience: "https://api.example"}
	return j
}

// TestOAuth2TokensAreSharedAndRefreshed pins the token cache: concurrent
// deliveries share one fetch, a token is fetched again only when due for
// refresh (a tenth of its lifetime ahead), and a token the destination
// refuses is refreshed once within the attempt, which then succeeds.
func TestOAuth2TokensAreSharedAndRefreshed(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t)
	clk := clock.NewFake(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s := testSenderOn(clk)

	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 100 {
		wg.Go(func() {
			if a := s.Send(context.Background(), ts.job(), 5*time.Second, Turn{}).Attempt; !a.Succeeded() {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	require.Zero(t, failed.Load())
	require.EqualValues(t, 1, ts.fetches.Load(), "one fetch for 100 concurrent deliveries")

	clk.Advance(4400 * time.Millisecond) // before 4.5 s: still fresh
	require.True(t, s.Send(context.Background(), ts.job(), 5*time.Second, Turn{}).Attempt.Succeeded())
	require.EqualValues(t, 1, ts.fetches.Load())
	clk.Advance(200 * time.Millisecond)
	require.True(t, s.Send(context.Background(), ts.job(), 5*time.Second, Turn{}).Attempt.Succeeded())
	require.EqualValues(t, 2, ts.fetches.Load(), "fetched again once due")

	ts.revokeAll()
	a := s.Send(context.Background(), ts.job(), 5*time.Second, Turn{}).Attempt
	require.True(t, a.Succeeded(), "%+v", a)
	require.EqualValues(t, 3, ts.fetches.Load(), "one refresh after the 401")
	require.Contains(t, a.RequestHeaders, "\nAuthorization: "+domain.MaskedValue, "the attempt names the token, masked")
	require.NotContains(t, a.RequestHeaders, "Bearer")
	ts.mu.Lock()
	last := ts.seen[len(ts.seen)-2:]
	ts.mu.Unlock()
	require.Equal(t, []string{"tok-2", "tok-3"}, last, "the refused token, then the fresh one, in one attempt")
}

// TestOAuth2Failures pins the auth class: a token endpoint that fails, or
// that the address policy refuses (never contacted), fails the attempt as
// auth without the secret in its error; a destination that refuses a
// fresh token too is a 401 after one refresh.
func TestOAuth2Failures(t *testing.T) {
	t.Parallel()
	ts := newTokenServer(t)

	ts.status.Store(http.StatusInternalServerError)
	a := testSender().Send(context.Background(), ts.job(), 5*time.Second, Turn{}).Attempt
	require.Equal(t, domain.ErrorAuth, a.ErrorClass, "%+v", a)
	require.Contains(t, a.Error, "HTTP 500")
	require.NotContains(t, a.Error, "cs/secret+1")
	ts.status.Store(0)

	strict := NewSender(SenderConfig{Version: "test", Policy: egress.Policy{}})
	a = strict.Send(context.Background(), ts.job(), 5*time.Second, Turn{}).Attempt
	require.Equal(t, domain.ErrorAuth, a.ErrorClass, "%+v", a)
	require.Contains(t, a.Error, "not allowed")
	require.Zero(t, ts.fetches.Load(), "a refused token endpoint is never contacted")

	never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) }))
	t.Cleanup(never.Close)
	j := ts.job()
	j.URL = never.URL
	a = testSender().Send(context.Background(), j, 5*time.Second, Turn{}).Attempt
	require.Equal(t, domain.ErrorHTTPStatus, a.ErrorClass, "%+v", a)
	require.Equal(t, 401, *a.StatusCode)
	require.EqualValues(t, 2, ts.fetches.Load(), "one fetch, one refresh, no more")
}
