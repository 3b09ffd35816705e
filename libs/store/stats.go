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
// (at first, those of the last MaxStatsWindow), at most $1 of them, and
// drops minutes older than any window. Each minute gets its row for the
// whole deployment in activity_minutes and, in tenant_activity_minutes,
// one per tenant with activity in it: the events of the tenant (an event
// sent to every tenant, with a NULL tenant, counts in the whole
// deployment's row only) and the deliveries to its subscriptions. Each
// minute is read once from the indexes over its range, grouped by tenant
// (events) and by subscription (deliveries), and feeds both kinds of row;
// a delivery's tenant is its subscription's, joined once per subscription
// and minute rather than per delivery. The attempts stored in each minute
// of the last ActivityWindow (and the rest of its first hour) are added to
// their subscription's row for the hour in subscription_activity_hours
// (ADR 35), read from the attempts' index by the time they were stored.
// Several schedulers may run it at once: the one that inserts a minute's
// whole-deployment row inserts its tenants' rows and adds its attempts
// too, and the others, finding that row taken, insert none of the
// minute's; two adding different minutes to one hour wait for each other
// on the hour's row.
var rollUpSQL = `
WITH bounds AS (
	SELECT f.first, least(f.first + ($1::int - 1) * interval '1 minute',
	                      date_trunc('minute', now() - $3::interval) - interval '1 minute') AS last
	FROM (SELECT coalesce(` + rolledUntil + `, date_trunc('minute', now() - $2::interval)) AS first) f
), pruned AS (
	DELETE FROM activity_minutes WHERE minute < now() - $2::interval - interval '1 hour'
), pruned_tenants AS (
	DELETE FROM tenant_activity_minutes WHERE minute < now() - $2::interval - interval '1 hour'
), minutes AS (
	SELECT m FROM bounds, generate_series(bounds.first, bounds.last, interval '1 minute') AS m
), received AS (
	SELECT m AS minute, e.tenant_id, e.n
	FROM minutes, LATERAL (
		SELECT tenant_id, count(*) AS n FROM events
		WHERE received_at >= m AND received_at < m + interval '1 minute' GROUP BY 1) e
), settled AS (
	SELECT m AS minute, d.subscription_id, d.delivered, d.retrying, d.failed
	FROM minutes, LATERAL (
		SELECT subscription_id,
		       count(*) FILTER (WHERE status = 'delivered') AS delivered,
		       count(*) FILTER (WHERE status = 'retrying') AS retrying,
		       count(*) FILTER (WHERE status = 'failed') AS failed
		FROM (` + settledIn("delivered") + ` UNION ALL ` + settledIn("retrying") + ` UNION ALL ` + settledIn("failed") + `) x
		GROUP BY 1) d
), settled_by_tenant AS (
	SELECT st.minute, s.tenant_id, sum(st.delivered) AS delivered, sum(st.retrying) AS retrying, sum(st.failed) AS failed
	FROM settled st JOIN subscriptions s ON s.id = st.subscription_id
	GROUP BY 1, 2
), attempted AS (
	SELECT m AS minute, x.subscription_id, x.n, x.ok
	FROM minutes, LATERAL (
		SELECT d.subscription_id, count(*) AS n, count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299) AS ok
		FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
		WHERE a.recorded_at >= m AND a.recorded_at < m + interval '1 minute'
		GROUP BY 1) x
	WHERE m >= date_trunc('hour', now() - $4::interval)
), whole AS (
	INSERT INTO activity_minutes (minute, events_received, delivered, retrying, failed)
	SELECT m, coalesce(r.n, 0), coalesce(st.delivered, 0), coalesce(st.retrying, 0), coalesce(st.failed, 0)
	FROM minutes
	LEFT JOIN (SELECT minute, sum(n) AS n FROM received GROUP BY 1) r ON r.minute = m
	LEFT JOIN (SELECT minute, sum(delivered) AS delivered, sum(retrying) AS retrying, sum(failed) AS failed
	           FROM settled GROUP BY 1) st ON st.minute = m
	ON CONFLICT (minute) DO NOTHING
	RETURNING minute
), per_tenant AS (
	INSERT INTO tenant_activity_minutes (tenant_id, minute, events_received, delivered, retrying, failed)
	SELECT coalesce(r.tenant_id, st.tenant_id), coalesce(r.minute, st.minute),
	       coalesce(r.n, 0), coalesce(st.delivered, 0), coalesce(st.retrying, 0), coalesce(st.failed, 0)
	FROM (SELECT * FROM received WHERE tenant_id IS NOT NULL) r
	FULL JOIN settled_by_tenant st ON st.minute = r.minute AND st.tenant_id = r.tenant_id
	WHERE coalesce(r.minute, st.minute) IN (SELECT minute FROM whole)
	ON CONFLICT (tenant_id, minute) DO NOTHING
), per_subscription AS (
	INSERT INTO subscription_activity_hours AS h (subscription_id, hour, attempts, succeeded)
	SELECT subscription_id, date_trunc('hour', minute), sum(n), sum(ok)
	FROM attempted WHERE minute IN (SELECT minute FROM whole)
	GROUP BY 1, 2
	ON CONFLICT (subscription_id, hour) DO UPDATE
	SET attempts = h.attempts + excluded.attempts, succeeded = h.succeeded + excluded.succeeded
), pruned_hours AS (
	DELETE FROM subscription_activity_hours WHERE hour < now() - $4::interval - interval '1 hour'
)
SELECT count(*) FROM whole`

