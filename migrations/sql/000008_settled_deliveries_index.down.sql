CREATE INDEX deliveries_status_updated ON deliveries (status, updated_at);
DROP INDEX deliveries_settled_updated;
