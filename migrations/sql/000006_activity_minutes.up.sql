-- Activity per minute, rolled up by the retry scheduler once each minute has
-- closed, so that GET /stats over a day or a week adds up at most a few
-- thousand rows instead of counting millions (ADR 18).
CREATE TABLE activity_minutes (
    minute           timestamptz PRIMARY KEY,
    events_received  bigint NOT NULL,
    delivered        bigint NOT NULL,
    retrying         bigint NOT NULL,
    failed           bigint NOT NULL
);
