DROP INDEX deliveries_failure_unreported;
ALTER TABLE deliveries DROP COLUMN report_failure;
DROP INDEX subscriptions_health;
ALTER TABLE subscriptions DROP COLUMN failing_since, DROP COLUMN alert_since, DROP COLUMN alert_level;
