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

// TestClientTLSKeyIsSealed pins that a subscription's TLS client key is
// stored sealed and bound to it, that reads carry the certificate, the CA
// bundle and the expiry but never the key, that a claim opens it, and
// that a patch replaces, keeps or removes the settings.
func TestClientTLSKeyIsSealed(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	st := sealingStore(t, db)
	ctx := context.Background()
	ca := testkit.NewCA(t)
	client := ca.IssueValid(t, "dispatch")
	notAfter := time.Now().Add(24 * time.Hour).Truncate(time.Second).UTC()
	set := &domain.ClientTLS{Certificate: client.CertPEM, Key: client.KeyPEM, CABundle: ca.PEM, NotAfter: notAfter}

	created, err := st.CreateSubscription(ctx, domain.Subscription{ID: "mtls", URL: "https://h/", EventTypes: []string{"*"}, Secret: "plain-secret-of-sub", TLS: set})
	require.NoError(t, err)
	want := &domain.ClientTLS{Certificate: client.CertPEM, CABundle: ca.PEM, NotAfter: notAfter}
	require.Equal(t, want.NotAfter.Unix(), created.TLS.NotAfter.Unix())
	created.TLS.NotAfter = notAfter
	require.Equal(t, want, created.TLS, "reads carry no key")

	var stored string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT tls_client_key FROM subscriptions WHERE id = 'mtls'`).Scan(&stored))
	require.NotContains(t, stored, "PRIVATE KEY")

	res, err := st.IngestEvent(ctx, event("evt_mtls", "x"))
	require.NoError(t, err)
	job, err := st.ClaimDelivery(ctx, res.Deliveries[0].ID, time.Minute, 0)
	require.NoError(t, err)
	require.Equal(t, &domain.ClientTLS{Certificate: client.CertPEM, Key: client.KeyPEM, CABundle: ca.PEM}, job.TLS)

	expiries, err := st.ClientCertificateExpiries(ctx)
	require.NoError(t, err)
	require.Len(t, expiries, 1)
	require.Equal(t, "mtls", expiries[0].SubscriptionID)
	require.Equal(t, notAfter.Unix(), expiries[0].NotAfter.Unix())

	// A sealed key moved to another subscription does not open there.
	_, err = st.CreateSubscription(ctx, domain.Subscription{ID: "other", URL: "https://h/", EventTypes: []string{"y"}, Secret: "plain-secret-of-sub",
		TLS: &domain.ClientTLS{Certificate: client.CertPEM, Key: "placeholder", NotAfter: notAfter}})
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `UPDATE subscriptions SET tls_client_key = $1 WHERE id = 'other'`, stored)
	require.NoError(t, err)
	res, err = st.IngestEvent(ctx, event("evt_other", "y"))
	require.NoError(t, err)
	for _, d := range res.Deliveries {
		_, err = st.ClaimDelivery(ctx, d.ID, time.Minute, 0)
		if d.SubscriptionID == "other" {
			require.ErrorIs(t, err, domain.ErrSecretUnavailable)
		} else {
			require.NoError(t, err)
		}
	}

	steps := []struct {
		name  string
		patch store.SubscriptionPatch
		want  bool // TLS set afterwards
		ca    string
	}{
		{"kept", store.SubscriptionPatch{URL: ptr("https://h2/")}, true, ca.PEM},
		{"replaced by a CA bundle alone", store.SubscriptionPatch{SetTLS: true, TLS: &domain.ClientTLS{CABundle: ca.PEM}}, true, ca.PEM},
		{"removed", store.SubscriptionPatch{SetTLS: true}, false, ""},
	}
	for _, s := range steps {
		got, err := st.UpdateSubscription(ctx, store.Unscoped, "mtls", s.patch)
		require.NoError(t, err, s.name)
		require.Equal(t, s.want, got.TLS != nil, s.name)
		if got.TLS != nil {
			require.Equal(t, s.ca, got.TLS.CABundle, s.name)
		}
	}
	expiries, err = st.ClientCertificateExpiries(ctx)
	require.NoError(t, err)
	require.Len(t, expiries, 1, "only other's certificate is left")
}
