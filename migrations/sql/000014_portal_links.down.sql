DROP INDEX api_keys_portal_tenant;
DELETE FROM api_keys WHERE portal OR 'portal' = ANY (scopes);
ALTER TABLE api_keys DROP COLUMN portal;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check
    CHECK (scopes <@ ARRAY['admin', 'write', 'publish', 'read'] AND cardinality(scopes) > 0);
DROP TABLE portal_links;
