// Package secrets is the ingest-api's "secrets reseal" command: it seals
// every stored subscription secret under the current key, so that a
// replaced key can be retired (ADR 15).
package secrets

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	libconfig "github.com/dispatch-webhooks/dispatch/libs/config"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// Usage describes the command.
const Usage = `usage: ingest-api secrets reseal [-batch N]
Seals every subscription secret in DATABASE_URL's database, current and
previous, under SECRETS_ENCRYPTION_KEY: those sealed under a key in
SECRETS_ENCRYPTION_PREVIOUS_KEYS and those stored before sealing existed.
Safe to run while the services run, and again; afterwards the previous
keys can be removed. -batch is how many subscriptions one transaction
locks (default 500).`

// ErrUnopenable means some secrets open with none of the configured keys;
// they were left as they are.
var ErrUnopenable = errors.New("secrets that no configured key opens were left as they are")

// maxNamed is how many subscriptions with unopenable secrets the error
// names.
const maxNamed = 20

// Run runs "secrets" with its arguments (after the word "secrets"),
// reading DATABASE_URL and the secret keys from env and writing what it
// did to out.
func Run(ctx context.Context, env *libconfig.Env, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "reseal" {
		return fmt.Errorf("%s", Usage)
	}
	fs := flag.NewFlagSet("secrets reseal", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	batch := fs.Int("batch", 500, "subscriptions per transaction")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w\n%s", err, Usage)
	}
	if *batch < 1 || *batch > 10_000 {
		return fmt.Errorf("-batch must be between 1 and 10000\n%s", Usage)
	}
	databaseURL := env.String("DATABASE_URL", libconfig.DefaultDatabaseURL)
	secretKeys := env.SecretKeys()
	if err := env.Err(); err != nil {
		return err
	}
	keys, err := secretKeys.Keyring()
	if err != nil {
		return err
	}
	pool, err := store.Connect(ctx, databaseURL, 2)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	report, err := store.New(pool, store.WithSecretKeys(keys)).ResealSecrets(ctx, *batch)
	if _, werr := fmt.Fprintf(out, "%d subscriptions looked at, %d secrets sealed anew under the current key\n", report.Subscriptions, report.Resealed); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if n := len(report.Unopenable); n > 0 {
		names := strings.Join(report.Unopenable[:min(n, maxNamed)], ", ")
		if n > maxNamed {
			names += fmt.Sprintf(" and %d more", n-maxNamed)
		}
		return fmt.Errorf("%w: %d subscriptions (%s); add the key they were sealed with to SECRETS_ENCRYPTION_PREVIOUS_KEYS and run again, or rotate their secrets",
			ErrUnopenable, n, names)
	}
	return nil
}
