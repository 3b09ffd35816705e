package api

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// KeyStore is the part of the data layer authentication uses.
type KeyStore interface {
	LookupAPIKey(ctx context.Context, hash apikey.Hash) (domain.APIKey, error)
	TouchAPIKeys(ctx context.Context, ids []string, at time.Time) error
}

// Authentication's caches: a key's answer (valid or not) is reused this
// long, so a request costs no database round trip, and a key revoked on
// another instance stops working within this time.
const (
	keyCacheTTL = 500 * time.Millisecond
	// maxCachedKeys bounds each of the caches, of keys found and of hashes
	// found unknown, so a flood of made-up keys can neither grow memory
	// nor push real keys out (they are cached apart).
	maxCachedKeys = 10_000
	// touchEvery is how often last_used_at is brought up to date.
	touchEvery = time.Minute
)

// Each client (an IPv4 address, or an IPv6 /64) may fail authentication
// failureBurst times at once and failuresPerSecond times a second after
// that; beyond it the API answers 429 without asking the database, so a
// flood of made-up keys costs the database at most that many lookups per
// client and instance (ADR 36). maxFailingClients bounds the buckets kept.
const (
	failureBurst      = 20
	failuresPerSecond = 5
	maxFailingClients = 10_000
)

// adminKeyID names the key given by ADMIN_API_KEY in logs.
const adminKeyID = "ADMIN_API_KEY"

var (
	errNoKey      = errors.New("send an API key as 'Authorization: Bearer <key>'")
	errUnknownKey = errors.New("the API key is unknown, expired or revoked")
)

// tooManyFailures refuses a client that has used its failure budget; it
// may try again after retryAfter.
type tooManyFailures struct {
	retryAfter time.Duration
}

func (e *tooManyFailures) Error() string {
	return "too many requests from this address failed authentication; retry after " + strconv.Itoa(retryAfterSeconds(e.retryAfter)) + " s"
}

// retryAfterSeconds is d in whole seconds for Retry-After, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// principal is who made a request.
type principal struct {
	keyID  string
	scopes []domain.Scope
	// tenant is the tenant the key is bound to, or "" for every tenant.
	tenant string
	// portal marks a portal session's key, which may do what the customer
	// portal does and nothing more (portalOperations).
	portal bool
}

// scopeOf is the data a request may reach: its key's tenant, or every
// tenant. Handlers pass it to every store call that reads or changes a
// tenant's data.
func scopeOf(ctx context.Context) store.Scope {
	p, ok := ctx.Value(principalKey{}).(principal)
	switch {
	case !ok:
		// Only the authentication middleware says who is asking; a
		// request it did not see reaches nothing.
		return store.NoTenant
	case p.tenant == "":
		return store.Unscoped
	}
	return store.TenantScope(p.tenant)
}

type cachedKey struct {
	key   domain.APIKey
	valid bool
	until time.Time
}

// authenticator checks bearer keys against the stored hashes, through
// short caches, and refuses clients that fail too often.
type authenticator struct {
	store KeyStore
	admin *apikey.Hash
	clock clock.Clock

	mu sync.Mutex
	// keys holds the keys found, by hash; an entry past its time is read
	// again, and meanwhile marks the hash as a real key's, which no
	// failure budget holds back.
	keys *boundedMap[apikey.Hash, cachedKey]
	// unknown holds until when a hash counts as unknown without a lookup.
	unknown *boundedMap[apikey.Hash, time.Time]
	// budgets are the clients' failure budgets.
	budgets   *boundedMap[netip.Addr, budget]
	flights   map[apikey.Hash]*flight
	used      map[string]struct{}
	lastTouch time.Time
}

// budget is a token bucket of failed authentications: tokens as of at.
type budget struct {
	tokens float64
	at     time.Time
}

