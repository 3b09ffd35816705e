package testkit

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dispatch-webhooks/dispatch/migrations"
)

// DefaultDatabaseURL is the maintenance database used when TEST_DATABASE_URL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres"

// templateLockKey serialises template creation across test processes.
const templateLockKey = 7_402_113

// Database is a fresh, migrated database that exists for one test.
type Database struct {
	// URL connects to the test's database.
	URL string
	// Pool is a connection pool on URL, closed at cleanup.
	Pool *pgxpool.Pool
	// Name is the database's name.
	Name string
}

func adminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(fmt.Sprintf("TEST_DATABASE_URL %q is not a URL: %v", raw, err))
	}
	u.Path = "/" + name
	return u.String()
}

// Postgres creates a database for this test, cloned from a template that
// has every migration applied, and drops it when the test ends.
func Postgres(t testing.TB) *Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	admin, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		t.Fatalf("testkit: cannot reach PostgreSQL at %s: %v\n"+
			"Start it (Debian: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "+
			"or point TEST_DATABASE_URL at a server where the user may create databases.", adminURL(), err)
	}
	defer admin.Close(context.Background())

	template := "dispatch_tmpl_" + migrations.Fingerprint()
	if err := ensureTemplate(ctx, admin, template); err != nil {
		t.Fatalf("testkit: prepare template database: %v", err)
	}

	name := "dispatch_test_" + strings.ToLower(rand.Text()[:16])
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template)); err != nil {
		t.Fatalf("testkit: create test database: %v", err)
	}
	db := &Database{URL: withDatabase(adminURL(), name), Name: name}
	t.Cleanup(func() {
		if db.Pool != nil {
			db.Pool.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL())
		if err != nil {
			t.Errorf("testkit: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("testkit: drop %s: %v", name, err)
		}
	})
	db.Pool, err = pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatalf("testkit: connect to %s: %v", name, err)
	}
	return db
}

// ensureTemplate creates and migrates the template database once per
// migration fingerprint. An advisory lock keeps parallel test binaries
// from building it twice; a database is only marked as a template once it
// is fully migrated, so a half-built one is never cloned.
func ensureTemplate(ctx context.Context, admin *pgx.Conn, name string) error {
	var ready bool
	err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&ready)
	if err != nil || ready {
		return err
	}
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return err
	}
	defer admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", templateLockKey) //nolint:errcheck // released with the session anyway
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&ready); err != nil || ready {
		return err
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s", name)); err != nil {
		return err
	}
	if err := migrations.Up(withDatabase(adminURL(), name)); err != nil {
		return err
	}
	_, err = admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s WITH is_template true", name))
	return err
}
