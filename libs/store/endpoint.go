package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// What the customer portal (ADR 32) needs of a subscription beyond the
// dashboard: its secret on request, a test event to it alone, and its
// recent attempts counted.

// RevealedSecret is a subscription's signing secret as "Reveal" shows it.
type RevealedSecret struct {
	Secret string
	// PreviousUntil, during a rotation's grace period, is when the
	// previous secret stops signing beside it; nil otherwise.
	PreviousUntil *time.Time
}

// RevealSecret returns the current signing secret of the subscription
// within scope, opened, or domain.ErrNotFound.
func (s *Store) RevealSecret(ctx context.Context, scope Scope, id string) (_ RevealedSecret, err error) {
	defer markUnavailable(&err)
	var (
		sealed string
		until  pgtype.Timestamptz
	)
	err = s.pool.QueryRow(ctx, `SELECT secret, CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
		FROM subscriptions WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)`, id, scope.arg()).Scan(&sealed, &until)
	if err != nil {
		return RevealedSecret{}, fmt.Errorf("reveal secret of %q: %w", id, notFound(err))
	}
	secret, err := s.open(id, sealed)
	if err != nil {
		return RevealedSecret{}, err
	}
	return RevealedSecret{Secret: secret, PreviousUntil: timePtr(until)}, nil
}

// RevealHeaders returns the custom headers of the subscription within
// scope with their values opened (nil when it has none), or
// domain.ErrNotFound.
func (s *Store) RevealHeaders(ctx context.Context, scope Scope, id string) (_ map[string]string, err error) {
	defer markUnavailable(&err)
	var sealed map[string]string
	err = s.pool.QueryRow(ctx, `SELECT headers FROM subscriptions WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)`,
		id, scope.arg()).Scan(&sealed)
	if err != nil {
		return nil, fmt.Errorf("reveal headers of %q: %w", id, notFound(err))
	}
	return s.openHeaders(id, sealed)
}

// TestEventType is the type of the event SendTest is given when no type
// of the catalog is asked for, and TestEventIDPrefix starts every test
// event's id.
const (
	TestEventType     = "dispatch.test"
	TestEventIDPrefix = "test_"
)

// SendTest's bound: at most TestEventLimit test events to one
// subscription in any TestEventWindow. A test event costs an event, a
// delivery and an attempt on demand; a customer checking an endpoint
// needs a few, a loop gets no more than this.
const (
	TestEventLimit  = 10
	TestEventWindow = time.Minute
)

// SendTest stores e (whose id starts with TestEventIDPrefix) as a test
// event (events.test) of the subscription's tenant, and one delivery of
// it to that subscription alone, whatever its event types: no fan-out. A
// subscription outside scope is domain.ErrNotFound; one that had
// TestEventLimit test events in the last TestEventWindow is a
// *domain.TooSoonError saying when the oldest of them leaves the window,
// and nothing is stored; an id taken is domain.ErrConflict.
func (s *Store) SendTest(ctx context.Context, scope Scope, subscriptionID string, e domain.Event) (_ IngestResult, err error) {
	defer markUnavailable(&err)
	if !strings.HasPrefix(e.ID, TestEventIDPrefix) {
		return IngestResult{}, fmt.Errorf("test event id %q: must start with %q", e.ID, TestEventIDPrefix)
	}
	res := IngestResult{Event: e, Created: true}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var tenant pgtype.Text
		// FOR NO KEY UPDATE: the subscription cannot be deleted meanwhile,
		// and test events to it are counted and made one at a time, so
		// that sends at once cannot all find room under the bound.
		// Deliveries made by ingest meanwhile only share the row's key.
		err := tx.QueryRow(ctx, `SELECT tenant_id FROM subscriptions WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2) FOR NO KEY UPDATE`,
			subscriptionID, scope.arg()).Scan(&tenant)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("send test event to %q: %w", subscriptionID, domain.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("send test event to %q: %w", subscriptionID, err)
		}
		// The subscription's deliveries by creation (an index) within the
		// window, of test events (the id's prefix skips the others before
		// their events are read): the latest TestEventLimit, and when the
		// oldest of those leaves the window. That wait is reckoned from the
		// clock, not from now(), this transaction's start: a send that began
		// before the one holding the lock, and so waited for it, would read
		// the other's created_at as later than its now() and wait more than
		// the window.
		var (
			recent int
			wait   float64
		)
		if err := tx.QueryRow(ctx, `
			SELECT count(*), greatest(coalesce(extract(epoch FROM min(created_at) + make_interval(secs => $2) - clock_timestamp()), 0), 0)
			FROM (SELECT d.created_at FROM deliveries d JOIN events e ON e.id = d.event_id
				WHERE d.subscription_id = $1 AND d.created_at > now() - make_interval(secs => $2)
					AND starts_with(d.event_id, $4) AND e.test
				ORDER BY d.created_at DESC LIMIT $3) latest`,
			subscriptionID, TestEventWindow.Seconds(), TestEventLimit, TestEventIDPrefix).Scan(&recent, &wait); err != nil {
			return fmt.Errorf("send test event to %q: %w", subscriptionID, err)
		}
		if recent >= TestEventLimit {
			return &domain.TooSoonError{
				What:       fmt.Sprintf("at most %d test events per endpoint in any %d seconds", TestEventLimit, int(TestEventWindow.Seconds())),
				RetryAfter: time.Duration(wait * float64(time.Second)),
			}
		}
		if err := tx.QueryRow(ctx, `INSERT INTO events (id, type, source, data, tenant_id, schema_version, schema_valid, test)
			VALUES ($1, $2, $3, $4, $5, $6, $7, true) RETURNING received_at`,
			e.ID, e.Type, e.Source, e.Data, tenant, schemaVersion(e), e.SchemaValid).Scan(&res.Event.ReceivedAt); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("send test event %q: %w", e.ID, domain.ErrConflict)
			}
			return fmt.Errorf("send test event to %q: %w", subscriptionID, err)
		}
		ref := DeliveryRef{EventID: e.ID, SubscriptionID: subscriptionID}
		if err := tx.QueryRow(ctx, `INSERT INTO deliveries (event_id, subscription_id, next_attempt_at) VALUES ($1, $2, now()) RETURNING id`,
			e.ID, subscriptionID).Scan(&ref.ID); err != nil {
			return fmt.Errorf("send test event delivery: %w", err)
		}
		res.Event.TenantID = storedTenant(tenant)
		res.Event.Test = true
		res.Deliveries = []DeliveryRef{ref}
		return nil
	})
	if err != nil {
		return IngestResult{}, err
	}
	return res, nil
}