// flight is one lookup of a key's hash in progress. Requests that need the
// same hash meanwhile wait for it instead of reading the key themselves:
// when an entry expires under load, or when many clients start at once,
// one round trip answers them all instead of one each, and the pool does
// not open a connection per waiting request.
type flight struct {
	done   chan struct{}
	c      cachedKey
	err    error
	joined int // requests waiting for it besides the one that started it; tests wait on it
}

// lookupTimeout bounds a shared lookup, which runs apart from the request
// that started it so that one client's disconnect does not fail the others.
const lookupTimeout = 5 * time.Second

func newAuthenticator(st KeyStore, adminKey string, clk clock.Clock) *authenticator {
	a := &authenticator{store: st, clock: clk, flights: map[apikey.Hash]*flight{}, used: map[string]struct{}{},
		keys:    newBoundedMap[apikey.Hash, cachedKey](maxCachedKeys / 2),
		unknown: newBoundedMap[apikey.Hash, time.Time](maxCachedKeys / 2),
		budgets: newBoundedMap[netip.Addr, budget](maxFailingClients / 2)}
	if adminKey != "" {
		h := apikey.HashOf(adminKey)
		a.admin = &h
	}
	a.lastTouch = a.clock.Now()
	return a
}

// authenticate returns the principal of a request with the Authorization
// header from the client at remoteAddr; errNoKey or errUnknownKey; a
// *tooManyFailures when the client has failed too often; or
// domain.ErrUnavailable when the keys cannot be read. Whatever the key,
// it costs constant time, and a database lookup only for a well-formed
// key's hash neither cache knows, from a client with failures to spare. A
// well-formed key that is not valid spends one of the client's failures.
func (a *authenticator) authenticate(ctx context.Context, header, remoteAddr string) (principal, error) {
	now := a.clock.Now()
	client := clientOf(remoteAddr)
	scheme, key, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return principal{}, errNoKey
	}
	key = strings.TrimSpace(key)
	hash := apikey.HashOf(key)
	if a.admin != nil && apikey.Equal(hash, *a.admin) {
		return principal{keyID: adminKeyID, scopes: []domain.Scope{domain.ScopeAdmin}}, nil
	}
	a.mu.Lock()
	c, known := a.keys.get(hash)
	var unknownUntil time.Time
	if !known {
		unknownUntil, _ = a.unknown.get(hash)
	}
	a.mu.Unlock()
	switch {
	case known && now.Before(c.until):
	case !known && !apikey.WellFormed(key):
		// No key has this form: nothing to look up, and nothing a client
		// could guess, so no failure is spent.
		return principal{}, errUnknownKey
	case !known && now.Before(unknownUntil):
		return principal{}, a.fail(client, now, errUnknownKey)
	default:
		// A hash never seen valid is looked up at the cost of one of the
		// client's failures, given back if it is a key: a client out of
		// failures is refused before the database is asked.
		var charged bool
		var err error
		if c, charged, err = a.lookup(ctx, hash, now, client, !known); err != nil {
			return principal{}, err
		}
		switch {
		case charged && c.valid:
			a.mu.Lock()
			a.refund(client, now)
			a.mu.Unlock()
		case charged:
			return principal{}, errUnknownKey
		case !c.valid:
			return principal{}, a.fail(client, now, errUnknownKey)
		}
	}
	if c.key.ExpiresAt != nil && !now.Before(*c.key.ExpiresAt) {
		return principal{}, a.fail(client, now, errUnknownKey)
	}
	a.noteUse(ctx, c.key.ID, now)
	return principal{keyID: c.key.ID, scopes: c.key.Scopes, tenant: c.key.TenantID, portal: c.key.Portal}, nil
}

// clientOf is whom a failure budget belongs to: the address of remoteAddr
// ("host:port"), an IPv6 one cut to its /64, which one subscriber usually
// has whole.
func clientOf(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.Addr()
	}
	return addr
}

// clientKey carries a public operation's client address ("host:port").
type clientKey struct{}

