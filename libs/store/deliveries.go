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

// scanDelivery reads deliveryColumns, then any extra columns into extra.
func scanDelivery(row pgx.Row, extra ...any) (domain.Delivery, error) {
	var (
		d    domain.Delivery
		next pgtype.Timestamptz
		code pgtype.Int4
	)
	err := row.Scan(append([]any{&d.ID, &d.EventID, &d.SubscriptionID, &d.Status, &d.Attempts, &next, &code, &d.LastError, &d.CreatedAt, &d.UpdatedAt}, extra...)...)
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
	// Settings are the subscription's own delivery settings (zero: defaults).
	Settings domain.DeliverySettings
	// SubscriptionCreatedAt tells this subscription from a later one
	// created under the same id.
	SubscriptionCreatedAt time.Time
}

// openStatuses are the statuses of deliveries that are not final.
const openStatuses = `('pending', 'processing', 'retrying')`

// claimSQL takes a delivery for one attempt. Only a due delivery may be
// taken: every open delivery carries its due time in next_attempt_at (queued
// pending: at once; retrying: the retry time; processing: when the previous
// claim's lease lapses, because its worker died). The claim's own lease is
// stored the same way, and the attempt number is allotted here, so two
// claims can never record the same attempt. The claim consumed the Kafka
// record, so the delivery counts as not enqueued (enqueued_at -infinity).
const claimSQL = `
UPDATE deliveries d
SET status = 'processing', attempts = d.attempts + 1,
    next_attempt_at = now() + coalesce(s.timeout_ms * interval '1 millisecond', $2::interval) + $3::interval,
    enqueued_at = '-infinity', updated_at = now()
FROM events e, subscriptions s
WHERE d.id = $1 AND e.id = d.event_id AND s.id = d.subscription_id AND s.state = 'active'
  AND d.status IN ` + openStatuses + ` AND d.next_attempt_at <= now()
RETURNING d.subscription_id, d.attempts, e.id, e.type, e.source, e.data, e.received_at,
          s.url, s.secret, s.previous_secret, s.previous_secret_expires_at > now(), s.created_at,
          s.max_attempts, s.retry_base_ms, s.retry_max_ms, s.timeout_ms, s.rate_limit_per_second, s.max_concurrency`

// secretRetryAfter is when a delivery whose secret could not be opened is
// due again: a configuration error takes a human to mend.
const secretRetryAfter = time.Minute

// openSecrets returns the secrets to sign with: the current one, then the
// previous one while the rotation's grace period lasts.
func (s *Store) openSecrets(subID, current string, previous pgtype.Text, inGrace pgtype.Bool) ([]string, error) {
	secret, err := s.open(subID, current)
	if err != nil {
		return nil, err
	}
	secrets := []string{secret}
	if previous.Valid && inGrace.Valid && inGrace.Bool {
		old, err := s.open(subID, previous.String)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, old)
	}
	return secrets, nil
}

// ClaimDelivery marks a due delivery as processing and returns the job to
// attempt. The claim's lease is the subscription's timeout (defaultTimeout
// when it sets none) plus margin; once it lapses the delivery may be taken
// over. A delivery that is not due, already final, held by a live claim, or
// whose subscription is not active is domain.ErrNotClaimable. One whose
// secret cannot be opened is given back, due in a minute, and is
// domain.ErrSecretUnavailable.
func (s *Store) ClaimDelivery(ctx context.Context, deliveryID int64, defaultTimeout, margin time.Duration) (Job, error) {
	var (
		j        = Job{DeliveryID: deliveryID}
		secret   string
		previous pgtype.Text
		inGrace  pgtype.Bool
		sd       settingsDest
	)
	dest := append([]any{&j.SubscriptionID, &j.Attempt, &j.Event.ID, &j.Event.Type, &j.Event.Source, &j.Event.Data, &j.Event.ReceivedAt,
		&j.URL, &secret, &previous, &inGrace, &j.SubscriptionCreatedAt}, sd.targets()...)
	err := s.pool.QueryRow(ctx, claimSQL, deliveryID, defaultTimeout, margin).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("claim delivery %d: %w", deliveryID, domain.ErrNotClaimable)
	}
	if err != nil {
		return Job{}, fmt.Errorf("claim delivery %d: %w", deliveryID, err)
	}
	if j.Secrets, err = s.openSecrets(j.SubscriptionID, secret, previous, inGrace); err != nil {
		// Signing is impossible until the keys are mended: give the claim
		// back without spending its attempt, due again in a while, rather
		// than hold it.
		if rerr := s.ReleaseDelivery(ctx, deliveryID, j.Attempt, time.Now().Add(secretRetryAfter)); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return Job{}, fmt.Errorf("claim delivery %d: %w", deliveryID, err)
	}
	j.Settings = sd.settings()
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
	SET status = $10, next_attempt_at = $11, enqueued_at = '-infinity',
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

