DROP INDEX events_schema_invalid;
ALTER TABLE events DROP COLUMN test, DROP COLUMN schema_valid, DROP COLUMN schema_version;
DROP TABLE catalog_revision;
DROP TABLE event_type_versions;
DROP TABLE event_types;