// charge spends one of the failures of the client that made ctx's request,
// for a credential check that costs a lookup: a *tooManyFailures when none
// is left. refund gives it back once the credential proved good.
func (a *authenticator) charge(ctx context.Context) (refund func(), err error) {
	remoteAddr, _ := ctx.Value(clientKey{}).(string)
	client, now := clientOf(remoteAddr), a.clock.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if wait := a.spend(client, now); wait > 0 {
		return nil, &tooManyFailures{retryAfter: wait}
	}
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.refund(client, a.clock.Now())
	}, nil
}

// fail spends one of client's failures and returns err, or a
// *tooManyFailures when none was left.
func (a *authenticator) fail(client netip.Addr, now time.Time, err error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if wait := a.spend(client, now); wait > 0 {
		return &tooManyFailures{retryAfter: wait}
	}
	return err
}

// spend takes one failure from client's budget and returns 0, or, when the
// budget is empty, how long until it holds one again. Called with mu
// held.
func (a *authenticator) spend(client netip.Addr, now time.Time) time.Duration {
	b := a.refilled(client, now)
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / failuresPerSecond * float64(time.Second))
	}
	b.tokens--
	a.budgets.put(client, b)
	return 0
}

// refund gives client back the failure a lookup of a real key cost.
// Called with mu held.
func (a *authenticator) refund(client netip.Addr, now time.Time) {
	b := a.refilled(client, now)
	b.tokens = min(failureBurst, b.tokens+1)
	a.budgets.put(client, b)
}

// refilled is client's budget as of now. Called with mu held.
func (a *authenticator) refilled(client netip.Addr, now time.Time) budget {
	b, ok := a.budgets.get(client)
	if !ok {
		return budget{tokens: failureBurst, at: now}
	}
	if now.After(b.at) {
		b.tokens = min(failureBurst, b.tokens+now.Sub(b.at).Seconds()*failuresPerSecond)
		b.at = now
	}
	return b
}

// lookup reads the key with hash, or waits for the lookup of it already in
// progress, and caches the answer. With charge, starting a lookup spends
// one of client's failures (charged), and without one left it is a
// *tooManyFailures; joining one in progress costs nothing.
func (a *authenticator) lookup(ctx context.Context, hash apikey.Hash, now time.Time, client netip.Addr, charge bool) (_ cachedKey, charged bool, _ error) {
	a.mu.Lock()
	f, inProgress := a.flights[hash]
	if inProgress {
		f.joined++
	} else {
		if charge {
			if wait := a.spend(client, now); wait > 0 {
				a.mu.Unlock()
				return cachedKey{}, false, &tooManyFailures{retryAfter: wait}
			}
			charged = true
		}
		f = &flight{done: make(chan struct{})}
		a.flights[hash] = f
		go a.fly(context.WithoutCancel(ctx), hash, f, now)
	}
	a.mu.Unlock()
	select {
	case <-f.done:
		return f.c, charged, f.err
	case <-ctx.Done():
		return cachedKey{}, charged, ctx.Err()
	}
}

// fly performs f, the lookup of hash, and lands it: its answer is cached
// (a key that is not found is an answer too) and given to every waiter.
func (a *authenticator) fly(ctx context.Context, hash apikey.Hash, f *flight, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	k, err := a.store.LookupAPIKey(ctx, hash)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		f.c = cachedKey{until: now.Add(keyCacheTTL)}
	case err != nil:
		f.err = err
	case k.Portal:
		// A portal session's key is read again on every request, so that
		// revoking a tenant's portal sessions ends them at their next
		// request on every instance (ADR 32).
		f.c = cachedKey{key: k, valid: true}
	default:
		f.c = cachedKey{key: k, valid: true, until: now.Add(keyCacheTTL)}
	}
	if f.err == nil {
		a.remember(hash, f.c)
	}
	a.mu.Lock()
	delete(a.flights, hash)
	a.mu.Unlock()
	close(f.done)
}

// remember caches c, the answer for hash: a key found, or until when the
// hash counts as unknown.
func (a *authenticator) remember(hash apikey.Hash, c cachedKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.valid {
		a.unknown.delete(hash)
		a.keys.put(hash, c)
		return
	}
	a.keys.delete(hash)
	a.unknown.put(hash, c.until)
}

