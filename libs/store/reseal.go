package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// ResealReport is what ResealSecrets did.
type ResealReport struct {
	// Subscriptions is how many subscriptions were looked at.
	Subscriptions int
	// Resealed is how many secrets, current and previous, were sealed
	// anew; those already under the current key are left as they are.
	Resealed int
	// Unopenable names the subscriptions with a secret no configured key
	// opens; they are left as they are.
	Unopenable []string
}

// ResealSecrets seals every stored subscription secret, current and
// previous, under the store's current key: those sealed under an earlier
// key and those stored before sealing existed (plain). Afterwards no
// secret needs a previous key, which can then be retired. It walks the
// subscriptions by id, batch at a time, each batch in a transaction of its
// own that locks its rows, so that a rotation or deletion meanwhile waits
// for it or goes first, never loses its write; the services may run
// throughout, since they open secrets with every key. A secret already
// under the current key is not written again, so running it twice changes
// nothing the second time.
func (s *Store) ResealSecrets(ctx context.Context, batch int) (_ ResealReport, err error) {
	defer markUnavailable(&err)
	if s.keys == nil {
		return ResealReport{}, errors.New("reseal secrets: the store has no secret keys")
	}
	var report ResealReport
	after := ""
	for {
		n, last, err := s.resealBatch(ctx, after, batch, &report)
		if err != nil {
			return report, fmt.Errorf("reseal secrets after %q: %w", after, err)
		}
		if n < batch {
			return report, nil
		}
		after = last
	}
}

// resealBatch reseals the secrets of up to batch subscriptions after the
// id after, and returns how many it looked at and the last one's id.
func (s *Store) resealBatch(ctx context.Context, after string, batch int, report *ResealReport) (n int, last string, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, secret, previous_secret FROM subscriptions
			WHERE id > $1 ORDER BY id LIMIT $2 FOR UPDATE`, after, batch)
		if err != nil {
			return err
		}
		var ids, secrets, previous []string
		var hasPrevious []bool
		for rows.Next() {
			var (
				id, secret string
				prev       pgtype.Text
			)
			if err := rows.Scan(&id, &secret, &prev); err != nil {
				rows.Close()
				return err
			}
			n, last = n+1, id
			report.Subscriptions++
			newSecret, okSecret, resealed := s.reseal(id, secret)
			newPrev, okPrev, prevResealed := prev.String, true, false
			if prev.Valid {
				newPrev, okPrev, prevResealed = s.reseal(id, prev.String)
			}
			if !okSecret || !okPrev {
				report.Unopenable = append(report.Unopenable, id)
			}
			if !resealed && !prevResealed {
				continue
			}
			ids, secrets, previous = append(ids, id), append(secrets, newSecret), append(previous, newPrev)
			hasPrevious = append(hasPrevious, prev.Valid)
			report.Resealed += btoi(resealed) + btoi(prevResealed)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		// previous_secret stays NULL where it was.
		_, err = tx.Exec(ctx, `UPDATE subscriptions s
			SET secret = u.secret, previous_secret = CASE WHEN u.has_previous THEN u.previous END
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[]) AS u(id, secret, previous, has_previous)
			WHERE s.id = u.id`, ids, secrets, previous, hasPrevious)
		return err
	})
	return n, last, err
}

// reseal returns stored sealed under the current key, whether it opened,
// and whether it changed: a value already under the current key, or one
// that does not open, stays as it is.
func (s *Store) reseal(owner, stored string) (_ string, opened, changed bool) {
	if s.keys.Current(stored) {
		return stored, true, false
	}
	secret, err := s.keys.Open(owner, stored)
	if err != nil {
		return stored, false, false
	}
	return s.keys.Seal(owner, secret), true, true
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
