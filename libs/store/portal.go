package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

const portalLinkColumns = `id, tenant_id, read_only, return_url, created_at, expires_at`

func scanPortalLink(row pgx.Row) (domain.PortalLink, error) {
	var l domain.PortalLink
	err := row.Scan(&l.ID, &l.TenantID, &l.ReadOnly, &l.ReturnURL, &l.CreatedAt, &l.ExpiresAt)
	return l, err
}

// CreatePortalLink stores a portal link by its token's hash; the token
// itself is never stored. A tenant that does not exist is
// domain.ErrNotFound. The tenant's links and portal keys that have
// expired are deleted on the way, so they do not pile up.
func (s *Store) CreatePortalLink(ctx context.Context, l domain.PortalLink, hash apikey.Hash) (_ domain.PortalLink, err error) {
	defer markUnavailable(&err)
	var created domain.PortalLink
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		created, err = scanPortalLink(tx.QueryRow(ctx, `
			INSERT INTO portal_links (id, tenant_id, token_hash, read_only, return_url, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING `+portalLinkColumns, l.ID, l.TenantID, hash[:], l.ReadOnly, l.ReturnURL, l.ExpiresAt))
		if isForeignKeyViolation(err, "portal_links_tenant_id_fkey") {
			return fmt.Errorf("tenant %q: %w", l.TenantID, domain.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("insert portal link: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM portal_links WHERE tenant_id = $1 AND expires_at <= now()`, l.TenantID); err != nil {
			return fmt.Errorf("delete expired portal links: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM api_keys WHERE portal AND tenant_id = $1 AND expires_at <= now()`, l.TenantID); err != nil {
			return fmt.Errorf("delete expired portal keys: %w", err)
		}
		return nil
	})
	return created, err
}

// OpenPortalLink consumes the portal link whose token has hash and stores
// the key of the session it opens, in one transaction: key (its id, name
// and prefix; keyHash its hash) is bound to the link's tenant, expires
// with the link, and holds read, or read and write unless the link is
// read-only. The link is consumed by a single conditional update, so of
// two openings at once exactly one finds it; a link that is unknown,
// used, expired or revoked is domain.ErrNotFound.
func (s *Store) OpenPortalLink(ctx context.Context, hash apikey.Hash, key domain.APIKey, keyHash apikey.Hash) (_ domain.PortalSession, err error) {
	defer markUnavailable(&err)
	var ps domain.PortalSession
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		l, err := scanPortalLink(tx.QueryRow(ctx, `
			UPDATE portal_links SET used_at = now()
			WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
			RETURNING `+portalLinkColumns, hash[:]))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("portal link: %w", domain.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("consume portal link: %w", err)
		}
		key.Scopes = []domain.Scope{domain.ScopeRead}
		if !l.ReadOnly {
			key.Scopes = append(key.Scopes, domain.ScopeWrite)
		}
		created, err := scanAPIKey(tx.QueryRow(ctx, `
			INSERT INTO api_keys (id, name, scopes, key_hash, key_prefix, expires_at, tenant_id, portal)
			VALUES ($1, $2, $3, $4, $5, $6, $7, true)
			RETURNING `+apiKeyColumns, key.ID, key.Name, scopeStrings(key.Scopes), keyHash[:], key.Prefix, l.ExpiresAt, l.TenantID))
		if err != nil {
			return fmt.Errorf("insert portal key: %w", err)
		}
		var name string
		if err := tx.QueryRow(ctx, `SELECT name FROM tenants WHERE id = $1`, l.TenantID).Scan(&name); err != nil {
			return fmt.Errorf("portal link's tenant: %w", err)
		}
		ps = domain.PortalSession{Link: l, Key: created, TenantName: name}
		return nil
	})
	return ps, err
}

// PortalRevocation is what revoking a tenant's portal access ended.
type PortalRevocation struct {
	// Links is how many links that could still be opened were revoked.
	Links int64
	// Sessions is how many sessions that had not yet expired were ended.
	Sessions int64
}

// RevokePortal ends every portal link and session of a tenant at once: its
// links and its portal keys are deleted. The links go first: a link being
// opened meanwhile either was consumed before (and its new key is deleted
// by the second statement, which starts after the opening committed) or
// is not found. A tenant that does not exist is domain.ErrNotFound.
func (s *Store) RevokePortal(ctx context.Context, tenant string) (_ PortalRevocation, err error) {
	defer markUnavailable(&err)
	var r PortalRevocation
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)`, tenant).Scan(&exists); err != nil {
			return fmt.Errorf("revoke portal: %w", err)
		}
		if !exists {
			return fmt.Errorf("tenant %q: %w", tenant, domain.ErrNotFound)
		}
		if err := tx.QueryRow(ctx, `WITH gone AS (DELETE FROM portal_links WHERE tenant_id = $1 RETURNING used_at, expires_at)
			SELECT count(*) FILTER (WHERE used_at IS NULL AND expires_at > now()) FROM gone`, tenant).Scan(&r.Links); err != nil {
			return fmt.Errorf("revoke portal links: %w", err)
		}
		if err := tx.QueryRow(ctx, `WITH gone AS (DELETE FROM api_keys WHERE portal AND tenant_id = $1 RETURNING revoked_at, expires_at)
			SELECT count(*) FILTER (WHERE revoked_at IS NULL AND expires_at > now()) FROM gone`, tenant).Scan(&r.Sessions); err != nil {
			return fmt.Errorf("revoke portal keys: %w", err)
		}
		return nil
	})
	return r, err
}
