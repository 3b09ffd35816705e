-- API keys. Only a SHA-256 hash of each key is stored: keys are 256-bit
-- random strings, so a fast hash is as safe as a slow one and lets every
-- request be checked without noticeable cost.
CREATE TABLE api_keys (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    scopes        text[] NOT NULL CHECK (scopes <@ ARRAY['admin', 'write', 'publish', 'read'] AND cardinality(scopes) > 0),
    key_hash      bytea NOT NULL UNIQUE,
    -- The key's first characters, so operators can tell keys apart.
    key_prefix    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
