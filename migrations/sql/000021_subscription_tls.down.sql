ALTER TABLE subscriptions
    DROP COLUMN tls_not_after,
    DROP COLUMN tls_ca_bundle,
    DROP COLUMN tls_client_key,
    DROP COLUMN tls_client_certificate;
