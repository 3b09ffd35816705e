package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Stats summarises recent activity and the work waiting now.
type Stats struct {
	// From and To are the window, as the database's clock saw it.
	From, To time.Time
	// EventsReceived counts events received within the window.
	EventsReceived int64
	// Delivered, Retrying and Failed count deliveries that reached that
	// status within the window and were still in it when their minute was
	// rolled up (or, for the minutes not rolled up yet, are in it now).
	Delivered, Retrying, Failed int64
	// BacklogDue counts open deliveries (pending, processing or retrying)
	// that are due now: waiting for a worker, whatever their subscription's
	// state. OldestDue is the earliest due time among them, nil when none.
	BacklogDue int64
	OldestDue  *time.Time
}

// MaxStatsWindow is the longest window Stats adds up; activity_minutes
// keeps that much and a little more.
const MaxStatsWindow = 7 * 24 * time.Hour

// rollUpDelay lets the transactions of a minute commit before the minute is
// rolled up: a row's updated_at is its transaction's start, which may be a
// little before it becomes visible.
const rollUpDelay = 30 * time.Second

// rollUpSQL adds up the closed minutes that follow the last one rolled up
// (at first, those of the last MaxStatsWindow), at most $1 of them, each
// from the indexes in a minute's range, and drops minutes older than any
// window. Several schedulers may run it at once: a minute is inserted once.
const rollUpSQL = `
WITH bounds AS (
	SELECT coalesce((SELECT max(minute) + interval '1 minute' FROM activity_minutes),
	                date_trunc('minute', now() - $2::interval)) AS first,
	       date_trunc('minute', now() - $3::interval) - interval '1 minute' AS last
), pruned AS (
	DELETE FROM activity_minutes WHERE minute < now() - $2::interval - interval '1 hour'
)
INSERT INTO activity_minutes (minute, events_received, delivered, retrying, failed)
SELECT m,
	(SELECT count(*) FROM events WHERE received_at >= m AND received_at < m + interval '1 minute'),
	(SELECT count(*) FROM deliveries WHERE status = 'delivered' AND updated_at >= m AND updated_at < m + interval '1 minute'),
	(SELECT count(*) FROM deliveries WHERE status = 'retrying' AND updated_at >= m AND updated_at < m + interval '1 minute'),
	(SELECT count(*) FROM deliveries WHERE status = 'failed' AND updated_at >= m AND updated_at < m + interval '1 minute')
FROM bounds, generate_series(bounds.first, bounds.last, interval '1 minute') AS m
ORDER BY m
LIMIT $1
ON CONFLICT (minute) DO NOTHING`

// RollUpActivity rolls up at most limit closed minutes and reports how many.
func (s *Store) RollUpActivity(ctx context.Context, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, rollUpSQL, limit, MaxStatsWindow, rollUpDelay)
	if err != nil {
		return 0, fmt.Errorf("roll up activity: %w", err)
	}
	return tag.RowsAffected(), nil
}

// statsSQL adds the rolled-up minutes that lie wholly inside the window to
// live counts over the rest of it: the part before the first whole minute
// and everything after the last minute rolled up (normally the last minute
// or two). The live counts use the indexes on events (received_at) and on
// settled deliveries (status, updated_at); the backlog uses the open
// deliveries' partial index by due time.
const statsSQL = `
WITH w AS (
	SELECT now() - $1::interval AS from_, now() AS to_,
	       date_trunc('minute', now() - $1::interval + interval '1 minute' - interval '1 microsecond') AS first_whole
), r AS (
	SELECT greatest(w.first_whole, coalesce((SELECT max(minute) + interval '1 minute' FROM activity_minutes), w.first_whole)) AS rolled_until
	FROM w
), rolled AS (
	SELECT coalesce(sum(a.events_received), 0) AS e, coalesce(sum(a.delivered), 0) AS d,
	       coalesce(sum(a.retrying), 0) AS rt, coalesce(sum(a.failed), 0) AS f
	FROM activity_minutes a, w, r
	WHERE a.minute >= w.first_whole AND a.minute < r.rolled_until
)
SELECT w.from_, w.to_,
	rolled.e + (SELECT count(*) FROM events WHERE received_at >= w.from_ AND received_at < w.first_whole) + (SELECT count(*) FROM events WHERE received_at >= r.rolled_until),
	rolled.d + (SELECT count(*) FROM deliveries WHERE status = 'delivered' AND updated_at >= w.from_ AND updated_at < w.first_whole) + (SELECT count(*) FROM deliveries WHERE status = 'delivered' AND updated_at >= r.rolled_until),
	rolled.rt + (SELECT count(*) FROM deliveries WHERE status = 'retrying' AND updated_at >= w.from_ AND updated_at < w.first_whole) + (SELECT count(*) FROM deliveries WHERE status = 'retrying' AND updated_at >= r.rolled_until),
	rolled.f + (SELECT count(*) FROM deliveries WHERE status = 'failed' AND updated_at >= w.from_ AND updated_at < w.first_whole) + (SELECT count(*) FROM deliveries WHERE status = 'failed' AND updated_at >= r.rolled_until),
	(SELECT count(*) FROM deliveries WHERE status IN ` + openStatuses + ` AND next_attempt_at <= now()),
	(SELECT min(next_attempt_at) FROM deliveries WHERE status IN ` + openStatuses + ` AND next_attempt_at <= now())
FROM w, r, rolled`

