// Package migrations embeds Dispatch's PostgreSQL schema as golang-migrate
// SQL files and applies it. Every service, the test kit and the
// dispatch-migrate command use this one copy.
package migrations

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers pgx5://
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

//go:embed sql/*.sql
var files embed.FS

// FS returns the migration files.
func FS() fs.FS {
	sub, err := fs.Sub(files, "sql")
	if err != nil {
		panic(err) // the embedded folder always exists
	}
	return sub
}

// Fingerprint is a short hash of every migration file. Tests use it to name
// a migrated template database that is rebuilt whenever a migration changes.
func Fingerprint() string {
	h := sha256.New()
	entries, _ := fs.ReadDir(FS(), ".")
	for _, e := range entries {
		b, _ := fs.ReadFile(FS(), e.Name())
		h.Write([]byte(e.Name()))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// New returns a migrator for the PostgreSQL database at databaseURL
// (a postgres:// or postgresql:// URL). Close it when done.
func New(databaseURL string) (*migrate.Migrate, error) {
	src, err := iofs.New(files, "sql")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, pgx5URL(databaseURL))
	if err != nil {
		return nil, fmt.Errorf("connect for migrations: %w", err)
	}
	return m, nil
}

// Up applies every pending migration. A database already up to date is not an error.
func Up(databaseURL string) error {
	m, err := New(databaseURL)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// pgx5URL rewrites a libpq-style URL to the scheme golang-migrate's pgx/v5
// driver registers.
func pgx5URL(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return databaseURL
	}
	return "pgx5" + strings.TrimPrefix(databaseURL, u.Scheme)
}
