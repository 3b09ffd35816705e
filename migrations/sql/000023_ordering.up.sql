-- Ordered delivery per key (ADR 43).
--
-- An event may carry an ordering key; a subscription with ordering
-- 'per_key' receives the events of one key one at a time, in the order
-- they were accepted. Such a delivery stores the key and its place in the
-- key (seq). Of a key's open deliveries only the head is due: the others
-- wait as pending with no due time (held) until the head is final, when
-- the statement that makes it final releases the next one.
ALTER TABLE events ADD COLUMN ordering_key text;
ALTER TABLE subscriptions ADD COLUMN ordering text NOT NULL DEFAULT 'none'
    CHECK (ordering IN ('none', 'per_key'));
ALTER TABLE deliveries
    ADD COLUMN ordering_key text,
    ADD COLUMN seq bigint;

-- One row per subscription and key: the key's last sequence number and how
-- many of its ordered deliveries are open (held ones included). Ingest and
-- the statements that make a head final take the row's lock, so a key's
-- new delivery is held exactly when an earlier one is still open.
CREATE TABLE ordering_keys (
    subscription_id  text NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    key              text NOT NULL,
    last_seq         bigint NOT NULL,
    open             bigint NOT NULL CHECK (open >= 0),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, key)
);

-- A key's deliveries by their place in it: the one after a head that
-- became final is found by its seq alone, without passing the entries of
-- those released before it (a hot key leaves thousands until vacuum).
CREATE INDEX deliveries_ordered ON deliveries (subscription_id, ordering_key, seq)
    WHERE seq IS NOT NULL;
-- A key's head: its ordered delivery that is open and not held; by status
-- so that a subscription's blocked keys (head retrying) are one range.
CREATE INDEX deliveries_ordered_heads ON deliveries (subscription_id, status, ordering_key)
    WHERE seq IS NOT NULL AND next_attempt_at IS NOT NULL AND status IN ('pending', 'processing', 'retrying');
