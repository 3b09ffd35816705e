// Package apikey makes and recognises Dispatch API keys. A key is shown to
// its owner once; only its SHA-256 hash is stored. Keys carry 260 random
// bits, so a fast hash is as safe as a slow one and checking a request
// costs nothing noticeable.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// Prefix starts every key, so that secret scanners can find leaked ones
// and people can tell a Dispatch key from other credentials.
const Prefix = "dsp_"

// Hash is what is stored of a key.
type Hash [sha256.Size]byte

// New returns a fresh key and its hash.
func New() (string, Hash) {
	key := Prefix + strings.ToLower(rand.Text()+rand.Text())
	return key, HashOf(key)
}

// HashOf hashes a key as presented.
func HashOf(key string) Hash { return sha256.Sum256([]byte(key)) }

// Equal compares two hashes in constant time.
func Equal(a, b Hash) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// NewID returns an id for a stored key; it is not secret.
func NewID() string { return "key_" + strings.ToLower(rand.Text()[:16]) }

// Display is the part of a key safe to show later (in lists and logs), so
// operators can tell their keys apart.
func Display(key string) string {
	const n = len(Prefix) + 6
	if len(key) <= n {
		return key
	}
	return key[:n]
}

// PortalPrefix starts every portal link's token.
const PortalPrefix = "dpl_"

// NewPortalToken returns a fresh portal link token (260 random bits, as a
// key) and its hash; like a key's, only the hash is stored.
func NewPortalToken() (string, Hash) {
	token := PortalPrefix + strings.ToLower(rand.Text()+rand.Text())
	return token, HashOf(token)
}

// NewPortalLinkID returns an id for a stored portal link; it is not secret.
func NewPortalLinkID() string { return "pl_" + strings.ToLower(rand.Text()[:16]) }

// randomLength is the length of the random part of keys and portal tokens:
// two rand.Text() of 26 characters each.
const randomLength = 52

// WellFormed reports whether key has the form of a key New makes, so that
// a malformed one is refused without a lookup.
func WellFormed(key string) bool { return wellFormed(key, Prefix) }

// WellFormedPortalToken reports whether token has the form of a token
// NewPortalToken makes.
func WellFormedPortalToken(token string) bool { return wellFormed(token, PortalPrefix) }

// wellFormed reports whether s is prefix and two lowercase rand.Text().
func wellFormed(s, prefix string) bool {
	if len(s) != len(prefix)+randomLength || !strings.HasPrefix(s, prefix) {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
