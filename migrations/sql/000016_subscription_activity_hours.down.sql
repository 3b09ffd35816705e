DROP INDEX attempts_recorded_at;
ALTER TABLE attempts DROP COLUMN recorded_at;
DROP TABLE subscription_activity_hours;
