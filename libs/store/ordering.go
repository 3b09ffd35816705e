package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// OrderingKeyState selects ordering keys by what their head is doing.
type OrderingKeyState string

// Ordering key states.
const (
	// KeyOpen is a key with an open delivery: its head, being attempted,
	// due, or waiting for a retry.
	KeyOpen OrderingKeyState = "open"
	// KeyBlocked is a key whose head failed and waits for its retry: the
	// key's later events wait behind it.
	KeyBlocked OrderingKeyState = "blocked"
)

// OrderingKey is one ordering key of a subscription and its head: the
// delivery that goes next.
type OrderingKey struct {
	Key  string
	Head domain.Delivery
	// Waiting counts the key's held deliveries, behind the head.
	Waiting int64
}

// OrderingKeyFilter selects a page of a subscription's ordering keys.
type OrderingKeyFilter struct {
	SubscriptionID string
	State          OrderingKeyState
	// After continues the listing after this key; "" starts at the first.
	After string
	Limit int
}

// headStatuses are the statuses of the heads of keys in state.
func headStatuses(state OrderingKeyState) []string {
	if state == KeyBlocked {
		return []string{string(domain.DeliveryRetrying)}
	}
	return []string{string(domain.DeliveryPending), string(domain.DeliveryProcessing), string(domain.DeliveryRetrying)}
}

// listKeysSQL pages the heads of subscription $1's keys after key $2 whose
// status is one of $3, $4 at most: each status's heads are one range of
// deliveries_ordered_heads, already in key order, so a page reads about
// $4 index entries per status however many keys there are. The open
// statuses are spelled out so that the planner sees the partial index
// applies, which st.want alone, a value of the run, would not show it.
const listKeysSQL = `
	SELECT ` + deliveryColumns + `, ordering_key,
	       coalesce((SELECT k.last_seq - d.seq FROM ordering_keys k WHERE k.subscription_id = $1 AND k.key = d.ordering_key), 0)
	FROM unnest($3::text[]) AS st(want)
	CROSS JOIN LATERAL (
		SELECT * FROM deliveries h
		WHERE h.subscription_id = $1 AND h.status = st.want AND h.seq IS NOT NULL AND h.next_attempt_at IS NOT NULL
		  AND h.status IN ` + openStatuses + ` AND h.ordering_key > $2
		ORDER BY h.ordering_key LIMIT $4
	) d
	ORDER BY d.ordering_key LIMIT $4`

// ListOrderingKeys returns up to f.Limit keys of a subscription within
// scope, in key order, with their heads, or domain.ErrNotFound when the
// subscription is not within scope.
func (s *Store) ListOrderingKeys(ctx context.Context, scope Scope, f OrderingKeyFilter) (_ []OrderingKey, err error) {
	defer markUnavailable(&err)
	if err := s.subscriptionInScope(ctx, scope, f.SubscriptionID); err != nil {
		return nil, fmt.Errorf("list ordering keys of %q: %w", f.SubscriptionID, err)
	}
	rows, err := s.pool.Query(ctx, listKeysSQL, f.SubscriptionID, f.After, headStatuses(f.State), f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list ordering keys of %q: %w", f.SubscriptionID, err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OrderingKey, error) {
		var k OrderingKey
		d, err := scanDelivery(r, &k.Key, &k.Waiting)
		k.Head = d
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("list ordering keys of %q: %w", f.SubscriptionID, err)
	}
	return keys, nil
}

// CountBlockedKeys counts a subscription's blocked keys (KeyBlocked).
func (s *Store) CountBlockedKeys(ctx context.Context, scope Scope, subscriptionID string) (_ int64, err error) {
	defer markUnavailable(&err)
	if err := s.subscriptionInScope(ctx, scope, subscriptionID); err != nil {
		return 0, fmt.Errorf("count blocked keys of %q: %w", subscriptionID, err)
	}
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM deliveries
		WHERE subscription_id = $1 AND status = 'retrying' AND seq IS NOT NULL AND next_attempt_at IS NOT NULL`, subscriptionID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count blocked keys of %q: %w", subscriptionID, err)
	}
	return n, nil
}

// subscriptionInScope is nil when the subscription exists within scope,
// domain.ErrNotFound otherwise.
func (s *Store) subscriptionInScope(ctx context.Context, scope Scope, id string) error {
	var found bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM subscriptions WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2))`,
		id, scope.arg()).Scan(&found)
	if err != nil {
		return err
	}
	if !found {
		return domain.ErrNotFound
	}
	return nil
}

// lockHeadSQL locks the head of key $2 of subscription $1 within scope
// $3, the first step of an operator's action on a key: id, event, whether
// a live claim holds it (a worker is attempting it now).
const lockHeadSQL = `
	SELECT d.id, d.event_id, d.status = 'processing' AND d.next_attempt_at > now() FROM deliveries d
	WHERE d.subscription_id = $1 AND d.ordering_key = $2 AND d.seq IS NOT NULL
	  AND d.next_attempt_at IS NOT NULL AND d.status IN ` + openStatuses + `
	  AND ($3::text IS NULL OR d.subscription_id IN (SELECT id FROM subscriptions WHERE tenant_id = $3))
	FOR NO KEY UPDATE OF d`

