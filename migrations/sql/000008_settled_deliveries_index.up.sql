-- GET /stats, the timeline and the activity roll-up count the deliveries
-- that reached delivered, retrying or failed within a time range; they never
-- count pending or processing ones. Holding only those statuses, the index
-- is written once per attempt's outcome instead of on every write: a
-- delivery's insert and its claim no longer touch it (docs/PERFORMANCE.md,
-- "Where the time goes").
CREATE INDEX deliveries_settled_updated ON deliveries (status, updated_at)
    WHERE status IN ('delivered', 'retrying', 'failed');
DROP INDEX deliveries_status_updated;
