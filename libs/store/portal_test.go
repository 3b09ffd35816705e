package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/seal"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// portalKey is the key a test opens a link with.
func portalKey() (domain.APIKey, apikey.Hash) {
	key, hash := apikey.New()
	return domain.APIKey{ID: apikey.NewID(), Name: "portal", Prefix: apikey.Display(key)}, hash
}

func TestPortalLinkOpensOnce(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	ctx := context.Background()
	_, _, err := st.PutTenant(ctx, domain.Tenant{ID: "acme", Name: "Acme Inc."})
	require.NoError(t, err)

	_, err = st.CreatePortalLink(ctx, domain.PortalLink{ID: apikey.NewPortalLinkID(), TenantID: "nope", ExpiresAt: time.Now().Add(time.Hour)}, apikey.HashOf("x"))
	require.ErrorIs(t, err, domain.ErrNotFound, "a link for an unknown tenant")

	token, hash := apikey.NewPortalToken()
	link, err := st.CreatePortalLink(ctx, domain.PortalLink{ID: apikey.NewPortalLinkID(), TenantID: "acme", ReadOnly: true,
		ReturnURL: "https://app.example.com/", ExpiresAt: time.Now().Add(time.Hour)}, hash)
	require.NoError(t, err)
	var stored int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM portal_links WHERE token_hash = $1 AND position($2::bytea IN token_hash) = 0`, hash[:], []byte(token)).Scan(&stored))
	require.Equal(t, 1, stored, "only the token's hash is stored")

	// Two openings at once: exactly one session.
	const openers = 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		sessions []domain.PortalSession
		refused  int
		failures []error
	)
	for range openers {
		wg.Go(func() {
			k, kh := portalKey()
			ps, err := st.OpenPortalLink(ctx, hash, k, kh)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, domain.ErrNotFound):
				refused++
				return
			case err != nil:
				failures = append(failures, err)
				return
			}
			sessions = append(sessions, ps)
		})
	}
	wg.Wait()
	require.Empty(t, failures, "a losing opening is refused as not found")
	require.Len(t, sessions, 1, "one opening wins")
	require.Equal(t, openers-1, refused)
	ps := sessions[0]
	require.Equal(t, link.ID, ps.Link.ID)
	require.Equal(t, "Acme Inc.", ps.TenantName)
	require.Equal(t, "https://app.example.com/", ps.Link.ReturnURL)
	require.Equal(t, []domain.Scope{domain.ScopeRead}, ps.Key.Scopes, "a read-only link's session may only read")
	require.Equal(t, "acme", ps.Key.TenantID)
	require.True(t, ps.Key.Portal)
	require.WithinDuration(t, link.ExpiresAt, *ps.Key.ExpiresAt, time.Millisecond, "the session ends with the link")
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM api_keys WHERE portal"), "the losers created no key")

	keys, err := st.ListAPIKeys(ctx)
	require.NoError(t, err)
	require.Empty(t, keys, "portal keys are not listed with the operators'")

	// A writable link, then revocation.
	_, hash2 := apikey.NewPortalToken()
	_, err = st.CreatePortalLink(ctx, domain.PortalLink{ID: apikey.NewPortalLinkID(), TenantID: "acme", ExpiresAt: time.Now().Add(time.Hour)}, hash2)
	require.NoError(t, err)
	_, hash3 := apikey.NewPortalToken()
	_, err = st.CreatePortalLink(ctx, domain.PortalLink{ID: apikey.NewPortalLinkID(), TenantID: "acme", ExpiresAt: time.Now().Add(time.Hour)}, hash3)
	require.NoError(t, err)
	k, kh := portalKey()
	ps2, err := st.OpenPortalLink(ctx, hash2, k, kh)
	require.NoError(t, err)
	require.Equal(t, []domain.Scope{domain.ScopeRead, domain.ScopeWrite}, ps2.Key.Scopes)
	_, err = st.LookupAPIKey(ctx, kh)
	require.NoError(t, err)

	rev, err := st.RevokePortal(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, store.PortalRevocation{Links: 1, Sessions: 2}, rev)
	_, err = st.LookupAPIKey(ctx, kh)
	require.ErrorIs(t, err, domain.ErrNotFound, "a revoked session's key stops working")
	k, kh = portalKey()
	_, err = st.OpenPortalLink(ctx, hash3, k, kh)
	require.ErrorIs(t, err, domain.ErrNotFound, "a revoked link does not open")
	_, err = st.RevokePortal(ctx, "nope")
	require.ErrorIs(t, err, domain.ErrNotFound)
}

func TestExpiredPortalLinkDoesNotOpen(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	ctx := context.Background()
	_, _, err := st.PutTenant(ctx, domain.Tenant{ID: "acme"})
	require.NoError(t, err)
	_, hash := apikey.NewPortalToken()
	_, err = st.CreatePortalLink(ctx, domain.PortalLink{ID: apikey.NewPortalLinkID(), TenantID: "acme", ExpiresAt: time.Now().Add(time.Hour)}, hash)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `UPDATE portal_links SET expires_at = now() - interval '1 second'`)
	require.NoError(t, err)
	k, kh := portalKey()
	_, err = st.OpenPortalLink(ctx, hash, k, kh)
	require.ErrorIs(t, err, domain.ErrNotFound)

	_, hash2 := apikey.NewPortalToken()
	_, err = st.CreatePortalLink(ctx, domain.PortalLink{ID: apikey.NewPortalLinkID(), TenantID: "acme", ExpiresAt: time.Now().Add(time.Hour)}, hash2)
	require.NoError(t, err)
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM portal_links"), "creating a link deletes the tenant's expired ones")
}

func TestEndpointRevealTestAndActivity(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	key, err := seal.ParseKey(seal.NewKey())
	require.NoError(t, err)
	keys, err := seal.NewKeyring(key)
	require.NoError(t, err)
	st := store.New(db.Pool, store.WithSecretKeys(keys))
	ctx := context.Background()
	for _, id := range []string{"acme", "globex"} {
		_, _, err := st.PutTenant(ctx, domain.Tenant{ID: id})
		require.NoError(t, err)
	}
	secret := signing.GenerateSecret()
	_, err = st.CreateSubscription(ctx, domain.Subscription{ID: "acme_1", TenantID: "acme", URL: "http://127.0.0.1:1/", EventTypes: []string{"order.*"}, Secret: secret})
	require.NoError(t, err)
	_, err = st.CreateSubscription(ctx, domain.Subscription{ID: "globex_1", TenantID: "globex", URL: "http://127.0.0.1:1/", EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
	require.NoError(t, err)
	acme := store.TenantScope("acme")

	r, err := st.RevealSecret(ctx, acme, "acme_1")
	require.NoError(t, err)
	require.Equal(t, secret, r.Secret)
	require.Nil(t, r.PreviousUntil)
	_, err = st.RevealSecret(ctx, acme, "globex_1")
	require.ErrorIs(t, err, domain.ErrNotFound, "another tenant's secret")
	rotated := signing.GenerateSecret()
	_, until, err := st.RotateSecret(ctx, acme, "acme_1", rotated, time.Hour)
	require.NoError(t, err)
	r, err = st.RevealSecret(ctx, acme, "acme_1")
	require.NoError(t, err)
	require.Equal(t, rotated, r.Secret)
	require.NotNil(t, r.PreviousUntil)
	require.WithinDuration(t, until, *r.PreviousUntil, time.Millisecond)

	sent, err := st.SendTest(ctx, acme, "acme_1", testEvent("test_1"))
	require.NoError(t, err)
	require.Len(t, sent.Deliveries, 1)
	ref := sent.Deliveries[0]
	require.Equal(t, "acme_1", ref.SubscriptionID)
	require.True(t, sent.Event.Test)
	require.Equal(t, "acme", sent.Event.TenantID)
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM deliveries WHERE event_id = 'test_1'"), "to that endpoint alone, though its types do not match")
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM events WHERE id = 'test_1' AND type = 'dispatch.test' AND tenant_id = 'acme' AND test"))
	_, err = st.SendTest(ctx, acme, "globex_1", testEvent("test_2"))
	require.ErrorIs(t, err, domain.ErrNotFound)
	require.Zero(t, count(t, db, "SELECT count(*) FROM events WHERE id = 'test_2'"), "nothing written for another tenant's endpoint")

	_, err = db.Pool.Exec(ctx, `INSERT INTO attempts (delivery_id, number, started_at, recorded_at, duration_ms, status_code)
		VALUES ($1, 1, now() - interval '2 days', now() - interval '2 days', 5, 500), ($1, 2, now(), now(), 5, 500), ($1, 3, now(), now(), 5, 204)`, ref.ID)
	require.NoError(t, err)
	act, err := st.SubscriptionActivity(ctx, acme, []string{"acme_1", "globex_1"}, time.Now().Add(-24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, map[string]store.Activity{"acme_1": {Attempts: 2, Succeeded: 1}}, act)
}

// TestTestEventsAreBounded: of many test events sent to one subscription
// at once, exactly TestEventLimit are made in a window; the others are a
// TooSoonError saying when one fits again, and write nothing. Another
// subscription has a bound of its own, and once the window has passed
// the subscription takes test events again.
func TestTestEventsAreBounded(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	ctx := context.Background()
	for _, id := range []string{"s1", "s2"} {
		_, err := st.CreateSubscription(ctx, domain.Subscription{ID: id, TenantID: domain.DefaultTenant, URL: "http://127.0.0.1:9/" + id, EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
		require.NoError(t, err)
	}

	const senders = 2 * store.TestEventLimit
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		made int
		soon []*domain.TooSoonError
	)
	for i := range senders {
		wg.Go(func() {
			_, err := st.SendTest(ctx, store.Unscoped, "s1", testEvent(fmt.Sprintf("test_s1_%d", i)))
			mu.Lock()
			defer mu.Unlock()
			var tooSoon *domain.TooSoonError
			switch {
			case err == nil:
				made++
			case errors.As(err, &tooSoon):
				soon = append(soon, tooSoon)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	require.Equal(t, store.TestEventLimit, made)
	require.Len(t, soon, senders-store.TestEventLimit)
	for _, e := range soon {
		require.Greater(t, e.RetryAfter, store.TestEventWindow-10*time.Second, "the oldest leaves the window about a window from now")
		require.LessOrEqual(t, e.RetryAfter, store.TestEventWindow)
	}
	require.Equal(t, store.TestEventLimit, count(t, db, "SELECT count(*) FROM events WHERE type = 'dispatch.test'"), "a refused test event writes nothing")
	require.Equal(t, store.TestEventLimit, count(t, db, "SELECT count(*) FROM deliveries"))

	_, err := st.SendTest(ctx, store.Unscoped, "s2", testEvent("test_s2"))
	require.NoError(t, err, "another subscription's bound is its own")
	_, err = db.Pool.Exec(ctx, `UPDATE deliveries SET created_at = created_at - interval '1 minute' WHERE subscription_id = 's1'`)
	require.NoError(t, err)
	_, err = st.SendTest(ctx, store.Unscoped, "s1", testEvent("test_s1_again"))
	require.NoError(t, err, "the window has passed")
	_, err = st.SendTest(ctx, store.Unscoped, "s1", testEvent("evt_1"))
	require.Error(t, err, "a test event's id starts with test_")

	// A catalog type's example sent as a test counts as much as a
	// dispatch.test event.
	for i := range store.TestEventLimit - 1 {
		e := testEvent(fmt.Sprintf("test_s2_typed_%d", i))
		e.Type = "order.created"
		_, err := st.SendTest(ctx, store.Unscoped, "s2", e)
		require.NoError(t, err)
	}
	var tooSoon *domain.TooSoonError
	_, err = st.SendTest(ctx, store.Unscoped, "s2", testEvent("test_s2_more"))
	require.ErrorAs(t, err, &tooSoon, "the bound counts test events of every type")
}

// testEvent is a dispatch.test event with id as SendTest is given it.
// TestTestEventWaitNeverExceedsTheWindow: a send that began before the
// test events that fill the window were made (it waited for the
// subscription's lock while they were) is told to wait less than the
// window. Reckoned from its transaction's start, the wait came out longer
// than the window by the time it waited (CI once: 60.0065 s).
func TestTestEventWaitNeverExceedsTheWindow(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	ctx := context.Background()
	_, err := st.CreateSubscription(ctx, domain.Subscription{ID: "s1", TenantID: domain.DefaultTenant, URL: "http://127.0.0.1:9/s1", EventTypes: []string{"*"}, Secret: signing.GenerateSecret()})
	require.NoError(t, err)

	holder, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(ctx) }()
	_, err = holder.Exec(ctx, `SELECT 1 FROM subscriptions WHERE id = 's1' FOR NO KEY UPDATE`)
	require.NoError(t, err)
	sent := make(chan error, 1)
	go func() {
		_, err := st.SendTest(ctx, store.Unscoped, "s1", testEvent("test_late"))
		sent <- err
	}()
	require.Eventually(t, func() bool {
		return count(t, db, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 1
	}, 10*time.Second, 5*time.Millisecond, "the send waits for the subscription")
	// The window fills while the send waits, with test events made after
	// its transaction began.
	_, err = holder.Exec(ctx, `INSERT INTO events (id, type, data, test)
		SELECT 'test_filled_' || i, $2, '{}', true FROM generate_series(1, $1) i`, store.TestEventLimit, store.TestEventType)
	require.NoError(t, err)
	_, err = holder.Exec(ctx, `INSERT INTO deliveries (event_id, subscription_id, created_at)
		SELECT 'test_filled_' || i, 's1', clock_timestamp() FROM generate_series(1, $1) i`, store.TestEventLimit)
	require.NoError(t, err)
	require.NoError(t, holder.Commit(ctx))

	var tooSoon *domain.TooSoonError
	require.ErrorAs(t, <-sent, &tooSoon)
	require.LessOrEqual(t, tooSoon.RetryAfter, store.TestEventWindow)
	require.Greater(t, tooSoon.RetryAfter, store.TestEventWindow-10*time.Second)
}

func testEvent(id string) domain.Event {
	return domain.Event{ID: id, Type: store.TestEventType, Source: "dispatch", Data: []byte(`{"message":"a test"}`)}
}
