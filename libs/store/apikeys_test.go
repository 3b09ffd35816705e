package store_test

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

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	st := store.New(testkit.Postgres(t).Pool)
	ctx := context.Background()
	key, hash := apikey.New()
	created, err := st.CreateAPIKey(ctx, domain.APIKey{ID: apikey.NewID(), Name: "ci", Scopes: []domain.Scope{domain.ScopeRead, domain.ScopePublish}, Prefix: apikey.Display(key)}, hash)
	require.NoError(t, err)
	require.Equal(t, []domain.Scope{domain.ScopeRead, domain.ScopePublish}, created.Scopes)

	found, err := st.LookupAPIKey(ctx, apikey.HashOf(key))
	require.NoError(t, err)
	require.Equal(t, created.ID, found.ID)
	_, err = st.LookupAPIKey(ctx, apikey.HashOf(key+"x"))
	require.ErrorIs(t, err, domain.ErrNotFound)

	past := time.Now().Add(-time.Minute)
	oldKey, oldHash := apikey.New()
	_, err = st.CreateAPIKey(ctx, domain.APIKey{ID: apikey.NewID(), Name: "expired", Scopes: []domain.Scope{domain.ScopeRead}, Prefix: apikey.Display(oldKey), ExpiresAt: &past}, oldHash)
	require.NoError(t, err)
	_, err = st.LookupAPIKey(ctx, oldHash)
	require.ErrorIs(t, err, domain.ErrNotFound, "an expired key is not usable")

	require.NoError(t, st.TouchAPIKeys(ctx, []string{created.ID}, time.Now()))
	keys, err := st.ListAPIKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 2)
	require.NotNil(t, keys[0].LastUsedAt)

	require.NoError(t, st.RevokeAPIKey(ctx, created.ID))
	require.ErrorIs(t, st.RevokeAPIKey(ctx, created.ID), domain.ErrNotFound)
	_, err = st.LookupAPIKey(ctx, hash)
	require.ErrorIs(t, err, domain.ErrNotFound, "a revoked key is not usable")
	keys, err = st.ListAPIKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 1, "revoked keys are not listed")

	_, err = st.CreateAPIKey(ctx, domain.APIKey{ID: apikey.NewID(), Name: "bad", Scopes: []domain.Scope{"root"}, Prefix: "x"}, apikey.HashOf("y"))
	require.Error(t, err, "the database refuses unknown scopes too")
}
