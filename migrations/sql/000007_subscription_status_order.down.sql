CREATE INDEX deliveries_subscription_status ON deliveries (subscription_id, status, created_at);
DROP INDEX deliveries_subscription_status_created;