// forgetHash drops what this instance cached about a key's hash: a key
// created just now may have been tried (and found unknown) before.
func (a *authenticator) forgetHash(hash apikey.Hash) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys.delete(hash)
	a.unknown.delete(hash)
}

// forget drops a revoked key from this instance's cache at once; other
// instances drop it when their entry expires.
func (a *authenticator) forget(id string) {
	a.forgetWhere(func(k domain.APIKey) bool { return k.ID == id })
}

// forgetTenant drops the keys of a deleted tenant from this instance's
// cache at once; other instances drop them when their entries expire.
func (a *authenticator) forgetTenant(tenant string) {
	a.forgetWhere(func(k domain.APIKey) bool { return k.TenantID == tenant })
}

func (a *authenticator) forgetWhere(match func(domain.APIKey) bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys.deleteWhere(func(c cachedKey) bool { return match(c.key) })
}

// noteUse records a key's use; last_used_at is written for all keys used
// at most once per touchEvery, off the request's path.
func (a *authenticator) noteUse(ctx context.Context, id string, now time.Time) {
	a.mu.Lock()
	a.used[id] = struct{}{}
	if now.Sub(a.lastTouch) < touchEvery {
		a.mu.Unlock()
		return
	}
	ids := make([]string, 0, len(a.used))
	for id := range a.used {
		ids = append(ids, id)
	}
	a.used, a.lastTouch = map[string]struct{}{}, now
	a.mu.Unlock()
	// The update outlives the request that made it due.
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = a.store.TouchAPIKeys(ctx, ids, now) // a missed update is made good a minute later
	}()
}

// requiredScope says what an operation needs: key management needs admin,
// portal links portal, posting events publish, every other GET read, every
// other change write; describing the key in use needs only a valid key
// ("").
func requiredScope(op *huma.Operation) domain.Scope {
	switch {
	case op.Path == "/me":
		return ""
	case strings.HasPrefix(op.Path, portalLinkPaths):
		return domain.ScopePortal
	case strings.HasPrefix(op.Path, "/api-keys"):
		return domain.ScopeAdmin
	case op.Method == http.MethodGet || op.Method == http.MethodHead:
		return domain.ScopeRead
	case op.Method == http.MethodPost && (op.Path == "/events" || op.Path == "/events/batch"):
		return domain.ScopePublish
	default:
		return domain.ScopeWrite
	}
}

// operatorOnlyKey, in an operation's Metadata, keeps it from keys bound to
// a tenant: managing tenants and keys is the operator's.
const operatorOnlyKey = "dispatch.operatorOnly"

// operatorOnly reports whether keys bound to a tenant are refused op: key
// management and the operations that carry operatorOnlyKey.
func operatorOnly(op *huma.Operation) bool {
	only, _ := op.Metadata[operatorOnlyKey].(bool)
	return only || strings.HasPrefix(op.Path, "/api-keys")
}

// portalOperations are the operations a portal session's key may call:
// those the customer portal makes (ADR 32), and no other. Whoever holds
// the key, the portal or a customer who took it from a link, gets the
// portal's capabilities and nothing more: no events posted, no operator
// settings, no tenants or keys. An operation added later is refused to
// portal keys until it is listed here.
var portalOperations = map[string]bool{
	"list-subscriptions":           true,
	"create-subscription":          true,
	"get-subscription":             true,
	"update-subscription":          true,
	"delete-subscription":          true,
	"list-subscription-deliveries": true,
	"reveal-subscription-secret":   true,
	"reveal-subscription-headers":  true,
	"rotate-subscription-secret":   true,
	"send-test-event":              true,
	"redeliver-subscription":       true,
	"list-events":                  true,
	"get-event":                    true,
	"list-event-deliveries":        true,
	"list-event-attempts":          true,
	"redeliver-event":              true,
	// The catalog is global and public to receivers: the portal shows it
	// read-only. Changing it stays the operator's.
	"list-event-types":         true,
	"get-event-type":           true,
	"list-event-type-versions": true,
	"get-event-types-openapi":  true,
}

