package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

const apiKeyColumns = `id, name, scopes, key_prefix, created_at, expires_at, last_used_at, tenant_id, portal` //nolint:gosec // G101: column names, not a credential

func scanAPIKey(row pgx.Row) (domain.APIKey, error) {
	var (
		k             domain.APIKey
		scopes        []string
		expires, used pgtype.Timestamptz
		tenant        pgtype.Text
	)
	err := row.Scan(&k.ID, &k.Name, &scopes, &k.Prefix, &k.CreatedAt, &expires, &used, &tenant, &k.Portal)
	k.TenantID = tenant.String
	for _, s := range scopes {
		k.Scopes = append(k.Scopes, domain.Scope(s))
	}
	k.ExpiresAt, k.LastUsedAt = timePtr(expires), timePtr(used)
	return k, err
}

func scopeStrings(scopes []domain.Scope) []string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = string(s)
	}
	return out
}

// CreateAPIKey stores a key's hash and description; the key itself is
// never stored. A key bound to a tenant that does not exist is a
// *domain.ValidationError on tenant_id.
func (s *Store) CreateAPIKey(ctx context.Context, k domain.APIKey, hash apikey.Hash) (_ domain.APIKey, err error) {
	defer markUnavailable(&err)
	var expires pgtype.Timestamptz
	if k.ExpiresAt != nil {
		expires = pgtype.Timestamptz{Time: *k.ExpiresAt, Valid: true}
	}
	created, err := scanAPIKey(s.pool.QueryRow(ctx, `
		INSERT INTO api_keys (id, name, scopes, key_hash, key_prefix, expires_at, tenant_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING `+apiKeyColumns, k.ID, k.Name, scopeStrings(k.Scopes), hash[:], k.Prefix, expires,
		pgtype.Text{String: k.TenantID, Valid: k.TenantID != ""}))
	if isForeignKeyViolation(err, "api_keys_tenant_id_fkey") {
		return domain.APIKey{}, unknownTenant(k.TenantID)
	}
	if err != nil {
		return domain.APIKey{}, fmt.Errorf("insert api key: %w", err)
	}
	return created, nil
}

// ListAPIKeys returns the keys that are not revoked, oldest first; portal
// sessions' keys are not listed.
func (s *Store) ListAPIKeys(ctx context.Context) (_ []domain.APIKey, err error) {
	defer markUnavailable(&err)
	rows, err := s.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE revoked_at IS NULL AND NOT portal ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.APIKey, error) { return scanAPIKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey revokes a key for good; an unknown or already revoked id is
// domain.ErrNotFound.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) (err error) {
	defer markUnavailable(&err)
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, id)
	if err != nil {
		return fmt.Errorf("revoke api key %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke api key %q: %w", id, domain.ErrNotFound)
	}
	return nil
}

// LookupAPIKey returns the usable key with this hash: not revoked and not
// expired. Any other is domain.ErrNotFound. A lost connection is retried and then domain.ErrUnavailable.
func (s *Store) LookupAPIKey(ctx context.Context, hash apikey.Hash) (domain.APIKey, error) {
	var k domain.APIKey
	err := retryTransient(ctx, func() error {
		var err error
		k, err = scanAPIKey(s.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
			WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`, hash[:]))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.APIKey{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.APIKey{}, fmt.Errorf("look up api key: %w", err)
	}
	return k, nil
}

// TouchAPIKeys records that the keys were used at the given time.
func (s *Store) TouchAPIKeys(ctx context.Context, ids []string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = $2 WHERE id = ANY($1)`, ids, at); err != nil {
		return fmt.Errorf("touch api keys: %w", err)
	}
	return nil
}
