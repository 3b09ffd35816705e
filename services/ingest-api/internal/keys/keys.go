// Package keys is the ingest-api's "keys create" command: it stores a new
// API key directly in the database (DATABASE_URL), for bootstrapping and
// scripts, and prints the key once.
package keys

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// Usage describes the command.
const Usage = `usage: ingest-api keys create -name NAME -scopes SCOPE[,SCOPE] [-expires DURATION] [-tenant TENANT]
Creates an API key in DATABASE_URL's database and prints it once.
Scopes: admin, write, publish, read, portal. -tenant binds the key to that tenant.`

// Run runs "keys" with its arguments (after the word "keys"), writing the
// key to out; clk tells the time an -expires counts from.
func Run(ctx context.Context, clk clock.Clock, databaseURL string, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("%s", Usage)
	}
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "what the key is for")
	scopes := fs.String("scopes", "", "comma-separated scopes")
	expires := fs.Duration("expires", 0, "lifetime (never expires when 0)")
	tenant := fs.String("tenant", "", "the tenant the key is bound to (every tenant when empty)")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w\n%s", err, Usage)
	}
	key, hash := apikey.New()
	k := domain.APIKey{ID: apikey.NewID(), Name: *name, Prefix: apikey.Display(key), TenantID: *tenant}
	for _, s := range strings.Split(*scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			k.Scopes = append(k.Scopes, domain.Scope(s))
		}
	}
	now := clk.Now()
	if *expires > 0 {
		at := now.Add(*expires)
		k.ExpiresAt = &at
	}
	if err := domain.ValidateAPIKey(k, now); err != nil {
		return fmt.Errorf("%w\n%s", err, Usage)
	}
	pool, err := store.Connect(ctx, databaseURL, 2)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	if _, err := store.New(pool).CreateAPIKey(ctx, k, hash); err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, key)
	return err
}