type principalKey struct{}

// who is the request's principal; the zero principal, which may do
// nothing, when the authentication middleware did not see the request.
func who(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// portalFieldsRefused answers 422 naming each of fields that a portal
// session's key sent: settings that are the operator's (or the server's)
// to choose (the id of a subscription, chosen by the server so that a
// customer can neither probe other tenants' ids nor take them, and the
// delivery settings, which bound what the shared workers spend on it).
// A field was sent when its value is true. Any other key may send them.
func portalFieldsRefused(ctx context.Context, fields map[string]bool) error {
	if !who(ctx).portal {
		return nil
	}
	var details []error
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if fields[name] {
			msg := "delivery limits and retries are the operator's to set, not a portal session's"
			if name == "id" {
				msg = "the server chooses a subscription's id for a portal session"
			}
			details = append(details, &huma.ErrorDetail{Location: "body." + name, Message: msg})
		}
	}
	if len(details) == 0 {
		return nil
	}
	return huma.Error422UnprocessableEntity("a customer portal session's key may not set these fields", details...)
}

// mayRead reports whether the request's key may read what is stored. A key
// without read (write or publish alone) gets answers that carry only what
// it sent or what its own request made, never stored events or
// subscriptions (ADR 16).
func mayRead(ctx context.Context) bool {
	return domain.Grants(who(ctx).scopes, domain.ScopeRead)
}

// authMiddleware refuses every operation without a valid key (401), to a
// portal session's key every operation the portal does not make (403),
// and to any key one that needs a scope it lacks (403). Health, readiness, metrics, the docs and
// the OpenAPI documents are not operations and stay open, and so is an
// operation marked public (opening a portal link, whose token is the
// credential); such a request reaches no tenant's data (scopeOf).
func (s *Server) authMiddleware(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if public(ctx.Operation()) {
			// Its credential is in the body; the handler charges failures
			// to this client (authenticator.charge).
			next(huma.WithValue(ctx, clientKey{}, ctx.RemoteAddr()))
			return
		}
		p, err := s.auth.authenticate(ctx.Context(), ctx.Header("Authorization"), ctx.RemoteAddr())
		var throttled *tooManyFailures
		switch {
		case errors.As(err, &throttled):
			ctx.SetHeader("Retry-After", strconv.Itoa(retryAfterSeconds(throttled.retryAfter)))
			_ = huma.WriteErr(api, ctx, http.StatusTooManyRequests, err.Error())
			return
		case errors.Is(err, errNoKey), errors.Is(err, errUnknownKey):
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="dispatch"`)
			_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, err.Error())
			return
		case err != nil:
			s.log.WarnContext(ctx.Context(), "api keys cannot be read", "request_id", RequestID(ctx.Context()), "err", err)
			ctx.SetHeader("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
			_ = huma.WriteErr(api, ctx, http.StatusServiceUnavailable, "API keys cannot be checked right now; retry the request")
			return
		}
		if p.portal && !portalOperations[ctx.Operation().OperationID] {
			_ = huma.WriteErr(api, ctx, http.StatusForbidden, "this API key is a customer portal session's: it may do what the portal does and nothing else")
			return
		}
		if want := requiredScope(ctx.Operation()); want != "" && !domain.Grants(p.scopes, want) {
			_ = huma.WriteErr(api, ctx, http.StatusForbidden, "this API key lacks the '"+string(want)+"' scope")
			return
		}
		if p.tenant != "" && operatorOnly(ctx.Operation()) {
			_ = huma.WriteErr(api, ctx, http.StatusForbidden, "this API key is bound to tenant '"+p.tenant+"'; only a key bound to no tenant may do this")
			return
		}
		next(huma.WithValue(ctx, principalKey{}, p))
	}
}
