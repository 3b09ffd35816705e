ALTER TABLE subscriptions DROP COLUMN oauth2;