// keyHead is a locked head (lockHeadSQL).
type keyHead struct {
	id        int64
	eventID   string
	attempted bool
}

// lockHead locks the head of a key for an operator's action. A key
// without one is domain.ErrNotFound, one whose head a worker is
// attempting now domain.ErrConflict: the action would race the attempt's
// outcome.
func lockHead(ctx context.Context, tx pgx.Tx, scope Scope, subscriptionID, key string) (keyHead, error) {
	var h keyHead
	err := tx.QueryRow(ctx, lockHeadSQL, subscriptionID, key, scope.arg()).Scan(&h.id, &h.eventID, &h.attempted)
	if err != nil {
		return keyHead{}, notFound(err)
	}
	if h.attempted {
		return keyHead{}, fmt.Errorf("its head %q is being attempted now: %w", h.eventID, domain.ErrConflict)
	}
	return h, nil
}

// SkipOrderingKey fails the head of a subscription's ordering key for good,
// recording reason as its error, and releases the key's next delivery. It
// returns the head it skipped and the delivery it released (nil when none
// waits), for the caller to publish. A key without a head is
// domain.ErrNotFound; one whose head is being attempted now
// domain.ErrConflict.
func (s *Store) SkipOrderingKey(ctx context.Context, scope Scope, subscriptionID, key, reason string) (skipped DeliveryRef, next *DeliveryRef, err error) {
	defer markUnavailable(&err)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		h, err := lockHead(ctx, tx, scope, subscriptionID, key)
		if err != nil {
			return err
		}
		skipped = DeliveryRef{ID: h.id, EventID: h.eventID, SubscriptionID: subscriptionID}
		if _, err := tx.Exec(ctx, `
			UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, last_error = 'skipped: ' || $2,
			       report_failure = false, updated_at = now()
			WHERE id = $1`, h.id, reason); err != nil {
			return err
		}
		// A statement of its own, as in ApplyOutcomes: its snapshot sees
		// every delivery committed under the key's lock.
		var (
			after int64
			ref   DeliveryRef
		)
		err = tx.QueryRow(ctx, nextSQL, []int64{h.id}).Scan(&after, &ref.ID, &ref.EventID, &ref.SubscriptionID)
		switch {
		case err == nil:
			next = &ref
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		return nil
	})
	if err != nil {
		return DeliveryRef{}, nil, fmt.Errorf("skip ordering key %q of %q: %w", key, subscriptionID, err)
	}
	return skipped, next, nil
}

// RetryOrderingKeyNow makes the head of a subscription's ordering key due
// at once, without waiting for its retry, and returns it for the caller to
// publish. A key without a head is domain.ErrNotFound; one whose head is
// being attempted now domain.ErrConflict.
func (s *Store) RetryOrderingKeyNow(ctx context.Context, scope Scope, subscriptionID, key string) (_ DeliveryRef, err error) {
	defer markUnavailable(&err)
	var ref DeliveryRef
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		h, err := lockHead(ctx, tx, scope, subscriptionID, key)
		if err != nil {
			return err
		}
		ref = DeliveryRef{ID: h.id, EventID: h.eventID, SubscriptionID: subscriptionID}
		_, err = tx.Exec(ctx, `UPDATE deliveries SET next_attempt_at = now(), enqueued_at = now(), updated_at = now() WHERE id = $1`, h.id)
		return err
	})
	if err != nil {
		return DeliveryRef{}, fmt.Errorf("retry ordering key %q of %q: %w", key, subscriptionID, err)
	}
	return ref, nil
}

// PruneOrderingKeys deletes, up to limit at a time, the rows of ordering
// keys that have had no new event for longer than idle and have nothing
// open: a key that comes back starts its sequence afresh. A key's last
// delivery (seq = last_seq) is final only once every one before it is,
// so it alone tells; the row's lock keeps ingests of the key out
// meanwhile. It returns how many it deleted.
func (s *Store) PruneOrderingKeys(ctx context.Context, idle time.Duration, limit int) (_ int64, err error) {
	defer markUnavailable(&err)
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM ordering_keys k USING (
			SELECT subscription_id, key FROM ordering_keys
			WHERE updated_at < now() - $1::interval
			LIMIT $2 FOR UPDATE SKIP LOCKED
		) old
		WHERE k.subscription_id = old.subscription_id AND k.key = old.key
		  AND NOT EXISTS (
			SELECT 1 FROM deliveries d
			WHERE d.subscription_id = k.subscription_id AND d.ordering_key = k.key AND d.seq = k.last_seq
			  AND d.status IN `+openStatuses+`)`, idle, limit)
	if err != nil {
		return 0, fmt.Errorf("prune ordering keys: %w", err)
	}
	return tag.RowsAffected(), nil
}
