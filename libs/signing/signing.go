// Package signing signs and verifies webhook payloads with the Standard
// Webhooks scheme: HMAC-SHA256 over "{id}.{timestamp}.{body}", sent as
// "v1,<base64>" in the webhook-signature header, several signatures
// space-separated while a secret is being rotated. Receivers can verify
// Dispatch's deliveries with this package or with any Standard Webhooks
// library.
//
// The package depends only on the standard library so that receivers can
// import it without pulling in the rest of Dispatch; for the same reason its
// errors live here rather than in libs/domain.
package signing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every Dispatch signing secret.
const SecretPrefix = "whsec_"

// Secret key sizes accepted by ParseSecret, in bytes.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
	// GeneratedSecretBytes is the key size of secrets made by GenerateSecret.
	GeneratedSecretBytes = 32
)

// DefaultTolerance is how far a webhook-timestamp may be from the
// verifier's clock, in either direction, before verification fails.
const DefaultTolerance = 5 * time.Minute

// Errors returned by ParseSecret and Verify.
var (
	ErrInvalidSecret    = errors.New("signing secret must be 'whsec_' followed by base64 of 24 to 64 bytes")
	ErrMissingHeader    = errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	ErrInvalidTimestamp = errors.New("webhook-timestamp is not a Unix time in seconds")
	ErrTimestampTooOld  = errors.New("webhook-timestamp is too old")
	ErrTimestampTooNew  = errors.New("webhook-timestamp is too far in the future")
	ErrNoMatch          = errors.New("no signature matches")
)

// GenerateSecret returns a new random secret: "whsec_" + base64 of 32 bytes.
func GenerateSecret() string {
	key := make([]byte, GeneratedSecretBytes)
	_, _ = rand.Read(key) // crypto/rand.Read never fails on supported platforms.
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// ParseSecret decodes a "whsec_..." secret into its HMAC key.
func ParseSecret(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, ErrInvalidSecret
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, ErrInvalidSecret
	}
	return key, nil
}

// Signer signs payloads with one or more secrets. Build it once per
// subscription and reuse it: the keys are decoded only once.
type Signer struct {
	keys [][]byte
}

// NewSigner returns a Signer for the given secrets. Pass the current secret
// first and, during a rotation, the previous one after it.
func NewSigner(secrets ...string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, ErrInvalidSecret
	}
	s := &Signer{keys: make([][]byte, 0, len(secrets))}
	for i, secret := range secrets {
		key, err := ParseSecret(secret)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i, err)
		}
		s.keys = append(s.keys, key)
	}
	return s, nil
}

// Sign returns the webhook-signature header value for a message: one
// "v1,<base64>" per secret, separated by spaces.
func (s *Signer) Sign(msgID string, ts time.Time, body []byte) string {
	var b strings.Builder
	unix := strconv.FormatInt(ts.Unix(), 10)
	for i, key := range s.keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac(key, msgID, unix, body)))
	}
	return b.String()
}

func mac(key []byte, msgID, unix string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msgID))
	h.Write([]byte{'.'})
	h.Write([]byte(unix))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verifier checks signed payloads on the receiving side.
type Verifier struct {
	keys      [][]byte
	tolerance time.Duration
	now       func() time.Time
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier)

// WithTolerance sets how far the timestamp may drift from now (default 5 minutes).
func WithTolerance(d time.Duration) VerifierOption { return func(v *Verifier) { v.tolerance = d } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) VerifierOption { return func(v *Verifier) { v.now = now } }

// NewVerifier returns a Verifier that accepts a signature made with any of
// the given secrets, so a receiver keeps working through a rotation.
func NewVerifier(secrets []string, opts ...VerifierOption) (*Verifier, error) {
	s, err := NewSigner(secrets...)
	if err != nil {
		return nil, err
	}
	v := &Verifier{keys: s.keys, tolerance: DefaultTolerance, now: time.Now}
	for _, o := range opts {
		o(v)
	}
	return v, nil
}

// Verify checks the three Standard Webhooks header values against the raw
// request body. It succeeds when the timestamp is within tolerance and at
// least one signature in sigHeader matches one of the verifier's secrets.
func (v *Verifier) Verify(msgID, timestamp, sigHeader string, body []byte) error {
	if msgID == "" || timestamp == "" || sigHeader == "" {
		return ErrMissingHeader
	}
	unix, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrInvalidTimestamp
	}
	now := v.now()
	ts := time.Unix(unix, 0)
	if now.Sub(ts) > v.tolerance {
		return ErrTimestampTooOld
	}
	if ts.Sub(now) > v.tolerance {
		return ErrTimestampTooNew
	}
	for _, sig := range strings.Fields(sigHeader) {
		enc, ok := strings.CutPrefix(sig, "v1,")
		if !ok {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		for _, key := range v.keys {
			if hmac.Equal(got, mac(key, msgID, timestamp, body)) {
				return nil
			}
		}
	}
	return ErrNoMatch
}

// Header names of the Standard Webhooks scheme.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// HeaderGetter is satisfied by http.Header.
type HeaderGetter interface {
	Get(key string) string
}

// VerifyHeaders is Verify with the values read from request headers.
func (v *Verifier) VerifyHeaders(h HeaderGetter, body []byte) error {
	return v.Verify(h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature), body)
}
