package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/seal"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
)

// newKeyring returns a keyring sealing with current and opening with
// previous too.
func newKeyring(t *testing.T, current []byte, previous ...[]byte) *seal.Keyring {
	t.Helper()
	keys, err := seal.NewKeyring(current, previous...)
	require.NoError(t, err)
	return keys
}

// sealingStore returns a store on db that seals secrets with a key of its
// own.
func sealingStore(t *testing.T, db *testkit.Database) *store.Store {
	t.Helper()
	return store.New(db.Pool, store.WithSecretKeys(newKeyring(t, newKey(t))))
}

func newKey(t *testing.T) []byte {
	t.Helper()
	key, err := seal.ParseKey(seal.NewKey())
	require.NoError(t, err)
	return key
}

// storedSecrets returns a subscription's secret and previous secret as
// stored.
func storedSecrets(t *testing.T, db *testkit.Database, id string) (string, pgtype.Text) {
	t.Helper()
	var secret string
	var previous pgtype.Text
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT secret, previous_secret FROM subscriptions WHERE id = $1`, id).Scan(&secret, &previous))
	return secret, previous
}

// TestResealSecrets: every secret, current and previous, sealed under an
// earlier key or stored plain before sealing existed, ends up sealed under
// the current key and opens with it alone; a stored value that only looks
// sealed is reported and left; a second run changes nothing.
func TestResealSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testkit.Postgres(t)
	oldKey, newKeyBytes := newKey(t), newKey(t)
	plain := store.New(db.Pool)
	old := store.New(db.Pool, store.WithSecretKeys(newKeyring(t, oldKey)))
	current := store.New(db.Pool, store.WithSecretKeys(newKeyring(t, newKeyBytes, oldKey)))

	want := map[string][]string{} // id → current secret, previous secret
	for id, st := range map[string]*store.Store{"plain": plain, "old": old, "rotated": old, "current": current} {
		want[id] = []string{createSub(t, st, id, "t").Secret}
	}
	rotated := signing.GenerateSecret()
	_, _, err := old.RotateSecret(ctx, store.Unscoped, "rotated", rotated, time.Hour)
	require.NoError(t, err)
	want["rotated"] = []string{rotated, want["rotated"][0]}
	// A plain secret stored before sealing existed that starts as sealed
	// values do: the API refuses such secrets now (seal.Reserved).
	_, err = db.Pool.Exec(ctx, `INSERT INTO subscriptions (id, url, event_types, secret) VALUES ('lookalike', 'http://127.0.0.1:1/', '{t}', 'sealed:v1:0badc0de:plain')`)
	require.NoError(t, err)

	report, err := current.ResealSecrets(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, store.ResealReport{Subscriptions: 5, Resealed: 4, Unopenable: []string{"lookalike"}}, report)

	alone := newKeyring(t, newKeyBytes) // the old key retired
	for id, secrets := range want {
		secret, previous := storedSecrets(t, db, id)
		require.True(t, alone.Current(secret), "%s: sealed under the current key", id)
		opened, err := alone.Open(id, secret)
		require.NoError(t, err)
		require.Equal(t, secrets[0], opened, id)
		require.Equal(t, len(secrets) == 2, previous.Valid, "%s: previous secret kept or left empty", id)
		if previous.Valid {
			require.True(t, alone.Current(previous.String), "%s: previous sealed under the current key", id)
			opened, err := alone.Open(id, previous.String)
			require.NoError(t, err)
			require.Equal(t, secrets[1], opened, id)
		}
	}
	lookalike, _ := storedSecrets(t, db, "lookalike")
	require.Equal(t, "sealed:v1:0badc0de:plain", lookalike, "a value no key opens is left as it is")

	before := map[string]string{}
	for id := range want {
		before[id], _ = storedSecrets(t, db, id)
	}
	again, err := current.ResealSecrets(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, store.ResealReport{Subscriptions: 5, Resealed: 0, Unopenable: []string{"lookalike"}}, again)
	for id := range want {
		after, _ := storedSecrets(t, db, id)
		require.Equal(t, before[id], after, "%s: a second run writes nothing", id)
	}
}

// TestResealDeliveryOptions: a subscription's sealed delivery options
// (custom header values, the TLS client key, the OAuth2 client secret)
// are sealed under the current key too, so retiring the old one leaves
// them readable; a subscription without them keeps its columns NULL.
func TestResealDeliveryOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testkit.Postgres(t)
	oldKey, newKeyBytes := newKey(t), newKey(t)
	old := store.New(db.Pool, store.WithSecretKeys(newKeyring(t, oldKey)))
	current := store.New(db.Pool, store.WithSecretKeys(newKeyring(t, newKeyBytes, oldKey)))
	issued := testkit.NewCA(t).IssueValid(t, "dispatch")
	_, err := old.CreateSubscription(ctx, domain.Subscription{
		ID: "options", URL: "https://127.0.0.1:1/", EventTypes: []string{"t"}, Secret: signing.GenerateSecret(),
		Headers: map[string]string{"X-Api-Key": "k3y", "X-Tenant": "acme"},
		TLS:     &domain.ClientTLS{Certificate: issued.CertPEM, Key: issued.KeyPEM, NotAfter: time.Now().Add(time.Hour)},
		OAuth2:  &domain.OAuth2{TokenURL: "https://127.0.0.1:2/token", ClientID: "dispatch", ClientSecret: "s3cret"},
	})
	require.NoError(t, err)
	createSub(t, old, "bare", "t")

	report, err := current.ResealSecrets(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, store.ResealReport{Subscriptions: 2, Resealed: 6}, report, "two signing secrets, two header values, a key, a client secret")

	alone := newKeyring(t, newKeyBytes) // the old key retired
	var (
		headers                  map[string]string
		tlsKey, oauthSecret      pgtype.Text
		bareHeaders, bareOptions pgtype.Text
	)
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT headers, tls_client_key, oauth2->>'client_secret' FROM subscriptions WHERE id = 'options'`).
		Scan(&headers, &tlsKey, &oauthSecret))
	for owner, want := range map[string]struct{ stored, value string }{
		"options/headers/X-Api-Key":    {headers["X-Api-Key"], "k3y"},
		"options/headers/X-Tenant":     {headers["X-Tenant"], "acme"},
		"options/tls/key":              {tlsKey.String, issued.KeyPEM},
		"options/oauth2/client_secret": {oauthSecret.String, "s3cret"},
	} {
		opened, err := alone.Open(owner, want.stored)
		require.NoError(t, err, owner)
		require.Equal(t, want.value, opened, owner)
	}
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT headers::text, coalesce(tls_client_key, oauth2::text) FROM subscriptions WHERE id = 'bare'`).
		Scan(&bareHeaders, &bareOptions))
	require.False(t, bareHeaders.Valid || bareOptions.Valid, "no options: the columns stay NULL")

	again, err := current.ResealSecrets(ctx, 10)
	require.NoError(t, err)
	require.Zero(t, again.Resealed)
}

// TestResealWaitsForARotation: a rotation that holds its subscription's
// row while the reseal reaches it is not lost: the reseal waits for it
// and seals the new secret.
func TestResealWaitsForARotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testkit.Postgres(t)
	oldKey, newKeyBytes := newKey(t), newKey(t)
	old := store.New(db.Pool, store.WithSecretKeys(newKeyring(t, oldKey)))
	current := store.New(db.Pool, store.WithSecretKeys(newKeyring(t, newKeyBytes, oldKey)))
	createSub(t, old, "s", "t")

	// An instance still sealing with the old key rotates, in a transaction
	// the test holds open.
	rotated := signing.GenerateSecret()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `UPDATE subscriptions SET previous_secret = secret, secret = $2 WHERE id = $1`,
		"s", newKeyring(t, oldKey).Seal("s", rotated))
	require.NoError(t, err)

	done := make(chan error, 1)
	var report store.ResealReport
	go func() {
		var err error
		report, err = current.ResealSecrets(ctx, 10)
		done <- err
	}()
	// The reseal is waiting for the rotation's row lock.
	require.Eventually(t, func() bool {
		var waiting bool
		err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%')`).Scan(&waiting)
		return err == nil && waiting
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, <-done)
	require.Equal(t, 2, report.Resealed, "the rotated secret and the one it replaced")

	secret, previous := storedSecrets(t, db, "s")
	alone := newKeyring(t, newKeyBytes)
	opened, err := alone.Open("s", secret)
	require.NoError(t, err)
	require.Equal(t, rotated, opened, "the rotation's secret, sealed anew")
	_, err = alone.Open("s", previous.String)
	require.NoError(t, err)
}
