package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

const deliveryColumns = `id, event_id, subscription_id, status, attempts, next_attempt_at,
	last_status_code, last_error, created_at, updated_at`

func scanDelivery(row pgx.Row) (domain.Delivery, error) {
	var (
		d    domain.Delivery
		next pgtype.Timestamptz
		code pgtype.Int4
	)
	err := row.Scan(&d.ID, &d.EventID, &d.SubscriptionID, &d.Status, &d.Attempts, &next, &code, &d.LastError, &d.CreatedAt, &d.UpdatedAt)
	d.NextAttemptAt = timePtr(next)
	if code.Valid {
		c := int(code.Int32)
		d.LastStatusCode = &c
	}
	return d, err
}

func msDuration(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

// Job is a claimed delivery with everything a worker needs to attempt it.
type Job struct {
	DeliveryID     int64
	SubscriptionID string
	// Attempt is the number of the attempt this claim allows (1 for the first).
	Attempt int
	Event   domain.Event
	URL     string
	// Secrets are the signing secrets to sign with: the current one, then
	// the previous one while a rotation's grace period lasts.
	Secrets []string
}

// claimSQL takes a delivery for one attempt. Only a delivery that is due may
// be taken: pending, retrying with its time come, or processing whose
// previous claim lapsed (its worker died). The attempt number is allotted
// here, so two claims can never record the same attempt.
const claimSQL = `
UPDATE deliveries d
SET status = 'processing', attempts = d.attempts + 1, locked_until = now() + $2::interval, updated_at = now()
FROM events e, subscriptions s
WHERE d.id = $1 AND e.id = d.event_id AND s.id = d.subscription_id AND s.state = 'active'
  AND (d.status = 'pending'
       OR (d.status = 'retrying' AND d.next_attempt_at <= now())
       OR (d.status = 'processing' AND d.locked_until < now()))
RETURNING d.subscription_id, d.attempts, e.id, e.type, e.source, e.data, e.received_at,
          s.url, s.secret, s.previous_secret, s.previous_secret_expires_at > now()`

// ClaimDelivery marks a due delivery as processing for at most lease and
// returns the job to attempt. A delivery that is not due, already final,
// held by a live claim, or whose subscription is not active is
// domain.ErrNotClaimable.
func (s *Store) ClaimDelivery(ctx context.Context, deliveryID int64, lease time.Duration) (Job, error) {
	var (
		j        = Job{DeliveryID: deliveryID}
		secret   string
		previous pgtype.Text
		inGrace  pgtype.Bool
	)
	err := s.pool.QueryRow(ctx, claimSQL, deliveryID, lease).Scan(
		&j.SubscriptionID, &j.Attempt, &j.Event.ID, &j.Event.Type, &j.Event.Source, &j.Event.Data, &j.Event.ReceivedAt,
		&j.URL, &secret, &previous, &inGrace)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("claim delivery %d: %w", deliveryID, domain.ErrNotClaimable)
	}
	if err != nil {
		return Job{}, fmt.Errorf("claim delivery %d: %w", deliveryID, err)
	}
	j.Secrets = []string{secret}
	if previous.Valid && inGrace.Valid && inGrace.Bool {
		j.Secrets = append(j.Secrets, previous.String)
	}
	return j, nil
}

// Outcome is the result of one attempt and the delivery state it leads to.
type Outcome struct {
	Attempt domain.Attempt
	// Status is the delivery's new status: delivered, retrying or failed.
	Status domain.DeliveryStatus
	// NextAttemptAt is when a retrying delivery is due again.
	NextAttemptAt time.Time
}

// recordSQL stores the attempt and moves the delivery on in one statement.
// The delivery changes only if this attempt's claim is still the current one;
// a worker whose lease lapsed still records the attempt it made.
const recordSQL = `
WITH a AS (
	INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, error_class, error, response_body, instance)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
), u AS (
	UPDATE deliveries
	SET status = $10, next_attempt_at = $11, locked_until = NULL,
	    last_status_code = $5, last_error = $7, updated_at = now()
	WHERE id = $1 AND status = 'processing' AND attempts = $2
	RETURNING id
)
SELECT count(*) FROM u`

// RecordAttempt stores an attempt and the delivery's new status atomically.
// It returns domain.ErrNotClaimable when the claim had lapsed and another
// worker took the delivery over (the attempt is stored all the same), and
// domain.ErrNotFound when the delivery no longer exists.
func (s *Store) RecordAttempt(ctx context.Context, o Outcome) error {
	a := o.Attempt
	var next pgtype.Timestamptz
	if o.Status == domain.DeliveryRetrying {
		next = pgtype.Timestamptz{Time: o.NextAttemptAt, Valid: true}
	}
	var code pgtype.Int4
	if a.StatusCode != nil {
		code = pgtype.Int4{Int32: int32(*a.StatusCode), Valid: true}
	}
	var updated int
	err := s.pool.QueryRow(ctx, recordSQL,
		a.DeliveryID, a.Number, a.StartedAt, a.Duration.Milliseconds(), code, string(a.ErrorClass), a.Error, a.ResponseBody, a.Instance,
		string(o.Status), next).Scan(&updated)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return fmt.Errorf("record attempt %d of delivery %d: %w", a.Number, a.DeliveryID, domain.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("record attempt %d of delivery %d: %w", a.Number, a.DeliveryID, err)
	}
	if updated == 0 {
		return fmt.Errorf("record attempt %d of delivery %d: %w", a.Number, a.DeliveryID, domain.ErrNotClaimable)
	}
	return nil
}
