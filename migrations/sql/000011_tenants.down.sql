ALTER TABLE api_keys DROP COLUMN tenant_id;
DROP INDEX events_tenant_received_at;
ALTER TABLE events DROP COLUMN tenant_id;
DROP INDEX subscriptions_active_tenant_keys;
ALTER INDEX subscriptions_active_event_types RESET (fastupdate);
DROP FUNCTION tenant_keys(text, text[]);
DROP INDEX subscriptions_tenant;
ALTER TABLE subscriptions DROP COLUMN tenant_id;
DROP TABLE tenants;
