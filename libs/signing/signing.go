// Package signing signs and verifies webhook payloads with the Standard
// Webhooks scheme: HMAC-SHA256 over "{id}.{timestamp}.{body}", sent as
// "v1,<base64>" in the webhook-signature header, several signatures
// space-separated while a secret is being rotated. Receivers can verify
// Dispatch's deliveries with this package or with any Standard Webhooks
// library.
//
// A secret is either "whsec_" + base64 of the key, the Standard Webhooks
// form that Dispatch generates, or a plain ASCII string whose bytes are the
// key (a raw secret in the Standard Webhooks libraries); ParseSecret is the
// one place that tells them apart.
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

// SecretPrefix starts a secret in the Standard Webhooks form: the prefix,
// then the base64 (standard encoding) of the HMAC key. Generated secrets
// always have this form.
const SecretPrefix = "whsec_"

// Key sizes of "whsec_" secrets accepted by ParseSecret, in bytes.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
	// GeneratedSecretBytes is the key size of secrets made by GenerateSecret.
	GeneratedSecretBytes = 32
)

// Lengths of plain secrets accepted by ParseSecret, in characters. The
// minimum keeps out trivially guessable keys while still admitting the
// passphrase-like secrets people type into examples; the maximum bounds
// what is stored and sent back.
const (
	MinPlainSecretLength = 8
	MaxPlainSecretLength = 256
)

// DefaultTolerance is how far a webhook-timestamp may be from the
// verifier's clock, in either direction, before verification fails.
const DefaultTolerance = 5 * time.Minute

// ErrInvalidSecret is wrapped by every error about an unusable secret; the
// wrapping error says what is wrong with it, never what it is.
var ErrInvalidSecret = errors.New("invalid signing secret")

// Errors returned by Verify.
var (
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

// ParseSecret returns the HMAC key of a secret, which has one of two forms:
//
//   - "whsec_" + base64 of 24 to 64 bytes (the Standard Webhooks form): the
//     key is the decoded bytes. A secret with the prefix is always read this
//     way, so a mistyped one is refused rather than used as a plain secret.
//   - anything else is a plain secret: 8 to 256 printable ASCII characters
//     (space to '~') without leading or trailing white space, whose bytes
//     are the key (what Standard Webhooks libraries call a raw secret).
//
// Every error wraps ErrInvalidSecret.
func ParseSecret(secret string) ([]byte, error) {
	if enc, ok := strings.CutPrefix(secret, SecretPrefix); ok {
		return parseWhsec(enc)
	}
	return parsePlain(secret)
}

func parseWhsec(enc string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: a '%s' secret must continue with standard base64", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("%w: a '%s' secret must encode %d to %d bytes, not %d", ErrInvalidSecret, SecretPrefix, MinSecretBytes, MaxSecretBytes, len(key))
	}
	return key, nil
}

// parsePlain checks a plain secret. It must be printable ASCII because
// Standard Webhooks libraries do not agree on how a raw string becomes key
// bytes beyond ASCII (the JavaScript one takes one byte per UTF-16 unit,
// not UTF-8), and a secret that only some receivers can use is a trap. The
// reasons name a position, never a character: they are shown to callers
// and may be logged, and must not leak part of the secret.
func parsePlain(secret string) ([]byte, error) {
	// Checked first because surrounding white space is almost always a
	// copy-and-paste accident (a trailing newline) that the receiver's copy
	// lacks, so its signatures would never match.
	if strings.TrimSpace(secret) != secret {
		return nil, fmt.Errorf("%w: a plain secret must not start or end with white space", ErrInvalidSecret)
	}
	pos := 0
	for _, r := range secret {
		pos++
		switch {
		case r < ' ' || r == 0x7f:
			return nil, fmt.Errorf("%w: a plain secret must be printable ASCII, character %d is a control character", ErrInvalidSecret, pos)
		case r > '~':
			return nil, fmt.Errorf("%w: a plain secret must be printable ASCII, character %d is not ASCII", ErrInvalidSecret, pos)
		}
	}
	// Only ASCII is left, so bytes are characters.
	if n := len(secret); n < MinPlainSecretLength || n > MaxPlainSecretLength {
		return nil, fmt.Errorf("%w: a plain secret must be %d to %d characters long, not %d", ErrInvalidSecret, MinPlainSecretLength, MaxPlainSecretLength, n)
	}
	return []byte(secret), nil
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
		return nil, fmt.Errorf("%w: none given", ErrInvalidSecret)
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

// WithClock replaces time.Now, for tests. It takes a plain function rather
// than the services' clock.Clock: receivers import this package on its
// own, and a Verifier only reads the time, so the option keeps them free
// of the rest of Dispatch's libraries.
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
