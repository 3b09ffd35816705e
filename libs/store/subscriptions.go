package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

const subscriptionColumns = `id, url, event_types, secret, state, state_reason, created_at, updated_at`

func scanSubscription(row pgx.Row) (domain.Subscription, error) {
	var s domain.Subscription
	err := row.Scan(&s.ID, &s.URL, &s.EventTypes, &s.Secret, &s.State, &s.StateReason, &s.CreatedAt, &s.UpdatedAt)
	return s, err
}

// CreateSubscription stores a new, active subscription. A subscription with
// the same id is domain.ErrConflict.
func (s *Store) CreateSubscription(ctx context.Context, sub domain.Subscription) (domain.Subscription, error) {
	row := s.pool.QueryRow(ctx, `
		INSERT INTO subscriptions (id, url, event_types, secret)
		VALUES ($1, $2, $3, $4)
		RETURNING `+subscriptionColumns,
		sub.ID, sub.URL, sub.EventTypes, sub.Secret)
	created, err := scanSubscription(row)
	if isUniqueViolation(err) {
		return domain.Subscription{}, fmt.Errorf("subscription %q: %w", sub.ID, domain.ErrConflict)
	}
	if err != nil {
		return domain.Subscription{}, fmt.Errorf("insert subscription: %w", err)
	}
	return created, nil
}

// GetSubscription returns one subscription or domain.ErrNotFound.
func (s *Store) GetSubscription(ctx context.Context, id string) (domain.Subscription, error) {
	sub, err := scanSubscription(s.pool.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE id = $1`, id))
	if err != nil {
		return domain.Subscription{}, fmt.Errorf("get subscription %q: %w", id, notFound(err))
	}
	return sub, nil
}

// ListSubscriptions returns up to limit subscriptions ordered by id,
// starting after the id in after (keyset pagination; "" starts at the top).
func (s *Store) ListSubscriptions(ctx context.Context, after string, limit int) ([]domain.Subscription, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+subscriptionColumns+` FROM subscriptions
		WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	subs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Subscription, error) { return scanSubscription(r) })
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return subs, nil
}

// DeleteSubscription removes a subscription together with its deliveries
// and their attempts. An unknown id is domain.ErrNotFound.
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM subscriptions WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete subscription %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete subscription %q: %w", id, domain.ErrNotFound)
	}
	return nil
}
