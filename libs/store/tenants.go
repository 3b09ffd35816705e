package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

const tenantColumns = `id, name, metadata, ` + settingsColumns + `, max_subscriptions, created_at, updated_at`

func scanTenant(row pgx.Row, extra ...any) (domain.Tenant, error) {
	var (
		t     domain.Tenant
		sd    settingsDest
		quota pgtype.Int4
		meta  []byte
	)
	dest := append([]any{&t.ID, &t.Name, &meta}, sd.targets()...)
	err := row.Scan(append(append(dest, &quota, &t.CreatedAt, &t.UpdatedAt), extra...)...)
	t.Metadata = json.RawMessage(meta)
	t.Settings = sd.settings()
	t.MaxSubscriptions = int(quota.Int32)
	return t, err
}

// PutTenant creates the tenant or replaces its name, metadata, settings and
// quota, and reports whether it was created.
func (s *Store) PutTenant(ctx context.Context, t domain.Tenant) (_ domain.Tenant, created bool, err error) {
	defer markUnavailable(&err)
	meta := []byte(t.Metadata)
	if len(meta) == 0 {
		meta = []byte(`{}`)
	}
	st := t.Settings
	row := s.pool.QueryRow(ctx, `
		INSERT INTO tenants AS t (id, name, metadata, `+settingsColumns+`, max_subscriptions)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, metadata = EXCLUDED.metadata,
			max_attempts = EXCLUDED.max_attempts, retry_base_ms = EXCLUDED.retry_base_ms,
			retry_max_ms = EXCLUDED.retry_max_ms, timeout_ms = EXCLUDED.timeout_ms,
			rate_limit_per_second = EXCLUDED.rate_limit_per_second, max_concurrency = EXCLUDED.max_concurrency,
			max_subscriptions = EXCLUDED.max_subscriptions, updated_at = now()
		RETURNING `+tenantColumns+`, (xmax = 0)`,
		t.ID, t.Name, meta,
		nullInt(st.MaxAttempts),
		nullMS(st.RetryBaseDelay), nullMS(st.RetryMaxDelay),
		nullMS(st.Timeout),
		nullInt(st.RatePerSecond),
		nullInt(st.MaxConcurrency),
		nullInt(t.MaxSubscriptions))
	stored, err := scanTenant(row, &created)
	if err != nil {
		return domain.Tenant{}, false, fmt.Errorf("put tenant %q: %w", t.ID, err)
	}
	return stored, created, nil
}

// TenantCounts is what a tenant's page shows at a glance.
type TenantCounts struct {
	Subscriptions int64
	// RecentEvents counts the events posted for the tenant in the last
	// TenantRecentWindow.
	RecentEvents int64
	// FailingDeliveries counts the deliveries to the tenant's
	// subscriptions that are retrying or have failed.
	FailingDeliveries int64
}

// TenantRecentWindow is the window of TenantCounts.RecentEvents.
const TenantRecentWindow = 24 * time.Hour

// GetTenant returns one tenant with its counts, or domain.ErrNotFound.
func (s *Store) GetTenant(ctx context.Context, id string) (_ domain.Tenant, _ TenantCounts, err error) {
	defer markUnavailable(&err)
	var c TenantCounts
	t, err := scanTenant(s.pool.QueryRow(ctx, `
		SELECT `+tenantColumns+`,
			(SELECT count(*) FROM subscriptions WHERE tenant_id = $1),
			(SELECT count(*) FROM events WHERE tenant_id = $1 AND received_at > now() - $2::interval),
			(SELECT count(*) FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
				WHERE s.tenant_id = $1 AND d.status IN ('retrying', 'failed'))
		FROM tenants WHERE id = $1`, id, TenantRecentWindow),
		&c.Subscriptions, &c.RecentEvents, &c.FailingDeliveries)
	if err != nil {
		return domain.Tenant{}, TenantCounts{}, fmt.Errorf("get tenant %q: %w", id, notFound(err))
	}
	return t, c, nil
}

// ExistingTenants returns those of ids that name tenants.
func (s *Store) ExistingTenants(ctx context.Context, ids []string) (_ []string, err error) {
	defer markUnavailable(&err)
	rows, err := s.pool.Query(ctx, `SELECT id FROM tenants WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("existing tenants: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("existing tenants: %w", err)
	}
	return found, nil
}

// TenantFilter selects a page of tenants ordered by id.
type TenantFilter struct {
	// Prefix keeps the tenants whose id starts with it.
	Prefix string
	// After starts the page after this id ("" starts at the top).
	After string
	Limit int
}

// ListTenants returns a page of tenants ordered by id.
func (s *Store) ListTenants(ctx context.Context, f TenantFilter) (_ []domain.Tenant, err error) {
	defer markUnavailable(&err)
	rows, err := s.pool.Query(ctx, `
		SELECT `+tenantColumns+` FROM tenants
		WHERE id > $1 AND starts_with(id, $2)
		ORDER BY id LIMIT $3`, f.After, f.Prefix, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Tenant, error) { return scanTenant(r) })
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return ts, nil
}

// DeleteTenant removes a tenant with its keys, its subscriptions and their
// deliveries and attempts, and its events, and returns the subscriptions
// it removed. The default tenant is domain.ErrConflict; an unknown id is
// domain.ErrNotFound.
func (s *Store) DeleteTenant(ctx context.Context, id string) (_ []domain.Subscription, err error) {
	defer markUnavailable(&err)
	if id == domain.DefaultTenant {
		return nil, fmt.Errorf("delete tenant %q: the default tenant stays: %w", id, domain.ErrConflict)
	}
	var subs []domain.Subscription
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// As DeleteSubscription does, and for the same reason: the
		// deliveries go in id order before the cascade takes them.
		if _, err := tx.Exec(ctx, `
			SELECT d.id FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
			WHERE s.tenant_id = $1 ORDER BY d.id FOR UPDATE OF d`, id); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE tenant_id = $1 ORDER BY id`, id)
		if err != nil {
			return err
		}
		if subs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Subscription, error) { return scanSubscription(r) }); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete tenant %q: %w", id, notFound(err))
	}
	return subs, nil
}

// TenantSettings returns a tenant's delivery settings, the defaults of
// its subscriptions (a zero field is unset); domain.ErrNotFound when the
// tenant does not exist.
func (s *Store) TenantSettings(ctx context.Context, id string) (_ domain.DeliverySettings, err error) {
	defer markUnavailable(&err)
	var sd settingsDest
	err = s.pool.QueryRow(ctx, `SELECT `+settingsColumns+` FROM tenants WHERE id = $1`, id).Scan(sd.targets()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.DeliverySettings{}, fmt.Errorf("tenant %q: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return domain.DeliverySettings{}, fmt.Errorf("tenant settings: %w", err)
	}
	return sd.settings(), nil
}
