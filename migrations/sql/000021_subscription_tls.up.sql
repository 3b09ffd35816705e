-- Mutual TLS for a subscription's deliveries (ADR 39): a client
-- certificate and its key (sealed like the signing secret), a CA bundle
-- for a destination with a private CA, and the certificate's expiry,
-- computed when it is set, for the expiry metric.
ALTER TABLE subscriptions
    ADD COLUMN tls_client_certificate text,
    ADD COLUMN tls_client_key text,
    ADD COLUMN tls_ca_bundle text,
    ADD COLUMN tls_not_after timestamptz,
    ADD CONSTRAINT subscriptions_tls_pair CHECK ((tls_client_certificate IS NULL) = (tls_client_key IS NULL)
        AND (tls_client_certificate IS NULL) = (tls_not_after IS NULL));
