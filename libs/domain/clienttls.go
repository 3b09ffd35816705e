package domain

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"
)

// ClientTLS is what a subscription's deliveries use for mutual TLS: a
// client certificate and its key, presented to the destination, and
// optionally the CAs that the destination's own certificate must chain
// to instead of the system's. PEM text throughout.
type ClientTLS struct {
	// Certificate is the client certificate, its chain after it.
	Certificate string
	// Key is the certificate's private key. It is sealed at rest; reads
	// leave it empty.
	Key string
	// CABundle, if set, replaces the system's roots for verifying the
	// destination.
	CABundle string
	// NotAfter is when Certificate expires; set when it is validated.
	NotAfter time.Time
}

// Bounds of a subscription's TLS settings, in bytes of PEM.
const (
	MaxClientCertificate = 64 << 10
	MaxClientKey         = 16 << 10
	MaxCABundle          = 512 << 10
)

// ValidateClientTLS checks a subscription's TLS settings at now and
// returns them with NotAfter set: the certificate and key (both or
// neither) are PEM, parse, belong together and the certificate is valid
// at now; the CA bundle, if given, holds at least one certificate and
// nothing else. The field named is the first that is wrong, under "tls".
func ValidateClientTLS(c ClientTLS, now time.Time) (ClientTLS, error) {
	return validateClientTLS(c, now, false)
}

// ValidateClientTLSKeepingKey checks settings that keep the stored key:
// Certificate is set and Key is empty. It checks what ValidateClientTLS
// does but the key, which was checked against this certificate when it
// was stored; the caller makes sure the stored certificate is this one.
func ValidateClientTLSKeepingKey(c ClientTLS, now time.Time) (ClientTLS, error) {
	if c.Certificate == "" || c.Key != "" {
		return c, invalid("tls.client_key", "is kept only when client_certificate is sent without it")
	}
	return validateClientTLS(c, now, true)
}

func validateClientTLS(c ClientTLS, now time.Time, keepKey bool) (ClientTLS, error) {
	switch {
	case c.Certificate == "" && c.Key == "" && c.CABundle == "":
		return c, invalid("tls", "must set client_certificate and client_key, ca_bundle, or all three; null removes the settings")
	case len(c.Certificate) > MaxClientCertificate:
		return c, invalid("tls.client_certificate", fmt.Sprintf("must be at most %d bytes of PEM", MaxClientCertificate))
	case len(c.Key) > MaxClientKey:
		return c, invalid("tls.client_key", fmt.Sprintf("must be at most %d bytes of PEM", MaxClientKey))
	case len(c.CABundle) > MaxCABundle:
		return c, invalid("tls.ca_bundle", fmt.Sprintf("must be at most %d bytes of PEM", MaxCABundle))
	case c.Certificate != "" && c.Key == "" && !keepKey:
		return c, invalid("tls.client_key", "must be given with client_certificate")
	case c.Key != "" && c.Certificate == "":
		return c, invalid("tls.client_certificate", "must be given with client_key")
	}
	if c.CABundle != "" {
		if err := onlyCertificates(c.CABundle); err != "" {
			return c, invalid("tls.ca_bundle", err)
		}
	}
	if c.Certificate == "" {
		return c, nil
	}
	if err := onlyCertificates(c.Certificate); err != "" {
		return c, invalid("tls.client_certificate", err)
	}
	leaf, err := leafOf(c, keepKey)
	if err != nil {
		return c, err
	}
	switch {
	case now.After(leaf.NotAfter):
		return c, invalid("tls.client_certificate", fmt.Sprintf("expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339)))
	case now.Before(leaf.NotBefore):
		return c, invalid("tls.client_certificate", fmt.Sprintf("is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339)))
	}
	c.NotAfter = leaf.NotAfter
	return c, nil
}

// leafOf returns the first certificate of c, with its key checked to
// belong to it unless the key is kept.
func leafOf(c ClientTLS, keepKey bool) (*x509.Certificate, error) {
	if keepKey {
		// onlyCertificates has parsed it already.
		block, _ := pem.Decode([]byte(c.Certificate))
		return x509.ParseCertificate(block.Bytes)
	}
	if block, _ := pem.Decode([]byte(c.Key)); block == nil || !strings.HasSuffix(block.Type, "PRIVATE KEY") {
		return nil, invalid("tls.client_key", "must be a PEM private key (PKCS #8, or an RSA or EC key), not encrypted")
	}
	pair, err := tls.X509KeyPair([]byte(c.Certificate), []byte(c.Key))
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return nil, invalid("tls.client_key", "does not belong to client_certificate (its public key is another)")
		}
		return nil, invalid("tls.client_key", "cannot be read as the certificate's private key (PKCS #8, PKCS #1 or SEC 1, not encrypted)")
	}
	return pair.Leaf, nil
}

// onlyCertificates returns why text is not a PEM list of certificates
// that parse, or "".
func onlyCertificates(text string) string {
	rest := []byte(text)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Sprintf("must hold only certificates, has a PEM block of type %q", block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Sprintf("certificate %d does not parse: %v", n+1, err)
		}
		n++
	}
	if n == 0 {
		return "must be PEM: -----BEGIN CERTIFICATE----- blocks"
	}
	if strings.TrimSpace(string(rest)) != "" {
		return "has text after its last PEM block that is not PEM"
	}
	return ""
}