// settledIn selects the deliveries that entered status within minute m.
// The status is a constant so that the scan is a range of the settled
// deliveries' partial index (status, updated_at): a condition on the three
// statuses at once is implied by the index's predicate, so the planner
// would drop it and walk the whole index, checking each entry's time.
func settledIn(status string) string {
	return `SELECT status, subscription_id FROM deliveries WHERE status = '` + status +
		`' AND updated_at >= m AND updated_at < m + interval '1 minute'`
}

// RollUpActivity rolls up at most limit closed minutes and reports how many.
func (s *Store) RollUpActivity(ctx context.Context, limit int) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The planner cannot know how many minutes a batch spans and takes
		// a thousand, which prices the statement high enough for JIT
		// compilation: that took 0.1 to 0.9 s, where the statement runs in
		// tens of milliseconds on a busy minute.
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, rollUpSQL, limit, MaxStatsWindow, rollUpDelay, ActivityWindow).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("roll up activity: %w", err)
	}
	return n, nil
}

// activityFilter restricts the statements of Stats and Timeline to a
// scope: the rolled-up minutes they add up, and the events and deliveries
// they count live. A tenant's statement takes the tenant as $2; the whole
// deployment's reads activity_minutes and has no condition on events or
// deliveries, so its counts read the indexes on time alone.
type activityFilter struct{ minutes, minutesOf, events, deliveries string }

var (
	wholeDeployment = activityFilter{minutes: `activity_minutes`}
	oneTenant       = activityFilter{
		minutes:   `tenant_activity_minutes`,
		minutesOf: ` AND a.tenant_id = $2`,
		// The index events (tenant_id, received_at).
		events: ` AND tenant_id = $2`,
		// The settled or open deliveries' index by time, each checked
		// against the tenant's subscriptions.
		deliveries: ` AND subscription_id IN (SELECT id FROM subscriptions WHERE tenant_id = $2)`,
	}
)

// rolledUntil is the end of the minutes rolled up: every closed minute has
// the whole deployment's row, and a tenant without a row for one had no
// activity in it.
const rolledUntil = `(SELECT max(minute) + interval '1 minute' FROM activity_minutes)`

// statsSQL adds the rolled-up minutes that lie wholly inside the window to
// live counts over the rest of it: the part before the first whole minute
// and everything after the last minute rolled up (normally the last minute
// or two). The live counts use the indexes on events (received_at, or
// tenant_id and received_at) and on settled deliveries (status,
// updated_at); the backlog uses the open deliveries' partial index by due
// time.
//
// The tail's upper bound, infinity, excludes nothing but gives the range
// two ends: the planner cannot see where the tail starts, and from an
// open-ended range it expects a third of the table, so it would read the
// whole table to find a tenant's deliveries; from a range with two ends it
// expects few rows and takes the index.
func statsSQL(f activityFilter) string {
	live := func(status, when string) string {
		return `(SELECT count(*) FROM deliveries WHERE status = '` + status + `' AND ` + when + f.deliveries + `)`
	}
	counts := func(status, rolled string) string {
		return rolled + ` + ` + live(status, `updated_at >= w.from_ AND updated_at < w.first_whole`) +
			` + ` + live(status, `updated_at >= r.rolled_until AND updated_at < 'infinity'`)
	}
	due := ` FROM deliveries WHERE status IN ` + openStatuses + ` AND next_attempt_at <= now()` + f.deliveries + `)`
	return `
WITH w AS (
	SELECT now() - $1::interval AS from_, now() AS to_,
	       date_trunc('minute', now() - $1::interval + interval '1 minute' - interval '1 microsecond') AS first_whole
), r AS (
	SELECT greatest(w.first_whole, coalesce(` + rolledUntil + `, w.first_whole)) AS rolled_until
	FROM w
), rolled AS (
	SELECT coalesce(sum(a.events_received), 0) AS e, coalesce(sum(a.delivered), 0) AS d,
	       coalesce(sum(a.retrying), 0) AS rt, coalesce(sum(a.failed), 0) AS f
	FROM ` + f.minutes + ` a, w, r
	WHERE a.minute >= w.first_whole AND a.minute < r.rolled_until` + f.minutesOf + `
)
SELECT w.from_, w.to_,
	rolled.e + (SELECT count(*) FROM events WHERE received_at >= w.from_ AND received_at < w.first_whole` + f.events + `)
		+ (SELECT count(*) FROM events WHERE received_at >= r.rolled_until AND received_at < 'infinity'` + f.events + `),
	` + counts("delivered", "rolled.d") + `,
	` + counts("retrying", "rolled.rt") + `,
	` + counts("failed", "rolled.f") + `,
	(SELECT count(*)` + due + `,
	(SELECT min(next_attempt_at)` + due + `
FROM w, r, rolled`
}

