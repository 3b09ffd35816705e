package keys_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/keys"
)

func TestCreateStoresAWorkingKey(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	var out bytes.Buffer
	require.NoError(t, keys.Run(ctx, clk, db.URL, []string{"create", "-name", "ci", "-scopes", "publish,read", "-expires", "24h"}, &out))
	key := strings.TrimSpace(out.String())
	k, err := store.New(db.Pool).LookupAPIKey(ctx, apikey.HashOf(key))
	require.NoError(t, err)
	require.Equal(t, []domain.Scope{domain.ScopePublish, domain.ScopeRead}, k.Scopes)
	require.NotNil(t, k.ExpiresAt)
	require.True(t, clk.Now().Add(24*time.Hour).Equal(*k.ExpiresAt), "expires %v, 24 h after %v", k.ExpiresAt, clk.Now())
	require.Empty(t, k.TenantID)

	out.Reset()
	require.NoError(t, keys.Run(ctx, clk, db.URL, []string{"create", "-name", "portal", "-scopes", "read", "-tenant", "default"}, &out))
	k, err = store.New(db.Pool).LookupAPIKey(ctx, apikey.HashOf(strings.TrimSpace(out.String())))
	require.NoError(t, err)
	require.Equal(t, domain.DefaultTenant, k.TenantID)

	for _, args := range [][]string{nil, {"list"}, {"create", "-name", "x"}, {"create", "-name", "x", "-scopes", "root"}, {"create", "-scopes", "read"},
		{"create", "-name", "ci\x1b[2J", "-scopes", "read"}, {"create", "-name", "x", "-scopes", "read", "-tenant", "no-such-tenant"},
		{"create", "-name", "x", "-scopes", "read", "-tenant", "a/b"}} {
		require.Error(t, keys.Run(ctx, clk, db.URL, args, &out), "%v", args)
	}
}