// ReleaseDelivery gives back a claim whose attempt was never made (the
// worker is stopping, or the destination's limits refused it): the attempt
// is not spent and the delivery is due again at `at`, when the retry
// scheduler republishes it.
func (s *Store) ReleaseDelivery(ctx context.Context, deliveryID int64, attempt int, at time.Time) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE deliveries
		SET status = CASE WHEN attempts = 1 THEN 'pending' ELSE 'retrying' END,
		    attempts = attempts - 1, next_attempt_at = $3, enqueued_at = '-infinity', updated_at = now()
		WHERE id = $1 AND status = 'processing' AND attempts = $2`, deliveryID, attempt, at)
	if err != nil {
		return fmt.Errorf("release delivery %d: %w", deliveryID, err)
	}
	return nil
}

// DueKind says why the retry scheduler republished a delivery.
type DueKind string

// Why a delivery was due for (re)publishing.
const (
	// DueRetry is a retrying delivery whose time has come.
	DueRetry DueKind = "retry"
	// DueStranded is a pending or processing delivery whose Kafka record was
	// lost or whose worker died.
	DueStranded DueKind = "stranded"
)

// DueDelivery is a delivery claimed for republishing.
type DueDelivery struct {
	DeliveryRef
	Kind DueKind
}

// claimDueSQL claims a batch of open deliveries that need a Kafka record:
// due, and either not enqueued since their last change (enqueued_at is
// -infinity after a failed attempt, a claim whose lease then lapsed, a
// release or a bulk redelivery) or enqueued longer than stale ago without
// being picked up (the record was lost, or the publish failed). Marking them
// enqueued now under FOR UPDATE SKIP LOCKED means concurrent schedulers
// never claim the same row.
const claimDueSQL = `
WITH due AS (
	SELECT d.id, d.status = 'retrying' AS is_retry
	FROM deliveries d
	WHERE d.status IN ` + openStatuses + `
	  AND d.next_attempt_at <= now()
	  AND (d.enqueued_at = '-infinity' OR d.enqueued_at < now() - $2::interval)
	ORDER BY d.next_attempt_at
	LIMIT $1
	FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d SET enqueued_at = now()
FROM due WHERE d.id = due.id
RETURNING d.id, d.event_id, d.subscription_id, due.is_retry`

// ClaimDue claims up to limit deliveries that need publishing (see
// claimDueSQL); stale is how long a published record may wait unclaimed
// before it counts as lost.
func (s *Store) ClaimDue(ctx context.Context, limit int, stale time.Duration) ([]DueDelivery, error) {
	rows, err := s.pool.Query(ctx, claimDueSQL, limit, stale)
	if err != nil {
		return nil, fmt.Errorf("claim due deliveries: %w", err)
	}
	due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DueDelivery, error) {
		var (
			d       DueDelivery
			isRetry bool
		)
		err := r.Scan(&d.ID, &d.EventID, &d.SubscriptionID, &isRetry)
		d.Kind = DueStranded
		if isRetry {
			d.Kind = DueRetry
		}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim due deliveries: %w", err)
	}
	return due, nil
}

// UntilNextDue returns how long until the earliest open delivery that
// waits for its due time becomes claimable: a retry, a released claim, or a
// worker's claim whose lease lapses (all have enqueued_at -infinity). Only
// deliveries due less than since ago or in the future count, which keeps
// the scan short (the caller passes the time since its last claim, which
// took everything due before it); ok is false when there is none. The wait
// is zero or negative when one is already due. Time is measured on the
// database's clock, the one ClaimDue compares with, so clock skew between
// hosts does not matter. Records that may go stale (enqueued_at set) are
// not counted: staleness is coarse and the scheduler's poll finds them.
// The deliveries_open index answers this with a short range scan.
func (s *Store) UntilNextDue(ctx context.Context, since time.Duration) (wait time.Duration, ok bool, err error) {
	var secs pgtype.Float8
	err = s.pool.QueryRow(ctx, `
		SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 FROM deliveries
		WHERE status IN `+openStatuses+`
		  AND next_attempt_at > now() - $1::interval AND enqueued_at = '-infinity'`, since).Scan(&secs)
	if err != nil {
		return 0, false, fmt.Errorf("next due delivery: %w", err)
	}
	if !secs.Valid {
		return 0, false, nil
	}
	return time.Duration(secs.Float64 * float64(time.Second)), true, nil
}

// Redeliver queues an event's finished (delivered or failed) deliveries
// again, all of them or one subscription's, and returns those it queued.
// Their attempts continue the same numbering. An unknown event is
// domain.ErrNotFound.
func (s *Store) Redeliver(ctx context.Context, eventID, subscriptionID string) (_ []DeliveryRef, err error) {
	defer markUnavailable(&err)
	rows, err := s.pool.Query(ctx, `
		WITH ev AS (SELECT id FROM events WHERE id = $1),
		upd AS (
			UPDATE deliveries d
			SET status = 'pending', next_attempt_at = now(), enqueued_at = now(), updated_at = now()
			FROM ev, subscriptions s
			WHERE d.event_id = ev.id AND s.id = d.subscription_id AND s.state = 'active'
			  AND d.status IN ('delivered', 'failed') AND ($2 = '' OR d.subscription_id = $2)
			RETURNING d.id, d.subscription_id
		)
		SELECT ev.id, upd.id, upd.subscription_id FROM ev LEFT JOIN upd ON true`, eventID, subscriptionID)
	if err != nil {
		return nil, fmt.Errorf("redeliver %q: %w", eventID, err)
	}
	defer rows.Close()
	var (
		found bool
		refs  []DeliveryRef
	)
	for rows.Next() {
		found = true
		var (
			ev    string
			id    pgtype.Int8
			subID pgtype.Text
		)
		if err := rows.Scan(&ev, &id, &subID); err != nil {
			return nil, fmt.Errorf("redeliver %q: %w", eventID, err)
		}
		if id.Valid {
			refs = append(refs, DeliveryRef{ID: id.Int64, EventID: ev, SubscriptionID: subID.String})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("redeliver %q: %w", eventID, err)
	}
	if !found {
		return nil, fmt.Errorf("redeliver %q: %w", eventID, domain.ErrNotFound)
	}
	return refs, nil
}

// RedeliverFilter selects finished deliveries of one subscription for bulk redelivery.
type RedeliverFilter struct {
	SubscriptionID string
	// Statuses to redeliver: delivered and/or failed (default: failed).
	Statuses []domain.DeliveryStatus
	// From and To bound the deliveries' creation time (zero: unbounded).
	From, To time.Time
}

// RedeliverBulk queues every matching finished delivery again in one
// statement, without loading them: they are marked due and never published,
// so the retry scheduler publishes them in batches. It returns how many
// were queued. An unknown subscription is domain.ErrNotFound, one that is
// not active domain.ErrConflict.
func (s *Store) RedeliverBulk(ctx context.Context, f RedeliverFilter) (_ int64, err error) {
	defer markUnavailable(&err)
	statuses := []string{string(domain.DeliveryFailed)}
	if len(f.Statuses) > 0 {
		statuses = statuses[:0]
		for _, st := range f.Statuses {
			statuses = append(statuses, string(st))
		}
	}
	from := pgtype.Timestamptz{Time: f.From, Valid: !f.From.IsZero()}
	to := pgtype.Timestamptz{Time: f.To, Valid: !f.To.IsZero()}
	sub, err := s.GetSubscription(ctx, f.SubscriptionID)
	if err != nil {
		return 0, fmt.Errorf("bulk redeliver: %w", err)
	}
	if sub.State != domain.SubscriptionActive {
		return 0, fmt.Errorf("bulk redeliver for %q: subscription is %s: %w", f.SubscriptionID, sub.State, domain.ErrConflict)
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE deliveries
		SET status = 'pending', next_attempt_at = now(), enqueued_at = '-infinity', updated_at = now()
		WHERE subscription_id = $1 AND status = ANY($2::text[])
		  AND ($3::timestamptz IS NULL OR created_at >= $3)
		  AND ($4::timestamptz IS NULL OR created_at < $4)
		  AND EXISTS (SELECT 1 FROM subscriptions WHERE id = $1 AND state = 'active')`,
		f.SubscriptionID, statuses, from, to)
	if err != nil {
		return 0, fmt.Errorf("bulk redeliver for %q: %w", f.SubscriptionID, err)
	}
	n := tag.RowsAffected()
	return n, nil
}

// MarkUnpublished records that deliveries' Kafka records were not
// published after all, so the retry scheduler publishes them on its next
// pass instead of waiting for them to go stale.
func (s *Store) MarkUnpublished(ctx context.Context, ids ...int64) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE deliveries SET enqueued_at = '-infinity'
		WHERE id = ANY($1) AND status IN `+openStatuses, ids)
	if err != nil {
		return fmt.Errorf("mark %d deliveries unpublished: %w", len(ids), err)
	}
	return nil
}
