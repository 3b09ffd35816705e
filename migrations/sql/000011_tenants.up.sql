-- Tenants: the customers one deployment serves (ADR 0028). Everything that
-- existed before belongs to the built-in tenant 'default', which callers
-- that never mention tenants keep using without knowing it.
CREATE TABLE tenants (
    id                     text PRIMARY KEY,
    name                   text NOT NULL DEFAULT '',
    metadata               jsonb NOT NULL DEFAULT '{}',
    -- Defaults for the tenant's subscriptions; NULL means the service-wide one.
    max_attempts           integer CHECK (max_attempts BETWEEN 1 AND 100),
    retry_base_ms          bigint,
    retry_max_ms           bigint,
    timeout_ms             integer,
    rate_limit_per_second  integer CHECK (rate_limit_per_second BETWEEN 1 AND 100000),
    max_concurrency        integer CHECK (max_concurrency BETWEEN 1 AND 10000),
    -- How many subscriptions the tenant may have; NULL means no bound.
    max_subscriptions      integer CHECK (max_subscriptions >= 1),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tenants (id, name) VALUES ('default', 'Default');

-- A subscription's tenant never changes. Deleting a tenant deletes its
-- subscriptions, and with them their deliveries and attempts.
ALTER TABLE subscriptions
    ADD COLUMN tenant_id text NOT NULL DEFAULT 'default' REFERENCES tenants (id) ON DELETE CASCADE;
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, id);

-- match_keys holds each of a subscription's patterns prefixed with its
-- tenant, so that fan-out finds one tenant's matching subscriptions with a
-- single lookup in one index, however many tenants there are
-- (domain.TenantKeys). It is stored rather than computed in the index
-- alone because fan-out compares it again for every candidate row.
CREATE FUNCTION tenant_keys(tenant text, patterns text[]) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ARRAY(SELECT tenant || '/' || p FROM unnest(patterns) AS p);
ALTER TABLE subscriptions
    ADD COLUMN match_keys text[] GENERATED ALWAYS AS (tenant_keys(tenant_id, event_types)) STORED;
-- Without fastupdate: GIN's default keeps new entries in a pending list
-- that every search reads in full until a vacuum merges it, and fan-out
-- searches on every event while subscriptions change seldom. 100,000
-- subscriptions created at once made each fan-out read 10 ms of pending
-- list (ingest fell from 3,800 to 105 events/s) until autovacuum came by.
CREATE INDEX subscriptions_active_match_keys ON subscriptions USING gin (match_keys)
    WITH (fastupdate = off) WHERE state = 'active';
-- The same for the index on plain patterns (events sent to every tenant),
-- whose pending list is merged now.
ALTER INDEX subscriptions_active_event_types SET (fastupdate = off);
SELECT gin_clean_pending_list('subscriptions_active_event_types');

-- An event's tenant; NULL for an event sent to every tenant ("*").
ALTER TABLE events
    ADD COLUMN tenant_id text DEFAULT 'default' REFERENCES tenants (id) ON DELETE CASCADE;
CREATE INDEX events_tenant_received_at ON events (tenant_id, received_at DESC, id DESC);

-- A key bound to a tenant sees and changes only that tenant's data.
ALTER TABLE api_keys
    ADD COLUMN tenant_id text REFERENCES tenants (id) ON DELETE CASCADE;
