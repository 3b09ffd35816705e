DROP INDEX IF EXISTS deliveries_failed_created;
DROP INDEX IF EXISTS deliveries_retrying_created;
DROP INDEX IF EXISTS deliveries_in_flight_created;
DROP INDEX IF EXISTS deliveries_status_updated;
DROP INDEX IF EXISTS deliveries_subscription_created;
DROP INDEX IF EXISTS events_type_received_at;