var (
	statsWholeSQL  = statsSQL(wholeDeployment)
	statsTenantSQL = statsSQL(oneTenant)
)

// Stats counts the scope's activity over the window that ends now (at most
// MaxStatsWindow), and its backlog now. A tenant's events are those posted
// for it, and its deliveries those to its subscriptions: an event sent to
// every tenant counts in the whole deployment's events only, and its
// deliveries in each tenant they went to.
func (s *Store) Stats(ctx context.Context, scope Scope, window time.Duration) (_ Stats, err error) {
	defer markUnavailable(&err)
	var (
		st     Stats
		oldest pgtype.Timestamptz
	)
	q, args := statsWholeSQL, []any{window}
	if t := scope.tenant; t != "" {
		q, args = statsTenantSQL, append(args, t)
	}
	err = s.pool.QueryRow(ctx, q, args...).Scan(&st.From, &st.To,
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
// and over the same tail as statsSQL.
func timelineSQL(f activityFilter) string {
	return `
WITH w AS (
	SELECT date_trunc('minute', now() - $1::interval) AS first
), r AS (
	SELECT greatest(w.first, coalesce(` + rolledUntil + `, w.first)) AS rolled_until
	FROM w
)
SELECT a.minute, a.events_received, a.delivered, a.retrying, a.failed
FROM ` + f.minutes + ` a, w, r WHERE a.minute >= w.first AND a.minute < r.rolled_until` + f.minutesOf + `
UNION ALL
SELECT m, sum(e), sum(d), sum(rt), sum(f) FROM (
	SELECT date_trunc('minute', received_at) AS m, count(*) AS e, 0 AS d, 0 AS rt, 0 AS f
	FROM events, r WHERE received_at >= r.rolled_until AND received_at < 'infinity'` + f.events + ` GROUP BY 1
	UNION ALL
	SELECT date_trunc('minute', updated_at), 0, count(*) FILTER (WHERE status = 'delivered'),
	       count(*) FILTER (WHERE status = 'retrying'), count(*) FILTER (WHERE status = 'failed')
	FROM deliveries, r WHERE status IN ('delivered', 'retrying', 'failed') AND updated_at >= r.rolled_until AND updated_at < 'infinity'` + f.deliveries + ` GROUP BY 1
) live GROUP BY m
ORDER BY 1`
}

var (
	timelineWholeSQL  = timelineSQL(wholeDeployment)
	timelineTenantSQL = timelineSQL(oneTenant)
)

// Timeline returns the scope's activity (counted as Stats counts it) in
// every minute of the window that ends now (at most MaxTimelineWindow),
// oldest first; minutes without activity are present with zeros.
func (s *Store) Timeline(ctx context.Context, scope Scope, window time.Duration) (_ []MinuteActivity, err error) {
	defer markUnavailable(&err)
	q, args := timelineWholeSQL, []any{window}
	if t := scope.tenant; t != "" {
		q, args = timelineTenantSQL, append(args, t)
	}
	rows, err := s.pool.Query(ctx, q, args...)
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
	return everyMinute(window, got), nil
}

// NoActivity is the timeline of a scope that sees nothing: every minute of
// the window that ends now, with zeros.
func NoActivity(window time.Duration) []MinuteActivity { return everyMinute(window, nil) }

// everyMinute is every minute of the window that ends now, in order: those
// of got (ordered by minute) as they are, the others with zeros.
func everyMinute(window time.Duration, got []MinuteActivity) []MinuteActivity {
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
	return out
}
