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

// SubscriptionHealth is what the retry scheduler reads of a subscription
// that may have something to report (ADR 0037).
type SubscriptionHealth struct {
	ID          string
	TenantID    string
	URL         string
	State       domain.SubscriptionState
	StateReason string
	// FailingSince is when its current run of failed attempts began; nil
	// when its latest counting attempt succeeded (or it has none).
	FailingSince *time.Time
	// AlertSince is the FailingSince that AlertLevel was reported for.
	AlertSince *time.Time
	// AlertLevel is the highest threshold reported for that run (per cent
	// of AUTO_DISABLE_AFTER), domain.OpDisabledLevel once reported
	// disabled, 0 when nothing is reported.
	AlertLevel int
}

// healthSQL lists the subscriptions with something to report, in id order
// from after ($1): active ones that are failing or were reported on, and
// disabled ones not reported disabled yet. Its condition is the partial
// index subscriptions_health's, which holds only those rows.
const healthSQL = `
SELECT id, tenant_id, url, state, state_reason, failing_since, alert_since, alert_level
FROM subscriptions
WHERE ((state = 'active' AND (failing_since IS NOT NULL OR alert_level > 0)) OR (state = 'disabled' AND alert_level < 100))
  AND id > $1
ORDER BY id LIMIT $2`

// SubscriptionsToReport returns up to limit subscriptions, in id order
// after the id in after, that may have something to report: active ones
// failing or reported on, disabled ones not reported disabled.
func (s *Store) SubscriptionsToReport(ctx context.Context, after string, limit int) ([]SubscriptionHealth, error) {
	rows, err := s.pool.Query(ctx, healthSQL, after, limit)
	if err != nil {
		return nil, fmt.Errorf("subscriptions to report: %w", err)
	}
	subs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SubscriptionHealth, error) {
		var (
			h            SubscriptionHealth
			since, alert pgtype.Timestamptz
		)
		err := r.Scan(&h.ID, &h.TenantID, &h.URL, &h.State, &h.StateReason, &since, &alert, &h.AlertLevel)
		h.FailingSince, h.AlertSince = timePtr(since), timePtr(alert)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("subscriptions to report: %w", err)
	}
	return subs, nil
}

// HealthReport is what the scheduler reports about one subscription and
// the state it leaves the subscription's report in.
type HealthReport struct {
	// AlertSince and AlertLevel replace the stored ones.
	AlertSince *time.Time
	AlertLevel int
	// Disable disables the subscription with DisableReason. Its waiting
	// deliveries stay: they go once it is re-enabled, or with it.
	Disable       bool
	DisableReason string
	// Events builds the operational events to store, given the number of
	// the subscription's open deliveries, read in the same transaction.
	Events func(openDeliveries int64) ([]domain.Event, error)
}

// ErrHealthChanged means the subscription changed since it was read (an
// attempt moved its failing period, someone re-enabled or deleted it,
// another scheduler reported it): nothing was done; read it again.
var ErrHealthChanged = errors.New("subscription changed since it was read")

// ReportHealth applies r to the subscription read as seen, in one
// transaction: the subscription's row is locked and checked to be still as
// seen (ErrHealthChanged otherwise, and nothing is done), its report state
// is replaced, it is disabled if r says so, and r's events are stored as
// operational events (see emitOperational). Either all of it commits or
// none, so a crash never leaves an event reported twice under two ids or
// a subscription disabled without its event.
func (s *Store) ReportHealth(ctx context.Context, seen SubscriptionHealth, r HealthReport) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var open int64
		err := tx.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM deliveries d WHERE d.subscription_id = s.id AND d.status IN `+openStatuses+`)
			FROM subscriptions s
			WHERE s.id = $1 AND s.state = $2 AND s.alert_level = $3
			  AND s.failing_since IS NOT DISTINCT FROM $4 AND s.alert_since IS NOT DISTINCT FROM $5
			FOR NO KEY UPDATE`,
			seen.ID, seen.State, seen.AlertLevel, seen.FailingSince, seen.AlertSince).Scan(&open)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrHealthChanged
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE subscriptions SET alert_since = $2, alert_level = $3,
				state = CASE WHEN $4 THEN 'disabled' ELSE state END,
				state_reason = CASE WHEN $4 THEN $5 ELSE state_reason END,
				updated_at = CASE WHEN $4 THEN now() ELSE updated_at END
			WHERE id = $1`, seen.ID, r.AlertSince, r.AlertLevel, r.Disable, r.DisableReason); err != nil {
			return err
		}
		events, err := r.Events(open)
		if err != nil {
			return err
		}
		return emitOperational(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("report on subscription %q: %w", seen.ID, err)
	}
	return nil
}

