-- Indexes for listing and searching events and deliveries, newest first with
-- keyset pages, and for the dashboard's stats (docs/PERFORMANCE.md has the
-- plans' timings at 1,000,000 events).

-- GET /events?type=...: an exact type is one range of this index, already in
-- page order; a pattern ('order.*') is a byte-wise prefix range, which only a
-- "C"-collated column orders the same way whatever the database's collation.
CREATE INDEX events_type_received_at ON events (type COLLATE "C", received_at DESC, id DESC);

-- GET /subscriptions/{id}/deliveries and GET /events?subscription_id=...:
-- one subscription's deliveries newest first. A delivery is created in the
-- statement that stores its event, so created_at is the event's received_at
-- and (created_at, event_id) is the event's keyset position.
CREATE INDEX deliveries_subscription_created ON deliveries (subscription_id, created_at DESC, event_id DESC);

-- GET /stats: deliveries that reached a status within the window, counted
-- from the index alone.
CREATE INDEX deliveries_status_updated ON deliveries (status, updated_at);

-- GET /events?status=pending|retrying|failed: the deliveries that make an
-- event so, newest first. Each holds only deliveries in its status, so
-- finding a page does not depend on how rare or old such events are.
CREATE INDEX deliveries_in_flight_created ON deliveries (created_at DESC, event_id DESC)
    WHERE status IN ('pending', 'processing');
CREATE INDEX deliveries_retrying_created ON deliveries (created_at DESC, event_id DESC)
    WHERE status = 'retrying';
CREATE INDEX deliveries_failed_created ON deliveries (created_at DESC, event_id DESC)
    WHERE status = 'failed';
