-- Per-destination limits enforced by the delivery workers through Redis;
-- NULL means the service-wide default.
ALTER TABLE subscriptions
    ADD COLUMN rate_limit_per_second integer CHECK (rate_limit_per_second BETWEEN 1 AND 100000),
    ADD COLUMN max_concurrency       integer CHECK (max_concurrency BETWEEN 1 AND 10000);
