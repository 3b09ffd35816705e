package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Stats summarises recent activity and the work waiting now.
type Stats struct {
	// From and To are the window, as the database's clock saw it.
	From, To time.Time
	// EventsReceived counts events received within the window.
	EventsReceived int64
	// Delivered, Retrying and Failed count deliveries now in that status
	// whose status last changed within the window.
	Delivered, Retrying, Failed int64
	// BacklogDue counts open deliveries (pending, processing or retrying)
	// that are due now: waiting for a worker, whatever their subscription's
	// state. OldestDue is the earliest due time among them, nil when none.
	BacklogDue int64
	OldestDue  *time.Time
}

// statsSQL counts from indexes alone (index-only scans): events by
// received_at, deliveries by (status, updated_at), and the open deliveries'
// partial index by due time. Each count costs about the number of rows it
// counts, so a short window stays cheap however much history is stored.
const statsSQL = `
SELECT now() - $1::interval, now(),
	(SELECT count(*) FROM events WHERE received_at >= now() - $1::interval),
	(SELECT count(*) FROM deliveries WHERE status = 'delivered' AND updated_at >= now() - $1::interval),
	(SELECT count(*) FROM deliveries WHERE status = 'retrying' AND updated_at >= now() - $1::interval),
	(SELECT count(*) FROM deliveries WHERE status = 'failed' AND updated_at >= now() - $1::interval),
	count(*), min(d.next_attempt_at)
FROM deliveries d
WHERE d.status IN ` + openStatuses + ` AND d.next_attempt_at <= now()`

// Stats counts activity over the window that ends now.
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
