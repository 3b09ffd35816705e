package secrets_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	libconfig "github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/seal"
	"github.com/dispatch-webhooks/dispatch/libs/signing"
	"github.com/dispatch-webhooks/dispatch/libs/store"
	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/services/ingest-api/internal/secrets"
)

// TestResealRetiresTheOldKey: after "secrets reseal" with the new key
// current and the old one previous, the new key alone opens every
// secret, and a second run reseals nothing; a secret no key opens fails
// the command, naming its subscription.
func TestResealRetiresTheOldKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testkit.Postgres(t)
	oldKey, newKey := seal.NewKey(), seal.NewKey()
	keyring := func(keys ...string) *seal.Keyring {
		var raw [][]byte
		for _, k := range keys {
			b, err := seal.ParseKey(k)
			require.NoError(t, err)
			raw = append(raw, b)
		}
		ring, err := seal.NewKeyring(raw[0], raw[1:]...)
		require.NoError(t, err)
		return ring
	}
	secret := signing.GenerateSecret()
	_, err := store.New(db.Pool, store.WithSecretKeys(keyring(oldKey))).CreateSubscription(ctx,
		domain.Subscription{ID: "s", URL: "http://127.0.0.1:1/", EventTypes: []string{"t"}, Secret: secret})
	require.NoError(t, err)

	env := map[string]string{"DATABASE_URL": db.URL, "SECRETS_ENCRYPTION_KEY": newKey, "SECRETS_ENCRYPTION_PREVIOUS_KEYS": oldKey}
	var out bytes.Buffer
	require.NoError(t, secrets.Run(ctx, libconfig.FromMap(env), []string{"reseal", "-batch", "1"}, &out))
	require.Equal(t, "1 subscriptions looked at, 1 secrets sealed anew under the current key\n", out.String())
	revealed, err := store.New(db.Pool, store.WithSecretKeys(keyring(newKey))).RevealSecret(ctx, store.Unscoped, "s")
	require.NoError(t, err, "the new key alone opens it")
	require.Equal(t, secret, revealed.Secret)

	out.Reset()
	require.NoError(t, secrets.Run(ctx, libconfig.FromMap(env), []string{"reseal"}, &out))
	require.Equal(t, "1 subscriptions looked at, 0 secrets sealed anew under the current key\n", out.String())

	// Sealed under a key the command is not given.
	_, err = store.New(db.Pool, store.WithSecretKeys(keyring(seal.NewKey()))).CreateSubscription(ctx,
		domain.Subscription{ID: "lost", URL: "http://127.0.0.1:1/", EventTypes: []string{"t"}, Secret: signing.GenerateSecret()})
	require.NoError(t, err)
	err = secrets.Run(ctx, libconfig.FromMap(env), []string{"reseal"}, &out)
	require.ErrorIs(t, err, secrets.ErrUnopenable)
	require.Contains(t, err.Error(), "1 subscriptions (lost)")
}

func TestResealRefusesBadArguments(t *testing.T) {
	t.Parallel()
	good := map[string]string{"SECRETS_ENCRYPTION_KEY": seal.NewKey()}
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"no subcommand":      {good, nil, "usage: ingest-api secrets reseal"},
		"unknown subcommand": {good, []string{"rotate"}, "usage: ingest-api secrets reseal"},
		"batch of zero":      {good, []string{"reseal", "-batch", "0"}, "-batch must be between 1 and 10000"},
		"unknown flag":       {good, []string{"reseal", "-all"}, "flag provided but not defined"},
		"no key":             {map[string]string{}, []string{"reseal"}, "SECRETS_ENCRYPTION_KEY"},
		"bad previous key":   {map[string]string{"SECRETS_ENCRYPTION_KEY": seal.NewKey(), "SECRETS_ENCRYPTION_PREVIOUS_KEYS": "short"}, []string{"reseal"}, "SECRETS_ENCRYPTION_PREVIOUS_KEYS"},
	} {
		err := secrets.Run(context.Background(), libconfig.FromMap(tc.env), tc.args, &bytes.Buffer{})
		require.ErrorContains(t, err, tc.want, name)
	}
}
