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

// TestCustomHeadersAreSealed pins that custom header values are stored
// sealed, bound to their subscription and name; that reads carry only
// their names; that a claim and a reveal open them; and that a patch
// replaces or clears them as a whole.
func TestCustomHeadersAreSealed(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := sealingStore(t, db)
	ctx := context.Background()

	headers := map[string]string{"X-Api-Key": "key-of-the-receiver", "Authorization": "Basic c2VjcmV0"}
	created, err := st.CreateSubscription(ctx, domain.Subscription{ID: "hdr", URL: "http://h/", EventTypes: []string{"*"}, Secret: "plain-secret-of-sub", Headers: headers})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"Authorization": "", "X-Api-Key": ""}, created.Headers, "answers carry names only")

	var stored string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT headers::text FROM subscriptions WHERE id = 'hdr'`).Scan(&stored))
	require.NotContains(t, stored, "key-of-the-receiver")
	require.NotContains(t, stored, "c2VjcmV0")
	require.Contains(t, stored, "X-Api-Key", "names are stored as they are")

	for _, read := range []func() (domain.Subscription, error){
		func() (domain.Subscription, error) { return st.GetSubscription(ctx, store.Unscoped, "hdr") },
		func() (domain.Subscription, error) {
			subs, err := st.ListSubscriptions(ctx, store.Unscoped, "", 10)
			require.Len(t, subs, 1)
			return subs[0], err
		},
	} {
		got, err := read()
		require.NoError(t, err)
		require.Equal(t, map[string]string{"Authorization": "", "X-Api-Key": ""}, got.Headers)
	}

	revealed, err := st.RevealHeaders(ctx, store.Unscoped, "hdr")
	require.NoError(t, err)
	require.Equal(t, headers, revealed)
	_, err = st.RevealHeaders(ctx, store.Unscoped, "nope")
	require.ErrorIs(t, err, domain.ErrNotFound)

	res, err := st.IngestEvent(ctx, event("evt_hdr", "x"))
	require.NoError(t, err)
	job, err := st.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, headers, job.Headers)

	// A sealed value moved to another name does not open.
	_, err = db.Pool.Exec(ctx, `UPDATE subscriptions SET headers = jsonb_build_object('X-Other', headers->'X-Api-Key') WHERE id = 'hdr'`)
	require.NoError(t, err)
	_, err = st.RevealHeaders(ctx, store.Unscoped, "hdr")
	require.ErrorIs(t, err, domain.ErrSecretUnavailable)

	// A patch without headers keeps them; one with headers replaces them;
	// one with none clears them.
	tests := []struct {
		name  string
		patch store.SubscriptionPatch
		want  map[string]string
	}{
		{"replaced", store.SubscriptionPatch{SetHeaders: true, Headers: map[string]string{"X-New": "v"}}, map[string]string{"X-New": "v"}},
		{"kept", store.SubscriptionPatch{URL: ptr("http://h2/")}, map[string]string{"X-New": "v"}},
		{"cleared", store.SubscriptionPatch{SetHeaders: true}, nil},
	}
	for _, tt := range tests {
		got, err := st.UpdateSubscription(ctx, store.Unscoped, "hdr", tt.patch)
		require.NoError(t, err, tt.name)
		revealed, err := st.RevealHeaders(ctx, store.Unscoped, "hdr")
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.want, revealed, tt.name)
		require.Len(t, got.Headers, len(tt.want), tt.name)
	}
	var isNull bool
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT headers IS NULL FROM subscriptions WHERE id = 'hdr'`).Scan(&isNull))
	require.True(t, isNull, "cleared headers are SQL NULL")
}
