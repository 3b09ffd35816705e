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

// TestPatchKeepsStoredCredentials pins that a patch may keep the stored
// TLS key and OAuth2 client secret without sending them, but only with
// the certificate, token URL and client id they were stored with; keeping
// them for anything else is refused with nothing changed.
func TestPatchKeepsStoredCredentials(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := sealingStore(t, db)
	ctx := context.Background()
	ca := testkit.NewCA(t)
	client, other := ca.IssueValid(t, "dispatch"), ca.IssueValid(t, "other")
	notAfter := time.Now().Add(24 * time.Hour)
	o := domain.OAuth2{TokenURL: "https://auth.example/token", ClientID: "dispatch", ClientSecret: "client-secret-value"}
	_, err := st.CreateSubscription(ctx, domain.Subscription{ID: "keep", URL: "https://h/", EventTypes: []string{"*"}, Secret: "plain-secret-of-sub",
		TLS: &domain.ClientTLS{Certificate: client.CertPEM, Key: client.KeyPEM, NotAfter: notAfter}, OAuth2: &o})
	require.NoError(t, err)
	_, err = st.CreateSubscription(ctx, domain.Subscription{ID: "bare", URL: "https://h/", EventTypes: []string{"none"}, Secret: "plain-secret-of-sub"})
	require.NoError(t, err)
	row := func(id string) string {
		var s string
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT concat_ws('|', tls_client_certificate, tls_client_key, tls_ca_bundle, oauth2::text) FROM subscriptions WHERE id = $1`, id).Scan(&s))
		return s
	}

	keptTLS := &domain.ClientTLS{Certificate: client.CertPEM, CABundle: ca.PEM, NotAfter: notAfter}
	keptOAuth2 := &domain.OAuth2{TokenURL: o.TokenURL, ClientID: o.ClientID, Scopes: []string{"webhooks"}, Audience: "https://api.example"}
	_, err = st.UpdateSubscription(ctx, store.Unscoped, "keep", store.SubscriptionPatch{
		SetTLS: true, TLS: keptTLS, KeepTLSKey: true, SetOAuth2: true, OAuth2: keptOAuth2, KeepOAuth2Secret: true})
	require.NoError(t, err)
	res, err := st.IngestEvent(ctx, event("evt_keep", "x"))
	require.NoError(t, err)
	job, err := st.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, &domain.ClientTLS{Certificate: client.CertPEM, Key: client.KeyPEM, CABundle: ca.PEM}, job.TLS, "the key kept, the bundle added")
	require.Equal(t, &domain.OAuth2{TokenURL: o.TokenURL, ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: []string{"webhooks"}, Audience: "https://api.example"},
		job.OAuth2, "the secret kept, scopes and audience changed")

	refused := []struct {
		name, id, field string
		patch           store.SubscriptionPatch
	}{
		{"key kept for another certificate", "keep", "tls.client_key", store.SubscriptionPatch{SetTLS: true, KeepTLSKey: true,
			TLS: &domain.ClientTLS{Certificate: other.CertPEM, NotAfter: notAfter}}},
		{"key kept where none is stored", "bare", "tls.client_key", store.SubscriptionPatch{SetTLS: true, KeepTLSKey: true, TLS: keptTLS}},
		{"secret kept for another token URL", "keep", "oauth2.client_secret", store.SubscriptionPatch{SetOAuth2: true, KeepOAuth2Secret: true,
			OAuth2: &domain.OAuth2{TokenURL: "https://elsewhere.example/token", ClientID: o.ClientID}}},
		{"secret kept for another client", "keep", "oauth2.client_secret", store.SubscriptionPatch{SetOAuth2: true, KeepOAuth2Secret: true,
			OAuth2: &domain.OAuth2{TokenURL: o.TokenURL, ClientID: "someone"}}},
		{"secret kept where none is stored", "bare", "oauth2.client_secret", store.SubscriptionPatch{SetOAuth2: true, KeepOAuth2Secret: true, OAuth2: keptOAuth2}},
	}
	for _, tt := range refused {
		before := row(tt.id)
		tt.patch.URL = ptr("https://changed/")
		_, err := st.UpdateSubscription(ctx, store.Unscoped, tt.id, tt.patch)
		var v *domain.ValidationError
		require.ErrorAs(t, err, &v, tt.name)
		require.Equal(t, tt.field, v.Field, tt.name)
		require.Equal(t, before, row(tt.id), tt.name+": nothing changed")
		got, err := st.GetSubscription(ctx, store.Unscoped, tt.id)
		require.NoError(t, err)
		require.Equal(t, "https://h/", got.URL, tt.name+": nothing changed")
	}
}
