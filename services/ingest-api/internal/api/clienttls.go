package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// A subscription's mutual TLS settings (ADR 39): validated when set, the
// key sealed and masked, the certificate's expiry shown and exported as
// a metric.

// ClientTLSBody is a subscription's mutual TLS settings as answers show
// them: the key masked.
type ClientTLSBody struct {
	ClientCertificate          string     `json:"client_certificate,omitempty" doc:"The client certificate presented to the destination (PEM), its chain after it."`
	ClientKey                  string     `json:"client_key,omitempty" doc:"Masked: the key is never shown once set."`
	CABundle                   string     `json:"ca_bundle,omitempty" doc:"The CAs the destination's certificate must chain to (PEM), instead of the system's."`
	ClientCertificateExpiresAt *time.Time `json:"client_certificate_expires_at,omitempty" doc:"When the client certificate expires."`
}

func clientTLSBody(c *domain.ClientTLS) *ClientTLSBody {
	if c == nil {
		return nil
	}
	b := &ClientTLSBody{ClientCertificate: c.Certificate, CABundle: c.CABundle}
	if c.Certificate != "" {
		b.ClientKey = maskedValue
		at := c.NotAfter.UTC()
		b.ClientCertificateExpiresAt = &at
	}
	return b
}

// clientTLSInput is the tls field as sent.
type clientTLSInput struct {
	ClientCertificate string `json:"client_certificate"`
	ClientKey         string `json:"client_key"`
	CABundle          string `json:"ca_bundle"`
}

// tlsField is the tls field of a create or a PATCH: absent or null on a
// create means none; on a PATCH, absent leaves the settings as they are,
// null removes them and an object replaces them.
type tlsField struct {
	Sent  bool
	Value *clientTLSInput
}

// UnmarshalJSON records that the field was sent, null included.
func (f *tlsField) UnmarshalJSON(b []byte) error {
	f.Sent = true
	if string(b) == "null" {
		f.Value = nil
		return nil
	}
	return json.Unmarshal(b, &f.Value)
}

// Schema describes the field as a nullable object of PEM strings.
func (tlsField) Schema(huma.Registry) *huma.Schema {
	pemString := func(doc string) *huma.Schema { return &huma.Schema{Type: huma.TypeString, Description: doc} }
	return &huma.Schema{
		Type: huma.TypeObject, Nullable: true, AdditionalProperties: false,
		Properties: map[string]*huma.Schema{
			"client_certificate": pemString("Client certificate presented to the destination (PEM, at most 64 KiB), its chain after it. Must be valid now."),
			"client_key":         pemString("The certificate's private key (PEM: PKCS #8, PKCS #1 or SEC 1, not encrypted; at most 16 KiB). Stored encrypted, never shown again. On PATCH, left out (or empty) with the stored client_certificate, the stored key is kept."),
			"ca_bundle":          pemString("Optional CAs (PEM certificates, at most 512 KiB) that the destination's certificate must chain to, instead of the system's."),
		},
		Description: "Mutual TLS for the deliveries: client_certificate and client_key together, ca_bundle, or all three; checked when set (PEM, key matching the certificate, certificate valid now), else a 422. Used for https URLs. On PATCH, null removes the settings and an object replaces them all, except that client_key left out with the certificate already stored keeps the stored key.",
	}
}

// domain returns the settings sent, validated at now; nil when none
// were sent or null was. With mayKeep (a PATCH by a key that may read),
// a certificate sent without its key keeps the stored key, which keep
// reports; the store checks that the stored key is this certificate's.
func (f tlsField) domain(now time.Time, mayKeep bool) (_ *domain.ClientTLS, keep bool, _ error) {
	if f.Value == nil {
		return nil, false, nil
	}
	c := domain.ClientTLS{Certificate: f.Value.ClientCertificate, Key: f.Value.ClientKey, CABundle: f.Value.CABundle}
	keep = mayKeep && c.Certificate != "" && c.Key == ""
	validate := domain.ValidateClientTLS
	if keep {
		validate = domain.ValidateClientTLSKeepingKey
	}
	c, err := validate(c, now)
	if err != nil {
		return nil, false, err
	}
	return &c, keep, nil
}

// checkTLSURL refuses TLS settings for a URL that is not https, where
// they would never be used.
func checkTLSURL(c *domain.ClientTLS, url string) error {
	if c != nil && !strings.HasPrefix(strings.ToLower(url), "https://") {
		return &domain.ValidationError{Field: "tls", Reason: "is used only for https URLs; this subscription's url is not one"}
	}
	return nil
}

// certificateExpiry exports when each subscription's client certificate
// expires, read at each scrape: the metric an alert 14 days ahead needs.
// Every API instance exports the same series, which the alert takes the
// largest of; an instance whose read fails exports none, and says so.
type certificateExpiry struct {
	store interface {
		ClientCertificateExpiries(ctx context.Context) ([]store.CertificateExpiry, error)
	}
	log  *slog.Logger
	desc *prometheus.Desc
}

// certificateExpiryTimeout bounds the scrape's query.
const certificateExpiryTimeout = 2 * time.Second

func newCertificateExpiry(st Store, log *slog.Logger) *certificateExpiry {
	return &certificateExpiry{store: st, log: log, desc: prometheus.NewDesc(
		"dispatch_client_certificate_expiry_timestamp_seconds",
		"When the TLS client certificate of a subscription expires (Unix seconds), for subscriptions with mutual TLS.",
		[]string{"subscription_id", "tenant_id"}, nil)}
}

// Describe sends the metric's description.
func (c *certificateExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect reads the expiries and sends one series per subscription.
func (c *certificateExpiry) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), certificateExpiryTimeout)
	defer cancel()
	expiries, err := c.store.ClientCertificateExpiries(ctx)
	if err != nil {
		c.log.Warn("could not read client certificate expiries for the metric", "err", err)
		return
	}
	for _, e := range expiries {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(e.NotAfter.Unix()), e.SubscriptionID, e.TenantID)
	}
}
