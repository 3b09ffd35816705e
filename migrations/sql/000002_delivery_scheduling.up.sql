-- One due time for every open delivery, and when it was last handed to Kafka.
--
-- next_attempt_at is when an open delivery may next be attempted:
--   pending    -> when it was queued (at once)
--   processing -> when the worker's claim lapses (its lease)
--   retrying   -> when the retry is due
-- enqueued_at is when a Kafka record for it was last published, '-infinity'
-- when the delivery needs a new record (after a failed attempt, a claim, a
-- release). The retry scheduler publishes an open delivery that is due and
-- either needs a record or has had one waiting too long (lost).
ALTER TABLE deliveries ADD COLUMN enqueued_at timestamptz NOT NULL DEFAULT now();
UPDATE deliveries SET next_attempt_at = coalesce(locked_until, next_attempt_at, created_at)
    WHERE status IN ('pending', 'processing', 'retrying');
UPDATE deliveries SET next_attempt_at = NULL WHERE status IN ('delivered', 'failed');
ALTER TABLE deliveries DROP COLUMN locked_until;

-- Per-subscription delivery settings; NULL means the service-wide default.
ALTER TABLE subscriptions
    ADD COLUMN max_attempts      integer CHECK (max_attempts BETWEEN 1 AND 100),
    ADD COLUMN retry_base_ms     bigint  CHECK (retry_base_ms > 0),
    ADD COLUMN retry_max_ms      bigint  CHECK (retry_max_ms > 0),
    ADD COLUMN timeout_ms        integer CHECK (timeout_ms BETWEEN 100 AND 300000);

-- Bulk redelivery and the dashboard walk one subscription's deliveries by time.
DROP INDEX deliveries_subscription;
CREATE INDEX deliveries_subscription_status ON deliveries (subscription_id, status, created_at);
