package migrations_test

import (
	"context"
	"errors"
	"testing"

	"github.com/golang-migrate/migrate/v4"

	"github.com/dispatch-webhooks/dispatch/libs/testkit"
	"github.com/dispatch-webhooks/dispatch/migrations"
)

// TestDownAndUpAgain checks every down migration undoes its up migration,
// on a database that starts fully migrated (a clone of the template).
func TestDownAndUpAgain(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	ctx := context.Background()
	m, err := migrations.New(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })

	if err := m.Down(); err != nil {
		t.Fatalf("down: %v", err)
	}
	var tables int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("%d tables left after migrating down", tables)
	}
	if _, _, err := m.Version(); !errors.Is(err, migrate.ErrNilVersion) {
		t.Fatalf("version after down: %v", err)
	}
	if err := migrations.Up(db.URL); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if err := migrations.Up(db.URL); err != nil {
		t.Fatalf("up when current must be a no-op: %v", err)
	}
	if _, err := db.Pool.Exec(ctx, `SELECT id, url, event_types FROM subscriptions`); err != nil {
		t.Fatalf("schema not restored: %v", err)
	}
}

func TestFingerprintIsStable(t *testing.T) {
	t.Parallel()
	if a, b := migrations.Fingerprint(), migrations.Fingerprint(); a != b || len(a) != 12 {
		t.Fatalf("fingerprint %q / %q", a, b)
	}
}
