ALTER TABLE subscriptions DROP COLUMN headers;
