package api

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// storeWithReadKey returns a store on a database of the test's own that
// holds one key with the read scope: the key, its hash and its record.
func storeWithReadKey(t *testing.T) (*store.Store, string, apikey.Hash, domain.APIKey) {
	t.Helper()
	st := store.New(testkit.Postgres(t).Pool)
	key, hash := apikey.New()
	k, err := st.CreateAPIKey(context.Background(), domain.APIKey{ID: apikey.NewID(), Name: "k", Scopes: []domain.Scope{domain.ScopeRead}, Prefix: apikey.Display(key)}, hash)
	require.NoError(t, err)
	return st, key, hash, k
}

// TestKeysAreCheckedThroughACache: within the cache's time a key costs no
// lookup, after it the key is read again, and its use is written to
// last_used_at at most once a minute.
func TestKeysAreCheckedThroughACache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, key, _, k := storeWithReadKey(t)

	now := time.Now()
	a := newAuthenticator(st, "")
	a.now = func() time.Time { return now }
	p, err := a.authenticate(ctx, "Bearer "+key)
	require.NoError(t, err)
	require.Equal(t, k.ID, p.keyID)

	require.NoError(t, st.RevokeAPIKey(ctx, k.ID))
	_, err = a.authenticate(ctx, "Bearer "+key)
	require.NoError(t, err, "within the cache's time the answer is reused")
	now = now.Add(keyCacheTTL + time.Millisecond)
	_, err = a.authenticate(ctx, "Bearer "+key)
	require.ErrorIs(t, err, errUnknownKey, "after it the key is read again")

	other, otherHash := apikey.New()
	_, err = st.CreateAPIKey(ctx, domain.APIKey{ID: apikey.NewID(), Name: "o", Scopes: []domain.Scope{domain.ScopeRead}, Prefix: apikey.Display(other)}, otherHash)
	require.NoError(t, err)
	lastUsed := func() *time.Time {
		keys, err := st.ListAPIKeys(ctx)
		require.NoError(t, err)
		require.Len(t, keys, 1)
		return keys[0].LastUsedAt
	}
	_, err = a.authenticate(ctx, "Bearer "+other)
	require.NoError(t, err)
	require.Nil(t, lastUsed(), "uses are written at most once a minute")
	now = now.Add(touchEvery)
	_, err = a.authenticate(ctx, "Bearer "+other)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return lastUsed() != nil }, 5*time.Second, 20*time.Millisecond)
}

// gatedKeys is the real key store with its lookups counted and held until
// release is closed.
type gatedKeys struct {
	*store.Store
	release chan struct{}
	lookups atomic.Int32
}

func (g *gatedKeys) LookupAPIKey(ctx context.Context, hash apikey.Hash) (domain.APIKey, error) {
	g.lookups.Add(1)
	<-g.release
	return g.Store.LookupAPIKey(ctx, hash)
}

// TestConcurrentRequestsShareOneLookup: requests that need a key while it is
// being read wait for that read instead of each reading it, so a crowd of
// clients starting at once, or an entry expiring under load, costs one
// round trip; a waiter that gives up does not fail the others.
func TestConcurrentRequestsShareOneLookup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, key, hash, k := storeWithReadKey(t)
	keys := &gatedKeys{Store: st, release: make(chan struct{})}
	a := newAuthenticator(keys, "")

	const crowd = 20
	quitter, quit := context.WithCancel(ctx)
	quitErr := make(chan error, 1)
	go func() {
		_, err := a.authenticate(quitter, "Bearer "+key)
		quitErr <- err
	}()
	require.Eventually(t, func() bool { return keys.lookups.Load() == 1 }, 5*time.Second, time.Millisecond)
	results := make(chan error, crowd)
	for range crowd {
		go func() {
			p, err := a.authenticate(ctx, "Bearer "+key)
			if err == nil && p.keyID != k.ID {
				err = fmt.Errorf("principal %q, want %q", p.keyID, k.ID)
			}
			results <- err
		}()
	}
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.flights[hash] != nil && a.flights[hash].joined == crowd
	}, 5*time.Second, time.Millisecond)
	quit()
	require.ErrorIs(t, <-quitErr, context.Canceled, "the request that started the lookup gave up")
	close(keys.release)
	for range crowd {
		require.NoError(t, <-results)
	}
	require.EqualValues(t, 1, keys.lookups.Load(), "one lookup answered every request")
	_, err := a.authenticate(ctx, "Bearer "+key)
	require.NoError(t, err)
	require.EqualValues(t, 1, keys.lookups.Load(), "and its answer is cached")
}
