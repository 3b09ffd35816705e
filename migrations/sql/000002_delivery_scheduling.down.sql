DROP INDEX IF EXISTS deliveries_subscription_status;
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, created_at DESC);
ALTER TABLE subscriptions
    DROP COLUMN IF EXISTS max_attempts,
    DROP COLUMN IF EXISTS retry_base_ms,
    DROP COLUMN IF EXISTS retry_max_ms,
    DROP COLUMN IF EXISTS timeout_ms;
ALTER TABLE deliveries ADD COLUMN locked_until timestamptz;
UPDATE deliveries SET locked_until = next_attempt_at WHERE status = 'processing';
ALTER TABLE deliveries DROP COLUMN enqueued_at;
