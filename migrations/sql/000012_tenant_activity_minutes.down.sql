DROP TABLE tenant_activity_minutes;
