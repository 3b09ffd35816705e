package testkit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Statement is one statement of a bulk seed, with its arguments.
type Statement struct {
	SQL  string
	Args []any
}

// Seed fills a benchmark's database: the statements run in one
// transaction with foreign-key checks off (the rows are consistent by
// construction, and checking each row's keys would double the time; this
// needs a superuser, as the test kit's default user is), then VACUUM
// ANALYZE gives the planner its statistics and index-only scans their
// visibility map, as autovacuum would have by now. It logs how long it
// took.
func Seed(tb testing.TB, pool *pgxpool.Pool, statements ...Statement) {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		for i, s := range statements {
			if _, err := tx.Exec(ctx, s.SQL, s.Args...); err != nil {
				return fmt.Errorf("statement %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("seed: %v", err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		tb.Fatalf("vacuum: %v", err)
	}
	tb.Logf("seeded in %s", time.Since(start).Round(time.Second))
}