// Stats counts activity over the window that ends now (at most
// MaxStatsWindow), and the backlog now.
func (s *Store) Stats(ctx context.Context, window time.Duration) (_ Stats, err error) {
	defer markUnavailable(&err)
	var (
		st     Stats
		oldest pgtype.Timestamptz
	)
	err = s.pool.QueryRow(ctx, statsSQL, window).Scan(&st.From, &st.To,
		&st.EventsReceived, &st.Delivered, &st.Retrying, &st.Failed, &st.BacklogDue, &oldest)
	if err != nil {
		return Stats{}, fmt.Errorf("stats over %s: %w", window, err)
	}
	st.OldestDue = timePtr(oldest)
	return st, nil
}

// Backlog is the open deliveries that are due now, by status.
type Backlog struct {
	// Due counts them by status: pending, processing (a lapsed claim) and
	// retrying; every open status is present, zero when none is due.
	Due map[string]int64
	// OldestDue is the earliest due time among them, zero when none.
	OldestDue time.Time
}

// Backlog reads the work waiting for a worker now, from the open
// deliveries' partial index.
func (s *Store) Backlog(ctx context.Context) (Backlog, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, count(*), min(next_attempt_at) FROM deliveries
		WHERE status IN `+openStatuses+` AND next_attempt_at <= now() GROUP BY status`)
	if err != nil {
		return Backlog{}, fmt.Errorf("backlog: %w", err)
	}
	b := Backlog{Due: map[string]int64{"pending": 0, "processing": 0, "retrying": 0}}
	for rows.Next() {
		var (
			status string
			n      int64
			oldest time.Time
		)
		if err := rows.Scan(&status, &n, &oldest); err != nil {
			return Backlog{}, fmt.Errorf("backlog: %w", err)
		}
		b.Due[status] = n
		if b.OldestDue.IsZero() || oldest.Before(b.OldestDue) {
			b.OldestDue = oldest
		}
	}
	if err := rows.Err(); err != nil {
		return Backlog{}, fmt.Errorf("backlog: %w", err)
	}
	return b, nil
}

// MinuteActivity is what happened in one minute.
type MinuteActivity struct {
	Minute                      time.Time
	EventsReceived              int64
	Delivered, Retrying, Failed int64
}

// MaxTimelineWindow is the longest window Timeline answers minute by minute.
const MaxTimelineWindow = 24 * time.Hour

// timelineSQL reads the rolled-up minutes of the window and counts the
// minutes not rolled up yet live, grouped by minute, from the same indexes
// as statsSQL.
const timelineSQL = `
WITH w AS (
	SELECT date_trunc('minute', now() - $1::interval) AS first
), r AS (
	SELECT greatest(w.first, coalesce((SELECT max(minute) + interval '1 minute' FROM activity_minutes), w.first)) AS rolled_until
	FROM w
)
SELECT minute, events_received, delivered, retrying, failed
FROM activity_minutes, w, r WHERE minute >= w.first AND minute < r.rolled_until
UNION ALL
SELECT m, sum(e), sum(d), sum(rt), sum(f) FROM (
	SELECT date_trunc('minute', received_at) AS m, count(*) AS e, 0 AS d, 0 AS rt, 0 AS f
	FROM events, r WHERE received_at >= r.rolled_until GROUP BY 1
	UNION ALL
	SELECT date_trunc('minute', updated_at), 0, count(*) FILTER (WHERE status = 'delivered'),
	       count(*) FILTER (WHERE status = 'retrying'), count(*) FILTER (WHERE status = 'failed')
	FROM deliveries, r WHERE status IN ('delivered', 'retrying', 'failed') AND updated_at >= r.rolled_until GROUP BY 1
) live GROUP BY m
ORDER BY 1`

// Timeline returns the activity of every minute in the window that ends
// now (at most MaxTimelineWindow), oldest first; minutes without activity
// are present with zeros.
func (s *Store) Timeline(ctx context.Context, window time.Duration) (_ []MinuteActivity, err error) {
	defer markUnavailable(&err)
	rows, err := s.pool.Query(ctx, timelineSQL, window)
	if err != nil {
		return nil, fmt.Errorf("timeline over %s: %w", window, err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MinuteActivity, error) {
		var m MinuteActivity
		err := r.Scan(&m.Minute, &m.EventsReceived, &m.Delivered, &m.Retrying, &m.Failed)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("timeline over %s: %w", window, err)
	}
	// Every minute of the window, in order, zero where nothing happened.
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-window.Truncate(time.Minute))
	out := make([]MinuteActivity, 0, int(window/time.Minute)+1)
	i := 0
	for m := start; !m.After(end); m = m.Add(time.Minute) {
		for i < len(got) && got[i].Minute.Before(m) {
			i++
		}
		if i < len(got) && got[i].Minute.Equal(m) {
			out = append(out, got[i])
			continue
		}
		out = append(out, MinuteActivity{Minute: m})
	}
	return out, nil
}
