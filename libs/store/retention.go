package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Pruned is what one PruneEvents batch did.
type Pruned struct {
	// Examined counts the expired events the batch looked at, deleted or
	// kept; fewer than the limit means the pass has reached the end.
	Examined int
	// Events, Deliveries and Attempts count the rows deleted.
	Events, Deliveries, Attempts int64
	// Last is the last event examined (oldest first): pass it as after to
	// continue the pass behind it. Nil when nothing was examined.
	Last *Position
}

// pruneSQL deletes one batch of expired events with their deliveries and
// attempts, in one statement and so in one short transaction (ADR 21).
//
//   - cand: the oldest $4 events received before now() - $1 and after the
//     pass's position ($2, $3), walked backwards along events_received_at
//     and locked with SKIP LOCKED, so that schedulers running side by side
//     take different events. Ingest never touches old events.
//   - locked: their deliveries, locked with SKIP LOCKED too, so the batch
//     never waits (a redelivery or a subscription being deleted may hold
//     some). FOR UPDATE returns each row as it is now, and holding it keeps
//     a redelivery from reopening it before the batch commits.
//   - doomed: the candidates that have no open delivery (pending,
//     processing, retrying) and no delivery left unlocked (its count as
//     locked equals its count in the snapshot); the others are kept and
//     looked at again on the next pass.
//   - then the doomed events' attempts, deliveries and events are deleted,
//     children first, so that the foreign keys' cascades find nothing left.
//
// Each set reaches a table as an array (= ANY (ARRAY(...))), whose size the
// planner cannot know, so it probes the indexes (events_received_at, the
// primary keys, deliveries (event_id, ...), attempts (delivery_id, ...))
// rather than hashing a whole table, whatever the statistics say.
const pruneSQL = `
WITH cand AS (
	SELECT id, received_at FROM events
	WHERE received_at < now() - $1::interval
	  AND (received_at, id) > ($2::timestamptz, $3::text)
	ORDER BY received_at, id
	LIMIT $4
	FOR UPDATE SKIP LOCKED
), locked AS (
	SELECT id, event_id, status FROM deliveries
	WHERE event_id = ANY (ARRAY(SELECT id FROM cand))
	FOR UPDATE SKIP LOCKED
), doomed AS (
	SELECT c.id FROM cand c
	LEFT JOIN (SELECT event_id, count(*) AS n, bool_or(status IN ` + openStatuses + `) AS open
	           FROM locked GROUP BY event_id) l ON l.event_id = c.id
	LEFT JOIN (SELECT event_id, count(*) AS n FROM deliveries
	           WHERE event_id = ANY (ARRAY(SELECT id FROM cand)) GROUP BY event_id) d ON d.event_id = c.id
	WHERE coalesce(l.n, 0) = coalesce(d.n, 0) AND NOT coalesce(l.open, false)
), doomed_deliveries AS (
	SELECT l.id FROM locked l JOIN doomed x ON x.id = l.event_id
), gone_attempts AS (
	DELETE FROM attempts WHERE delivery_id = ANY (ARRAY(SELECT id FROM doomed_deliveries))
	RETURNING 1
), gone_deliveries AS (
	DELETE FROM deliveries WHERE id = ANY (ARRAY(SELECT id FROM doomed_deliveries))
	RETURNING 1
), gone_events AS (
	DELETE FROM events WHERE id = ANY (ARRAY(SELECT id FROM doomed))
	RETURNING 1
), last AS (
	SELECT received_at, id FROM cand ORDER BY received_at DESC, id DESC LIMIT 1
)
SELECT (SELECT count(*) FROM cand), (SELECT count(*) FROM gone_events),
       (SELECT count(*) FROM gone_deliveries), (SELECT count(*) FROM gone_attempts),
       (SELECT received_at FROM last), (SELECT id FROM last)`

// PruneEvents deletes up to limit events received more than olderThan ago
// (by the database's clock), oldest first after the position after (nil:
// from the oldest), together with their deliveries and attempts, in one
// short transaction. An event any of whose deliveries is still open
// (pending, processing or retrying), or is locked by another transaction
// at that moment, is kept: it is examined, counted in Examined, and
// passed over. Any number of callers may run at once: each event is
// examined by one of them.
//
// A pass calls it with the Last of the previous batch until Examined is
// below limit; starting each pass from nil looks at kept events again.
func (s *Store) PruneEvents(ctx context.Context, olderThan time.Duration, after *Position, limit int) (_ Pruned, err error) {
	defer markUnavailable(&err)
	// A pass starts before every event.
	fromAt, fromID := pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, ""
	if after != nil {
		fromAt, fromID = pgtype.Timestamptz{Time: after.Time, Valid: true}, after.ID
	}
	var (
		p      Pruned
		lastAt pgtype.Timestamptz
		lastID pgtype.Text
	)
	err = s.pool.QueryRow(ctx, pruneSQL, olderThan, fromAt, fromID, limit).
		Scan(&p.Examined, &p.Events, &p.Deliveries, &p.Attempts, &lastAt, &lastID)
	if err != nil {
		return Pruned{}, fmt.Errorf("prune events older than %s: %w", olderThan, err)
	}
	if lastAt.Valid {
		p.Last = &Position{Time: lastAt.Time, ID: lastID.String}
	}
	return p, nil
}

// PruneActivityHours deletes the subscriptions' hours of activity (ADR 35)
// that ended more than olderThan ago, so that with a retention period
// shorter than the activity window no figure outlives the attempts it
// counts, and reports how many it deleted. The roll-up deletes those older
// than the window itself.
func (s *Store) PruneActivityHours(ctx context.Context, olderThan time.Duration) (_ int64, err error) {
	defer markUnavailable(&err)
	tag, err := s.pool.Exec(ctx, `DELETE FROM subscription_activity_hours WHERE hour < now() - $1::interval - interval '1 hour'`, olderThan)
	if err != nil {
		return 0, fmt.Errorf("prune activity hours older than %s: %w", olderThan, err)
	}
	return tag.RowsAffected(), nil
}
