// Package store is Dispatch's PostgreSQL data layer: subscriptions, events,
// their deliveries and every attempt. PostgreSQL is the source of truth; each
// method is one statement or one transaction, so a failure never leaves a
// partial write behind.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/seal"
)

// Store runs Dispatch's queries on a connection pool.
type Store struct {
	pool *pgxpool.Pool
	// ingest runs IngestEvent and IngestEvents: pool unless WithIngestPool.
	ingest *pgxpool.Pool
	keys   *seal.Keyring
}

// Option configures a Store.
type Option func(*Store)

// WithSecretKeys seals subscription secrets with keys before they are
// written and opens them when read. Without it secrets are stored as
// they are, which only tests should do.
func WithSecretKeys(keys *seal.Keyring) Option { return func(s *Store) { s.keys = keys } }

// WithIngestPool runs the statements that store events and fan them out
// (IngestEvent, IngestEvents) on pool, which should be opened with
// KeyedReads: each delivery they insert has its event checked by a foreign
// key lookup whose plan each connection caches, and that plan must take the
// primary key however small events was when it was made.
func WithIngestPool(pool *pgxpool.Pool) Option { return func(s *Store) { s.ingest = pool } }

// New returns a Store on pool. The caller owns the pool.
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool, ingest: pool}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *Store) seal(owner, secret string) string {
	if s.keys == nil {
		return secret
	}
	return s.keys.Seal(owner, secret)
}

func (s *Store) open(owner, stored string) (string, error) {
	if s.keys == nil {
		return stored, nil
	}
	secret, err := s.keys.Open(owner, stored)
	if err != nil {
		return "", fmt.Errorf("%w: subscription %q: %w", domain.ErrSecretUnavailable, owner, err)
	}
	return secret, nil
}

// ConnectOption tunes the sessions of the pool Connect opens.
type ConnectOption func(*pgxpool.Config)

// AsynchronousCommit turns synchronous_commit off for the pool's sessions:
// a commit returns before its WAL reaches the disk, so a write costs no
// fsync wait, and a crash of the database may lose the last few hundred
// milliseconds of commits (never corrupt anything). That is safe for the
// delivery worker and only for it: every write it makes is one a lapsed
// lease redoes. A lost claim or release leaves the delivery due again when
// its lease lapses, and a lost record makes it be attempted again: at worst
// a duplicate send, which at-least-once delivery allows, never a lost
// event, because events are accepted by the API, whose pool keeps
// synchronous commit: its 2xx promises the event is durable.
func AsynchronousCommit() ConnectOption {
	return func(cfg *pgxpool.Config) { cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off" }
}

// KeyedReads is for a pool whose statements reach rows only by key, as the
// delivery worker's and the API's ingest statements (WithIngestPool) do: it
// prices sequential scans out of its sessions' plans (enable_seqscan off). PostgreSQL caches a generic plan for a
// prepared statement on its sixth run and keeps it until the table's
// statistics change. Made while deliveries was nearly empty (a new
// database, the first minute of a burst), that plan reads the whole table,
// cheaper than an index for a page or two, and keeps reading it for every
// batch once the table has grown, until autoanalyze runs again, minutes
// later. Without sequential scans the cached plan takes the primary key
// whatever the table's size when it was made. Planning each statement
// afresh instead (plan_cache_mode force_custom_plan) also avoids it, but
// costs about half a millisecond per statement here, more than a lone
// delivery's claim itself.
//
// The foreign key checks of inserts are such statements too: each
// delivery the API inserts has its event looked up by id with a plan the
// connection caches. Cached while events held a page or two, that plan
// scanned the whole table for every delivery inserted from then on, where
// no autoanalyze corrected the statistics, and ingest slowed with every
// event stored (docs/operations.md, "Autovacuum").
func KeyedReads() ConnectOption {
	return func(cfg *pgxpool.Config) { cfg.ConnConfig.RuntimeParams["enable_seqscan"] = "off" }
}

// cancelStatements makes a statement whose context ends stop by a cancel
// request, its connection kept, where pgx's default closes the
// connection. ListEvents runs a listing of two filters by two statements
// and cancels the slower: with each cancel closing a connection, every
// such listing made the pool open a session, whose first statements pay
// for its cold caches (a tenant's failed events took 9 ms at the median
// instead of 3; docs/PERFORMANCE.md). pgx holds a cancelled connection
// back for 100 ms after the request, so that the request cannot reach the
// connection's next statement; if the server has not answered a second
// after the cancel, the connection is closed after all.
func cancelStatements(c *pgconn.PgConn) ctxwatch.Handler {
	return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
}

// Connect opens a pool on databaseURL with at most maxConns connections
// (pgxpool's default when not positive), tuned by opts, and checks that
// the server answers. A maxConns beyond what a pool can count is an error.
func Connect(ctx context.Context, databaseURL string, maxConns int, opts ...ConnectOption) (*pgxpool.Pool, error) {
	if maxConns > math.MaxInt32 {
		return nil, fmt.Errorf("at most %d connections: more than a pool can hold", maxConns)
	}
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = int32(maxConns)
	}
	cfg.ConnConfig.BuildContextWatcherHandler = cancelStatements
	for _, o := range opts {
		o(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("reach database: %w", err)
	}
	return pool, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// isForeignKeyViolation reports whether a write named a row that does not
// exist through the foreign key constraint, such as an unknown tenant.
func isForeignKeyViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503" && pgErr.ConstraintName == constraint
}

// transient reports whether err is a lost or refused connection rather than
// an answer about the statement: connection exceptions (class 08), a
// transaction rolled back whole (class 40), the server out of resources such as connection slots (class 53), operator
// intervention such as a terminated backend (class 57P), or a failure
// before the statement was sent.
func transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "40") || strings.HasPrefix(pgErr.Code, "53") || strings.HasPrefix(pgErr.Code, "57P")
	}
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// retryTransient runs an idempotent operation up to three times while its
// failures are transient, and marks a final transient failure
// domain.ErrUnavailable so callers can answer 503 rather than 500.
func retryTransient(ctx context.Context, op func() error) error {
	var err error
	for try := range 3 {
		if err = op(); err == nil || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
		case <-time.After(time.Duration(try+1) * 50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
}

// markUnavailable marks *err domain.ErrUnavailable when it is transient,
// so that callers answer 503 ("try again") rather than 500. Every method
// the API calls defers it.
func markUnavailable(err *error) {
	if *err != nil && !errors.Is(*err, domain.ErrUnavailable) && transient(*err) {
		*err = fmt.Errorf("%w: %w", domain.ErrUnavailable, *err)
	}
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.ErrNotFound
	}
	return err
}

func timePtr(t pgtype.Timestamptz) *time.Time {
	if !t.Valid {
		return nil
	}
	return &t.Time
}
