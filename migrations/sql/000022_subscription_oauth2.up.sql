-- OAuth2 client credentials for a subscription's deliveries (ADR 40):
-- {token_url, client_id, client_secret, scopes, audience}, the secret
-- sealed like the signing secret. NULL: none.
ALTER TABLE subscriptions ADD COLUMN oauth2 jsonb;
