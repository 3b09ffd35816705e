-- Custom headers added to every delivery of a subscription: an object of
-- header name to value, each value sealed like the signing secret (ADR 15,
-- ADR 39). NULL: none.
ALTER TABLE subscriptions ADD COLUMN headers jsonb;
