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
// previous, and every sealed value of the subscriptions' delivery options
// (custom header values, TLS client keys, OAuth2 client secrets) under the
// store's current key: those sealed under an earlier
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
// id after, and returns how many it looked at and the last one's id: the
// signing secrets, current and previous, and the sealed values of its
// delivery options (custom header values, the TLS client key, the OAuth2
// client secret).
func (s *Store) resealBatch(ctx context.Context, after string, batch int, report *ResealReport) (n int, last string, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, secret, previous_secret, headers, tls_client_key, oauth2->>'client_secret'
			FROM subscriptions WHERE id > $1 ORDER BY id LIMIT $2 FOR UPDATE`, after, batch)
		if err != nil {
			return err
		}
		var (
			ids, secrets, previous []string
			hasPrevious            []bool
			headers                []map[string]string
			tlsKeys, oauthSecrets  []pgtype.Text
		)
		for rows.Next() {
			var (
				id, secret                string
				prev, tlsKey, oauthSecret pgtype.Text
				hdrs                      map[string]string
			)
			if err := rows.Scan(&id, &secret, &prev, &hdrs, &tlsKey, &oauthSecret); err != nil {
				rows.Close()
				return err
			}
			n, last = n+1, id
			report.Subscriptions++
			r := resealing{s: s}
			newSecret := r.value(id, secret)
			newPrev := r.text(id, prev)
			for name, v := range hdrs {
				hdrs[name] = r.value(headerOwner(id, name), v)
			}
			newKey := r.text(tlsKeyOwner(id), tlsKey)
			newOAuth := r.text(oauth2SecretOwner(id), oauthSecret)
			if r.unopenable {
				report.Unopenable = append(report.Unopenable, id)
			}
			if r.resealed == 0 {
				continue
			}
			ids, secrets, previous = append(ids, id), append(secrets, newSecret), append(previous, newPrev.String)
			hasPrevious = append(hasPrevious, prev.Valid)
			headers, tlsKeys, oauthSecrets = append(headers, hdrs), append(tlsKeys, newKey), append(oauthSecrets, newOAuth)
			report.Resealed += r.resealed
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		// NULL columns stay NULL.
		_, err = tx.Exec(ctx, `UPDATE subscriptions s
			SET secret = u.secret, previous_secret = CASE WHEN u.has_previous THEN u.previous END,
			    headers = u.headers, tls_client_key = u.tls_key,
			    oauth2 = CASE WHEN u.oauth_secret IS NULL THEN s.oauth2 ELSE jsonb_set(s.oauth2, '{client_secret}', to_jsonb(u.oauth_secret)) END
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::jsonb[], $6::text[], $7::text[])
			     AS u(id, secret, previous, has_previous, headers, tls_key, oauth_secret)
			WHERE s.id = u.id`, ids, secrets, previous, hasPrevious, headers, tlsKeys, oauthSecrets)
		return err
	})
	return n, last, err
}

// resealing reseals one subscription's values, counting what it sealed
// anew and noting any that no key opens.
type resealing struct {
	s          *Store
	resealed   int
	unopenable bool
}

func (r *resealing) value(owner, stored string) string {
	v, opened, changed := r.s.reseal(owner, stored)
	r.unopenable = r.unopenable || !opened
	r.resealed += btoi(changed)
	return v
}

// text reseals a nullable value; NULL stays NULL.
func (r *resealing) text(owner string, stored pgtype.Text) pgtype.Text {
	if !stored.Valid {
		return stored
	}
	return pgtype.Text{String: r.value(owner, stored.String), Valid: true}
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
