-- A subscription's deliveries in one status, newest first, in keyset order:
-- GET /events?subscription_id=...&status=... and GET
-- /subscriptions/{id}/deliveries?status=... walk it page by page. It
-- replaces (subscription_id, status, created_at), which could not give the
-- page order without a sort.
CREATE INDEX deliveries_subscription_status_created ON deliveries (subscription_id, status, created_at DESC, event_id DESC);
DROP INDEX deliveries_subscription_status;
