// Package session keeps a signed-in operator's API key in a cookie without
// ever holding it in clear: the key, its id, scopes and tenant, the session's own
// random id, when it was issued and an expiry are sealed with AES-256-GCM
// (libs/seal's Box, the primitive that seals subscription secrets too)
// under the dashboard's session key. Revocations records in Redis which
// sessions ended before their expiry. CSRF tokens are HMACs of the sealed
// cookie under a key derived from the same key, so a token is valid only
// with the session it was issued for.
package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/seal"
)

// KeySize is the size of the session key in bytes.
const KeySize = 32

// ErrInvalid is a cookie that was not sealed under this key or was altered.
var ErrInvalid = errors.New("session: invalid")

// ErrExpired is a sealed session past its expiry.
var ErrExpired = errors.New("session: expired")

// Session is one signed-in operator.
type Session struct {
	// ID is the session's own random id (Nonce), by which signing out
	// ends it everywhere.
	ID string `json:"d"`
	// Issued is when the session began, by Redis's clock
	// (Revocations.Issue).
	Issued time.Time `json:"t"`
	// APIKey is the key every API call of the session sends.
	APIKey string `json:"k"`
	// KeyID names the key (GET /me's id).
	KeyID string `json:"i"`
	// Scopes are the key's scopes (GET /me's scopes).
	Scopes []string `json:"s"`
	// TenantID is the tenant the key is bound to (GET /me's tenant_id); ""
	// for a key that sees every tenant. It shapes the pages only: the API
	// scopes every answer by the key itself. A cookie sealed before
	// sessions held it opens with none.
	TenantID string `json:"n,omitempty"`
	// Expires is when the session ends.
	Expires time.Time `json:"e"`
	// Portal marks a customer portal's session (ADR 32), opened with a
	// portal link: its key is bound to TenantID, it is good only under
	// /portal/ and the operators' pages refuse it.
	Portal bool `json:"p,omitempty"`
	// TenantName is the portal's tenant's display name, for its header.
	TenantName string `json:"m,omitempty"`
	// ReturnURL, in a portal session, is where its "Back" link leads.
	ReturnURL string `json:"r,omitempty"`
}

// Has reports whether the session's key holds any of scopes.
func (s Session) Has(scopes ...string) bool {
	for _, have := range s.Scopes {
		for _, want := range scopes {
			if have == want {
				return true
			}
		}
	}
	return false
}

// Sealer seals and opens sessions and makes and checks CSRF tokens.
type Sealer struct {
	box     *seal.Box
	csrfKey []byte
	clock   clock.Clock
}

// NewSealer returns a Sealer for a key of KeySize bytes; clk tells whether
// a session or flash has expired (clock.Real() when nil).
func NewSealer(key []byte, clk clock.Clock) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("session key must be %d bytes, got %d", KeySize, len(key))
	}
	box, err := seal.NewBox(key)
	if err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.Real()
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("dispatch dashboard csrf"))
	return &Sealer{box: box, csrfKey: mac.Sum(nil), clock: clk}, nil
}

// additionalData binds sealed cookies to their purpose.
var additionalData = []byte("dispatch dashboard session v1")

// Seal returns s as a cookie value: base64url of a random nonce and the
// ciphertext.
func (m *Sealer) Seal(s Session) (string, error) {
	plain, err := json.Marshal(s) //nolint:gosec // G117: marshalled only to be sealed below; the cookie carries it encrypted
	if err != nil {
		return "", err
	}
	return m.box.Seal(plain, additionalData), nil
}

// Open returns the session sealed in value: ErrInvalid if it does not open
// or lacks an id or issue time (a cookie sealed before sessions had them,
// which no sign-out could end), ErrExpired if it has expired.
func (m *Sealer) Open(value string) (Session, error) {
	plain, err := m.box.Open(value, additionalData)
	if err != nil {
		return Session{}, ErrInvalid
	}
	var s Session
	if err := json.Unmarshal(plain, &s); err != nil || s.APIKey == "" || s.ID == "" || s.Issued.IsZero() {
		return Session{}, ErrInvalid
	}
	if !m.clock.Now().Before(s.Expires) {
		return Session{}, ErrExpired
	}
	return s, nil
}

// Token is the CSRF token of a sealed session (or of a sign-in nonce).
func (m *Sealer) Token(value string) string {
	mac := hmac.New(sha256.New, m.csrfKey)
	mac.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// ValidToken reports whether token is the CSRF token of value, in
// constant time.
func (m *Sealer) ValidToken(value, token string) bool {
	if value == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(m.Token(value)), []byte(token))
}

// Nonce returns a random value of 144 bits: a session's id, or the value
// of the sign-in form's CSRF cookie.
func Nonce() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Flash is a secret that the page after a redirect shows once: an action
// that makes one (creating a subscription, rotating its secret) redirects
// to a page the browser may reload, so the secret travels in a short-lived
// sealed cookie that the page takes and clears.
type Flash struct {
	// SessionID binds the flash to the session that made it.
	SessionID         string     `json:"sid"`
	SubscriptionID    string     `json:"sub"`
	Secret            string     `json:"secret"`
	PreviousExpiresAt *time.Time `json:"previous_expires_at,omitempty"`
	// Warnings are what the API warned of when the subscription was
	// created or changed (event types not in the catalog, deprecated ones).
	Warnings []string  `json:"warnings,omitempty"`
	Expires  time.Time `json:"exp"`
}

// flashData binds sealed flashes to their purpose: a session cookie does
// not open as a flash, nor a flash as a session.
var flashData = []byte("dispatch dashboard flash v1")

// SealFlash returns f as a cookie value.
func (m *Sealer) SealFlash(f Flash) (string, error) {
	plain, err := json.Marshal(f) //nolint:gosec // G117: marshalled only to be sealed below; the cookie carries it encrypted
	if err != nil {
		return "", err
	}
	return m.box.Seal(plain, flashData), nil
}

// OpenFlash returns the flash sealed in value: ErrInvalid if it does not
// open, ErrExpired if it has expired.
func (m *Sealer) OpenFlash(value string) (Flash, error) {
	plain, err := m.box.Open(value, flashData)
	if err != nil {
		return Flash{}, ErrInvalid
	}
	var f Flash
	if err := json.Unmarshal(plain, &f); err != nil || f.SessionID == "" {
		return Flash{}, ErrInvalid
	}
	if !m.clock.Now().Before(f.Expires) {
		return Flash{}, ErrExpired
	}
	return f, nil
}
