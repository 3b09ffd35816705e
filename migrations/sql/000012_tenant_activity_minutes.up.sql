-- Activity per tenant and minute, for GET /stats?tenant_id= (ADR 18, ADR
-- 28). The roll-up adds a row here for each tenant with activity in a
-- closed minute, in the statement that adds the minute's row for the whole
-- deployment to activity_minutes; a tenant without a row for a minute had
-- none. activity_minutes stays as it was, so that reading the whole
-- deployment's minutes costs what it did. Minutes rolled up before this
-- migration have no rows here: a tenant's figures start from it.
CREATE TABLE tenant_activity_minutes (
    tenant_id        text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    minute           timestamptz NOT NULL,
    events_received  bigint NOT NULL,
    delivered        bigint NOT NULL,
    retrying         bigint NOT NULL,
    failed           bigint NOT NULL,
    -- A tenant's window is one range of the key.
    PRIMARY KEY (tenant_id, minute)
);
-- The roll-up drops minutes older than any window by time.
CREATE INDEX tenant_activity_minutes_minute ON tenant_activity_minutes (minute);
