ALTER TABLE subscriptions
    DROP COLUMN IF EXISTS rate_limit_per_second,
    DROP COLUMN IF EXISTS max_concurrency;
