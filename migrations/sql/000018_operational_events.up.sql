-- Operational events (ADR 0037). failing_since is when the subscription's
-- current run of failed attempts began: set by the worker's outcome
-- statement on the first failed attempt after a success (or ever), cleared
-- on the next success; both writes happen only when it changes, so a
-- steadily healthy or steadily failing endpoint costs no write. Attempts
-- of operational events do not move it.
ALTER TABLE subscriptions
    ADD COLUMN failing_since timestamptz,
    -- What the retry scheduler has reported of that run: alert_since is
    -- the failing_since it reported on, alert_level the highest threshold
    -- reported (50, 70, 90 per cent of AUTO_DISABLE_AFTER; 100 once the
    -- subscription is reported disabled).
    ADD COLUMN alert_since timestamptz,
    ADD COLUMN alert_level smallint NOT NULL DEFAULT 0 CHECK (alert_level BETWEEN 0 AND 100);
-- Subscriptions disabled before this migration were disabled before
-- anyone could be told: nothing to report.
UPDATE subscriptions SET alert_level = 100 WHERE state = 'disabled';
-- The scheduler's check reads only the subscriptions that may have
-- something to report: failing or reported on while active, or disabled
-- and not reported yet. Normally a handful.
CREATE INDEX subscriptions_health ON subscriptions (id)
    WHERE (state = 'active' AND (failing_since IS NOT NULL OR alert_level > 0))
       OR (state = 'disabled' AND alert_level < 100);

-- A failed delivery whose failure is still to be reported as a
-- dispatch.delivery.exhausted event. Existing rows get false (their
-- failures are history, and a constant default rewrites nothing); new
-- rows true, except the deliveries of operational events themselves,
-- which are stored with false so that their failures report nothing.
ALTER TABLE deliveries ADD COLUMN report_failure boolean NOT NULL DEFAULT false;
ALTER TABLE deliveries ALTER COLUMN report_failure SET DEFAULT true;
CREATE INDEX deliveries_failure_unreported ON deliveries (id) WHERE status = 'failed' AND report_failure;
