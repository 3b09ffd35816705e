-- Portal links (ADR 0032): a single-use link that opens a tenant's
-- customer portal. Only a SHA-256 hash of each link's token is stored;
-- opening the link consumes it (used_at) and creates a short-lived API
-- key bound to the tenant, marked as a portal key, which the portal's
-- session holds until expires_at.
CREATE TABLE portal_links (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    read_only   boolean NOT NULL,
    return_url  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- When the link stops opening and the session it opened ends.
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX portal_links_tenant ON portal_links (tenant_id, expires_at);

-- The portal scope may only create and revoke portal links.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check
    CHECK (scopes <@ ARRAY['admin', 'write', 'publish', 'read', 'portal'] AND cardinality(scopes) > 0);
-- A portal key is a portal session's: not listed with the operators'
-- keys, and revoked with every other of its tenant's.
ALTER TABLE api_keys ADD COLUMN portal boolean NOT NULL DEFAULT false;
CREATE INDEX api_keys_portal_tenant ON api_keys (tenant_id, expires_at) WHERE portal;
