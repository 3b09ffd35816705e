ALTER TABLE subscriptions DROP COLUMN url_changed_at;
