package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// OAuth2 token limits: a token endpoint's answer is read up to
// maxTokenResponse bytes; a token without expires_in is kept for
// defaultTokenLifetime; at most maxTokens are cached.
const (
	maxTokenResponse     = 64 << 10
	defaultTokenLifetime = time.Minute
	maxTokens            = 10000
	// maxRefreshMargin is the most a token is refreshed ahead of its
	// expiry; shorter-lived tokens are refreshed a tenth of their lifetime
	// ahead.
	maxRefreshMargin = 30 * time.Second
)

// tokens fetches OAuth2 access tokens with the client credentials grant
// and caches them per subscription and settings until shortly before they
// expire (ADR 40): every delivery of a worker shares one token, and one
// fetch at a time is in flight for it, the others waiting for its answer.
// Fetches go through client, the deliveries' shared client: the same
// address policy (or egress proxy), dial and response header limits, and
// no redirects.
type tokens struct {
	client *http.Client
	clock  clock.Clock
	group  singleflight.Group

	mu    sync.Mutex
	cache map[string]token
}

type token struct {
	value     string
	refreshAt time.Time
}

func newTokens(client *http.Client, clk clock.Clock) *tokens {
	return &tokens{client: client, clock: clk, cache: map[string]token{}}
}

// errAuth prefixes every token failure, which an attempt records as
// error class auth.
var errAuth = errors.New("OAuth2 token")

// key names a subscription's token: a change of any setting is a new
// token, and two subscriptions never share one.
func tokenKey(subID string, o *domain.OAuth2) string {
	h := sha256.New()
	for _, part := range append([]string{subID, o.TokenURL, o.ClientID, o.ClientSecret, o.Audience}, o.Scopes...) {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// get returns a token for the subscription's settings, fetched within
// timeout if none is cached that is not due for refresh.
func (t *tokens) get(ctx context.Context, subID string, o *domain.OAuth2, timeout time.Duration) (string, error) {
	key := tokenKey(subID, o)
	t.mu.Lock()
	tok, ok := t.cache[key]
	t.mu.Unlock()
	if ok && t.clock.Now().Before(tok.refreshAt) {
		return tok.value, nil
	}
	// The fetch outlives a waiter that gives up: the others still want it.
	ch := t.group.DoChan(key, func() (any, error) {
		// A fetch that ended between this caller's look at the cache and
		// its joining the group has left a fresh token: one fetch serves
		// every caller that found none.
		t.mu.Lock()
		tok, ok := t.cache[key]
		t.mu.Unlock()
		if ok && t.clock.Now().Before(tok.refreshAt) {
			return tok.value, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		tok, err := t.fetch(fctx, o)
		if err != nil {
			return "", err
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if len(t.cache) >= maxTokens {
			t.evict()
		}
		t.cache[key] = tok
		return tok.value, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	case <-ctx.Done():
		return "", fmt.Errorf("%w: %w", errAuth, ctx.Err())
	}
}

// refresh drops value from the cache, if it is still the subscription's
// token, and gets a new one: the destination refused value.
func (t *tokens) refresh(ctx context.Context, subID string, o *domain.OAuth2, value string, timeout time.Duration) (string, error) {
	key := tokenKey(subID, o)
	t.mu.Lock()
	if tok, ok := t.cache[key]; ok && tok.value == value {
		delete(t.cache, key)
	}
	t.mu.Unlock()
	return t.get(ctx, subID, o, timeout)
}

// evict makes room: tokens due for refresh first, else any one.
func (t *tokens) evict() {
	now := t.clock.Now()
	for k, tok := range t.cache {
		if !now.Before(tok.refreshAt) {
			delete(t.cache, k)
		}
	}
	for k := range t.cache {
		if len(t.cache) < maxTokens {
			return
		}
		delete(t.cache, k)
	}
}

// tokenAnswer is what a token endpoint answers (RFC 6749 5.1).
type tokenAnswer struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
}

// fetch asks the token endpoint for a token with the client credentials
// grant, the client authenticated with HTTP Basic (RFC 6749 2.3.1). Its
// errors never carry the secret or the endpoint's answer, which may echo
// it.
func (t *tokens) fetch(ctx context.Context, o *domain.OAuth2) (token, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(o.Scopes) > 0 {
		form.Set("scope", strings.Join(o.Scopes, " "))
	}
	if o.Audience != "" {
		form.Set("audience", o.Audience)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return token{}, fmt.Errorf("%w: token_url: %w", errAuth, err)
	}
	req.SetBasicAuth(url.QueryEscape(o.ClientID), url.QueryEscape(o.ClientSecret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	start := t.clock.Now()
	resp, err := t.client.Do(req)
	if err != nil {
		return token{}, fmt.Errorf("%w: the token endpoint could not be reached: %s", errAuth, errorText(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	switch {
	case err != nil:
		return token{}, fmt.Errorf("%w: reading the token endpoint's answer: %s", errAuth, errorText(err))
	case resp.StatusCode != http.StatusOK:
		return token{}, fmt.Errorf("%w: the token endpoint answered HTTP %d", errAuth, resp.StatusCode)
	case len(raw) > maxTokenResponse:
		return token{}, fmt.Errorf("%w: the token endpoint's answer is over %d bytes", errAuth, maxTokenResponse)
	}
	var a tokenAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return token{}, fmt.Errorf("%w: the token endpoint's answer is not a JSON token", errAuth)
	}
	if a.AccessToken == "" || validHeaderToken(a.AccessToken) != nil {
		return token{}, fmt.Errorf("%w: the token endpoint's answer has no usable access_token", errAuth)
	}
	if a.TokenType != "" && !strings.EqualFold(a.TokenType, "bearer") {
		return token{}, fmt.Errorf("%w: the token endpoint issued a %q token, not a bearer token", errAuth, a.TokenType)
	}
	lifetime := defaultTokenLifetime
	if len(a.ExpiresIn) > 0 && string(a.ExpiresIn) != "null" {
		// A number, or (some providers) a string of one.
		s := strings.Trim(string(a.ExpiresIn), `"`)
		secs, err := strconv.ParseFloat(s, 64)
		if err != nil || secs <= 0 {
			return token{}, fmt.Errorf("%w: the token endpoint's expires_in is not a positive number", errAuth)
		}
		lifetime = time.Duration(secs * float64(time.Second))
	}
	margin := min(maxRefreshMargin, lifetime/10)
	return token{value: a.AccessToken, refreshAt: start.Add(lifetime - margin)}, nil
}

// validHeaderToken refuses a token that cannot be sent in a header.
func validHeaderToken(v string) error {
	for i := range len(v) {
		if c := v[i]; c < 0x21 || c > 0x7e {
			return errors.New("not printable ASCII")
		}
	}
	return nil
}
