-- When the subscription's URL last changed: set on creation and on every
-- change of url. Deliveries accepted before then were meant for another
-- URL, and only a key that may read them may send them to this one
-- (ADR 16). A subscription stored before this column existed counts from
-- its last change of any kind, the latest its URL can have changed.
ALTER TABLE subscriptions ADD COLUMN url_changed_at timestamptz NOT NULL DEFAULT now();
UPDATE subscriptions SET url_changed_at = updated_at;
