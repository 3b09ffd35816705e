CREATE TABLE subscriptions (
    id                          text PRIMARY KEY,
    url                         text NOT NULL,
    event_types                 text[] NOT NULL,
    secret                      text NOT NULL,
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    state                       text NOT NULL DEFAULT 'active'
                                CHECK (state IN ('active', 'paused', 'disabled')),
    state_reason                text NOT NULL DEFAULT '',
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

-- Fan-out finds the subscriptions of an event type with one array-overlap
-- query against the type's match keys (see domain.MatchKeys).
CREATE INDEX subscriptions_active_event_types ON subscriptions USING gin (event_types)
    WHERE state = 'active';

CREATE TABLE events (
    id           text PRIMARY KEY,
    type         text NOT NULL,
    source       text NOT NULL DEFAULT '',
    data         jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_received_at ON events (received_at DESC, id DESC);

CREATE TABLE deliveries (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    subscription_id   text NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'delivered', 'retrying', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz,
    -- While status is 'processing', the worker's claim lapses at locked_until,
    -- after which another worker (or the sweep) may take the delivery over.
    locked_until      timestamptz,
    last_status_code  integer,
    last_error        text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, subscription_id)
);

-- Due retries and stranded work: only rows that are not final.
CREATE INDEX deliveries_open ON deliveries (next_attempt_at)
    WHERE status IN ('pending', 'processing', 'retrying');
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, created_at DESC);

CREATE TABLE attempts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id      bigint NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number           integer NOT NULL,
    started_at       timestamptz NOT NULL,
    duration_ms      integer NOT NULL,
    status_code      integer,
    error_class      text NOT NULL DEFAULT '',
    error            text NOT NULL DEFAULT '',
    response_body    text NOT NULL DEFAULT '',
    instance         text NOT NULL DEFAULT '',
    UNIQUE (delivery_id, number)
);
