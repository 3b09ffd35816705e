package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// TestOAuth2SecretIsSealed pins that an OAuth2 client secret is stored
// sealed, that reads carry the settings without it, that a claim opens
// it, and that a patch removes the settings.
func TestOAuth2SecretIsSealed(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := sealingStore(t, db)
	ctx := context.Background()
	o := &domain.OAuth2{TokenURL: "https://auth.example/token", ClientID: "dispatch", ClientSecret: "client-secret-value", Scopes: []string{"webhooks:write"}, Audience: "https://api.example"}

	created, err := st.CreateSubscription(ctx, domain.Subscription{ID: "oa", URL: "https://h/", EventTypes: []string{"*"}, Secret: "plain-secret-of-sub", OAuth2: o})
	require.NoError(t, err)
	withoutSecret := *o
	withoutSecret.ClientSecret = ""
	require.Equal(t, &withoutSecret, created.OAuth2)
	got, err := st.GetSubscription(ctx, store.Unscoped, "oa")
	require.NoError(t, err)
	require.Equal(t, &withoutSecret, got.OAuth2)

	var stored string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT oauth2::text FROM subscriptions WHERE id = 'oa'`).Scan(&stored))
	require.NotContains(t, stored, "client-secret-value")

	res, err := st.IngestEvent(ctx, event("evt_oa", "x"))
	require.NoError(t, err)
	job, err := st.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, o, job.OAuth2)

	got, err = st.UpdateSubscription(ctx, store.Unscoped, "oa", store.SubscriptionPatch{URL: ptr("https://h2/")})
	require.NoError(t, err)
	require.NotNil(t, got.OAuth2, "kept")
	got, err = st.UpdateSubscription(ctx, store.Unscoped, "oa", store.SubscriptionPatch{SetOAuth2: true})
	require.NoError(t, err)
	require.Nil(t, got.OAuth2, "removed")
}
