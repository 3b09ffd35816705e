package api

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// TestKeysAreCheckedThroughACache: within the cache's time a key costs no
// lookup, after it the key is read again, and its use is written to
// last_used_at at most once a minute.
func TestKeysAreCheckedThroughACache(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := store.New(db.Pool)
	ctx := context.Background()
	key, hash := apikey.New()
	k, err := st.CreateAPIKey(ctx, domain.APIKey{ID: apikey.NewID(), Name: "k", Scopes: []domain.Scope{domain.ScopeRead}, Prefix: apikey.Display(key)}, hash)
	require.NoError(t, err)

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
