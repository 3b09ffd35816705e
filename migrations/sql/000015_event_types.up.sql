-- The event-type catalog (ADR 0033). Event types are global: the operator
-- keeps one catalog that every tenant's events are held to.
CREATE TABLE event_types (
    name         text PRIMARY KEY,
    description  text NOT NULL DEFAULT '',
    deprecated   boolean NOT NULL DEFAULT false,
    validation   text NOT NULL DEFAULT 'enforce' CHECK (validation IN ('off', 'warn', 'enforce')),
    -- The latest row of event_type_versions.
    version      integer NOT NULL,
    -- A deleted type is archived: its name stays taken and its versions
    -- readable, and ingest treats it as unknown.
    archived_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Each schema an event type has had. json, not jsonb: a schema and its
-- examples are shown to people and published as they were written, their
-- members in their order.
CREATE TABLE event_type_versions (
    name        text NOT NULL REFERENCES event_types (name) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version >= 1),
    schema      json NOT NULL,
    examples    json NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- One row whose revision grows with every change to the catalog. Each API
-- instance polls it (one index-only read of one row) to know when to load
-- the catalog again.
CREATE TABLE catalog_revision (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    revision   bigint NOT NULL
);
INSERT INTO catalog_revision (revision) VALUES (0);

-- The schema version an event was validated against, and the verdict; NULL
-- for events whose type was not in the catalog or whose type's validation
-- is off. Nullable columns without a default: adding them rewrites nothing.
ALTER TABLE events
    ADD COLUMN schema_version integer,
    ADD COLUMN schema_valid boolean,
    -- Sent by POST /subscriptions/{id}/test to one subscription only. A
    -- constant default: adding the column rewrites nothing either.
    ADD COLUMN test boolean NOT NULL DEFAULT false;
-- GET /events?schema_valid=false: the invalid events, newest first.
CREATE INDEX events_schema_invalid ON events (received_at DESC, id DESC) WHERE schema_valid = false;
