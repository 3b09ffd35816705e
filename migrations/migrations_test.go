package migrations_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

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

// TestWait: Wait returns at once on a migrated database, waits while the
// schema is behind or a migration is half applied, saying why, and
// returns once the migrator has caught up.
func TestWait(t *testing.T) {
	t.Parallel()
	db := testkit.Postgres(t)
	ctx := context.Background()
	m, err := migrations.New(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if v, _, err := m.Version(); err != nil || v != migrations.Latest() {
		t.Fatalf("a migrated database is at %d (%v), Latest says %d", v, err, migrations.Latest())
	}
	if err := migrations.Wait(ctx, db.URL, 10*time.Millisecond, func(r string) { t.Errorf("waited: %s", r) }); err != nil {
		t.Fatal(err)
	}

	if err := m.Steps(-1); err != nil {
		t.Fatal(err)
	}
	// Each wait below is stopped at its first reason: a deadline would
	// race the connection, which a loaded machine can make slower than it.
	first, cancel := context.WithCancel(ctx)
	defer cancel()
	var reasons []string
	err = migrations.Wait(first, db.URL, 10*time.Millisecond, func(r string) { reasons = append(reasons, r); cancel() })
	want := fmt.Sprintf("schema at version %d, waiting for version %d", migrations.Latest()-1, migrations.Latest())
	if err == nil || !strings.Contains(err.Error(), want) || len(reasons) != 1 || reasons[0] != want {
		t.Fatalf("behind: error %v, reasons %q; want %q once", err, reasons, want)
	}

	if _, err := db.Pool.Exec(ctx, `UPDATE schema_migrations SET dirty = true`); err != nil {
		t.Fatal(err)
	}
	first, cancel = context.WithCancel(ctx)
	defer cancel()
	if err := migrations.Wait(first, db.URL, 10*time.Millisecond, func(string) { cancel() }); err == nil || !strings.Contains(err.Error(), "(dirty)") {
		t.Fatalf("dirty: %v", err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE schema_migrations SET dirty = false`); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- migrations.Wait(ctx, db.URL, 10*time.Millisecond, func(string) {}) }()
	if err := migrations.Up(db.URL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return once the schema was migrated")
	}
}