// Activity is a subscription's attempts in a window.
type Activity struct {
	Attempts  int64
	Succeeded int64
}

// ActivityWindow is the longest window SubscriptionActivity counts;
// subscription_activity_hours keeps that much and an hour more.
const ActivityWindow = 24 * time.Hour

// activityLag is how far behind now the roll-up may be and still be taken
// as current: it rolls a minute up between 30 and 45 s after the minute
// closes. Further behind, the scheduler has stopped.
const activityLag = 5 * time.Minute

// activityTailDeliveries is how many of each subscription's newest
// deliveries (of those created in the hour before the last minute rolled
// up, or later) are looked at for the attempts stored after that minute,
// while the roll-up is current.
const activityTailDeliveries = 25

// subscriptionActivitySQL adds up the subscriptions' hours from the one
// that holds the window's start ($2) up to the last minute rolled up (ADR
// 35): 25 rows of the primary key per subscription at most, whatever
// their traffic. The attempts stored since that minute are counted live
// (from_ below):
//   - while the roll-up is current (a minute or two behind), among each
//     subscription's newest $5 deliveries created in the hour before
//     from_ or later, so that the page's cost is bounded (at most $5
//     deliveries and their attempts per subscription): a test event shows
//     at once, and the other attempts of those minutes (a busy endpoint's
//     on older deliveries, retries of deliveries over an hour old; at most
//     two minutes of a 24-hour count) count once their minute is rolled
//     up;
//   - when it lags further (the scheduler has stopped), all of them, from
//     each subscription's deliveries created in the day before from_ or
//     later (the retry schedule spans about a day) and their attempts;
//   - when nothing in the window is rolled up (a database without a
//     running scheduler), the whole window's, the same way.
var subscriptionActivitySQL = `
WITH w AS (
	SELECT date_trunc('hour', $2::timestamptz) AS first_hour, ` + rolledUntil + ` AS rolled_until
), t AS (
	SELECT CASE WHEN rolled_until IS NULL OR rolled_until <= first_hour THEN first_hour ELSE rolled_until END AS from_,
	       coalesce(rolled_until > first_hour AND rolled_until >= now() - $4::interval, false) AS current,
	       first_hour
	FROM w
), counted AS (
	SELECT h.subscription_id, h.attempts, h.succeeded
	FROM subscription_activity_hours h, t
	WHERE h.subscription_id = ANY($1) AND h.hour >= t.first_hour AND h.hour < t.from_
	UNION ALL
	SELECT s.id, count(a.id), count(a.id) FILTER (WHERE a.status_code BETWEEN 200 AND 299)
	FROM t, unnest($1::text[]) AS s(id),
	     LATERAL (SELECT id FROM deliveries WHERE subscription_id = s.id AND created_at >= t.from_ - interval '1 hour'
	              ORDER BY created_at DESC LIMIT $5) d
	JOIN attempts a ON a.delivery_id = d.id
	WHERE t.current AND a.recorded_at >= t.from_
	GROUP BY 1
	UNION ALL
	SELECT d.subscription_id, count(*), count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299)
	FROM t, deliveries d JOIN attempts a ON a.delivery_id = d.id
	WHERE NOT t.current AND d.subscription_id = ANY($1) AND d.created_at >= t.from_ - interval '1 day' AND a.recorded_at >= t.from_
	GROUP BY 1
)
SELECT c.subscription_id, sum(c.attempts)::bigint, sum(c.succeeded)::bigint
FROM counted c JOIN subscriptions sub ON sub.id = c.subscription_id
WHERE $3::text IS NULL OR sub.tenant_id = $3
GROUP BY 1`

// SubscriptionActivity counts the attempts stored since since (at most
// ActivityWindow ago) to each of the subscriptions ids within scope, and
// those that got a 2xx. It counts whole hours, from the start of the hour
// that holds since; while the roll-up is current, the attempts stored
// after its last minute are counted among each subscription's newest
// deliveries only (subscriptionActivitySQL).
func (s *Store) SubscriptionActivity(ctx context.Context, scope Scope, ids []string, since time.Time) (_ map[string]Activity, err error) {
	defer markUnavailable(&err)
	rows, err := s.pool.Query(ctx, subscriptionActivitySQL, ids, since, scope.arg(), activityLag, activityTailDeliveries)
	if err != nil {
		return nil, fmt.Errorf("subscription activity: %w", err)
	}
	out := map[string]Activity{}
	for rows.Next() {
		var (
			id string
			a  Activity
		)
		if err := rows.Scan(&id, &a.Attempts, &a.Succeeded); err != nil {
			rows.Close()
			return nil, fmt.Errorf("subscription activity: %w", err)
		}
		out[id] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("subscription activity: %w", err)
	}
	return out, nil
}