// opIngestSQL stores an operational event and fans it out to the active
// subscriptions of its tenant that match it, as ingestSQL does, with
// deliveries that the retry scheduler publishes and whose failures are not
// reported.
var opIngestSQL = fanOutSQL(`s.match_keys`, true)

// emitOperational stores operational events within tx. An event whose id
// is stored already (reported before) stores nothing.
func emitOperational(ctx context.Context, tx pgx.Tx, events []domain.Event) error {
	if len(events) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, e := range events {
		e = withTenant(e)
		b.Queue(opIngestSQL, e.ID, e.Type, e.Source, e.Data, domain.TenantKeys(e.TenantID, e.Type), e.TenantID,
			pgtype.Int4{}, (*bool)(nil), pgtype.Text{})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("store %d operational events: %w", len(events), err)
	}
	return nil
}

// OperationalSource is the source of every operational event.
const OperationalSource = "dispatch"

// exhaustedSQL takes up to $1 failed deliveries whose failure is still to
// be reported, marks them reported and returns what the report says.
// SKIP LOCKED: concurrent schedulers take different ones.
const exhaustedSQL = `
WITH f AS (
	SELECT id FROM deliveries WHERE status = 'failed' AND report_failure
	ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d SET report_failure = false
FROM f, subscriptions s, events e
WHERE d.id = f.id AND s.id = d.subscription_id AND e.id = d.event_id
RETURNING d.id, d.event_id, e.type, d.subscription_id, s.tenant_id, s.url, d.attempts, d.last_status_code, d.last_error`

// ReportExhausted reports up to limit deliveries that failed for good, each
// as a dispatch.delivery.exhausted event (ADR 0037) stored in the same
// transaction that marks it reported, of the default tenant or, with
// bySubscriptionTenant, of the delivery's subscription's tenant. now is
// the events' occurred_at. It returns how many it reported.
func (s *Store) ReportExhausted(ctx context.Context, limit int, bySubscriptionTenant bool, now time.Time) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, exhaustedSQL, limit)
		if err != nil {
			return err
		}
		events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Event, error) {
			var (
				d    domain.OperationalData
				code pgtype.Int4
				url  string
			)
			if err := r.Scan(&d.DeliveryID, &d.EventID, &d.EventType, &d.SubscriptionID, &d.TenantID, &url, &d.Attempts, &code, &d.LastError); err != nil {
				return domain.Event{}, err
			}
			if code.Valid {
				c := int(code.Int32)
				d.LastStatusCode = &c
			}
			d.URL = domain.RedactURL(url)
			d.Reason = fmt.Sprintf("the delivery failed for good after %d attempts", d.Attempts)
			d.OccurredAt = now.UTC()
			data, err := json.Marshal(d)
			if err != nil {
				return domain.Event{}, err
			}
			tenant := domain.DefaultTenant
			if bySubscriptionTenant {
				tenant = d.TenantID
			}
			return domain.Event{
				ID:   domain.OperationalEventID(domain.OpDeliveryExhausted, fmt.Sprint(d.DeliveryID), d.EventID, d.SubscriptionID),
				Type: domain.OpDeliveryExhausted, TenantID: tenant, Source: OperationalSource, Data: data,
			}, nil
		})
		if err != nil {
			return err
		}
		n = len(events)
		return emitOperational(ctx, tx, events)
	})
	if err != nil {
		return 0, fmt.Errorf("report exhausted deliveries: %w", err)
	}
	return n, nil
}
