// Package migrations embeds Dispatch's PostgreSQL schema as golang-migrate
// SQL files and applies it. Every service, the test kit and the
// dispatch-migrate command use this one copy.
package migrations

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers pgx5://
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// Latest is the version of the newest migration: the schema version this
// build of Dispatch needs.
func Latest() uint {
	entries, _ := fs.ReadDir(FS(), ".")
	var latest uint
	for _, e := range entries {
		prefix, _, _ := strings.Cut(e.Name(), "_")
		if v, err := strconv.ParseUint(prefix, 10, 64); err == nil && uint(v) > latest {
			latest = uint(v)
		}
	}
	return latest
}

// Wait returns once the database at databaseURL has the schema at version
// Latest or a newer one (migrations keep the previous version working, so
// a newer schema will do), with no migration half applied. Until then it
// looks every interval, telling progress why it waits each time the reason
// changes, and gives up with the last reason when ctx ends. It only reads:
// the migrator may hold its lock meanwhile.
func Wait(ctx context.Context, databaseURL string, interval time.Duration, progress func(string)) error {
	want := Latest()
	last := ""
	for {
		reason := behind(ctx, databaseURL, want)
		if reason == "" {
			return nil
		}
		if ctx.Err() != nil && last != "" {
			// The look was cut short; the one before says why it waited.
			return fmt.Errorf("schema not at version %d: %s", want, last)
		}
		if reason != last {
			progress(reason)
			last = reason
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("schema not at version %d: %s", want, reason)
		case <-time.After(interval):
		}
	}
}

// behind says why the database's schema is not yet at version want, or
// returns "" when it is.
func behind(ctx context.Context, databaseURL string, want uint) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return fmt.Sprintf("database not reachable: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var (
		version int64
		dirty   bool
		pgErr   *pgconn.PgError
	)
	err = conn.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&version, &dirty)
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pgErr) && pgErr.Code == pgerrcode.UndefinedTable:
		return fmt.Sprintf("no migration applied yet, waiting for version %d", want)
	case err != nil:
		return fmt.Sprintf("cannot read the schema version: %v", err)
	case dirty:
		return fmt.Sprintf("migration %d is being applied or failed (dirty); dispatch-migrate's output says which", version)
	case version < 0 || uint(version) < want:
		return fmt.Sprintf("schema at version %d, waiting for version %d", version, want)
	}
	return ""
}
