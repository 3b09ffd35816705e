-- Attempts per subscription and hour, for the activity of the portal's
-- Endpoints page and GET /subscriptions?activity=true (ADR 35). The
-- activity roll-up adds each closed minute's attempts to the row of their
-- subscription and hour, in the statement that rolls the minute up for
-- GET /stats, so a page of endpoints reads 25 rows each however busy they
-- are.
CREATE TABLE subscription_activity_hours (
    subscription_id  text NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    hour             timestamptz NOT NULL,
    attempts         bigint NOT NULL,
    succeeded        bigint NOT NULL,
    -- A subscription's window is one range of the key.
    PRIMARY KEY (subscription_id, hour)
);
-- The roll-up and retention drop hours older than the window by time.
CREATE INDEX subscription_activity_hours_hour ON subscription_activity_hours (hour);

-- When an attempt was stored, by the database's clock (its transaction's
-- start, as deliveries.updated_at): the roll-up counts a minute's attempts
-- from this index, 30 s after the minute closes, as it counts the
-- deliveries that settled in it. started_at is the worker's clock and an
-- attempt is stored up to its timeout after it started, so a minute could
-- not be closed by it. Added without a default first, so that no existing
-- row is given the migration's time: attempts stored before it stay NULL
-- and are counted by no hour.
ALTER TABLE attempts ADD COLUMN recorded_at timestamptz;
ALTER TABLE attempts ALTER COLUMN recorded_at SET DEFAULT now();
CREATE INDEX attempts_recorded_at ON attempts (recorded_at);
