package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CertificateExpiry is when one subscription's TLS client certificate
// expires.
type CertificateExpiry struct {
	SubscriptionID string
	TenantID       string
	NotAfter       time.Time
}

// ClientCertificateExpiries returns the expiry of every subscription's
// client certificate, by subscription id: what the expiry metric shows.
// Subscriptions with mutual TLS are few, and their expiries are a column
// set when the certificate is, so this reads no certificate.
func (s *Store) ClientCertificateExpiries(ctx context.Context) (_ []CertificateExpiry, err error) {
	defer markUnavailable(&err)
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id, tls_not_after FROM subscriptions WHERE tls_not_after IS NOT NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("client certificate expiries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CertificateExpiry, error) {
		var e CertificateExpiry
		err := r.Scan(&e.SubscriptionID, &e.TenantID, &e.NotAfter)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("client certificate expiries: %w", err)
	}
	return out, nil
}
