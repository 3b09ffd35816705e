DROP INDEX deliveries_ordered_heads;
DROP INDEX deliveries_ordered;
DROP TABLE ordering_keys;
-- Held deliveries become due, unordered, as every delivery was before.
UPDATE deliveries SET next_attempt_at = now(), enqueued_at = '-infinity'
    WHERE status = 'pending' AND next_attempt_at IS NULL;
ALTER TABLE deliveries DROP COLUMN seq, DROP COLUMN ordering_key;
ALTER TABLE subscriptions DROP COLUMN ordering;
ALTER TABLE events DROP COLUMN ordering_key;
