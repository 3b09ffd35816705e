// Package seal encrypts subscription signing secrets for storage, so that a
// copy of the database alone does not reveal them (ADR 15). Secrets are
// sealed with AES-256-GCM under a key from the environment, bound to their
// subscription's id; the key's fingerprint is stored beside each secret, so
// the key can be replaced while older secrets are still readable with the
// previous one.
package seal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of an encryption key in bytes.
const KeySize = 32

// prefix starts every sealed value: "sealed:v1:<key id>:<nonce+ciphertext>".
const prefix = "sealed:v1:"

// ErrUnknownKey means a value was sealed with a key this Keyring lacks.
var ErrUnknownKey = errors.New("sealed with a key that is not configured")

// Keyring seals with its current key and opens with any of its keys. Each
// key is a Box of its own, named by the key's fingerprint in the values it
// seals, so that opening needs no trial of every key.
type Keyring struct {
	current string
	boxes   map[string]*Box
}

// ParseKey reads a key written as standard base64 of KeySize bytes.
func ParseKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("must be base64 of %d random bytes (openssl rand -base64 %d)", KeySize, KeySize)
	}
	return key, nil
}

// NewKey returns a fresh key in the form ParseKey reads.
func NewKey() string {
	key := make([]byte, KeySize)
	_, _ = rand.Read(key)
	return base64.StdEncoding.EncodeToString(key)
}

// NewKeyring seals with current and also opens values sealed with any of
// previous.
func NewKeyring(current []byte, previous ...[]byte) (*Keyring, error) {
	k := &Keyring{boxes: map[string]*Box{}}
	for i, key := range append([][]byte{current}, previous...) {
		box, err := NewBox(key)
		if err != nil {
			return nil, fmt.Errorf("encryption key: %w", err)
		}
		id := fingerprint(key)
		if i == 0 {
			k.current = id
		}
		k.boxes[id] = box
	}
	return k, nil
}

func fingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// Seal encrypts a subscription's secret for storage; owner (its id) is
// bound to the result, so a sealed secret moved to another row does not
// open.
func (k *Keyring) Seal(owner, secret string) string {
	return prefix + k.current + ":" + k.boxes[k.current].Seal([]byte(secret), []byte(owner))
}

// Open returns the secret of a stored value. A value stored before
// encryption was configured is returned as it is, so existing deployments
// keep working; Sealed tells them apart.
func (k *Keyring) Open(owner, stored string) (string, error) {
	rest, ok := strings.CutPrefix(stored, prefix)
	if !ok {
		return stored, nil
	}
	id, body, ok := strings.Cut(rest, ":")
	if !ok {
		return "", errors.New("malformed sealed secret")
	}
	box, ok := k.boxes[id]
	if !ok {
		return "", fmt.Errorf("key %s: %w", id, ErrUnknownKey)
	}
	plain, err := box.Open(body, []byte(owner))
	if err != nil {
		return "", fmt.Errorf("open sealed secret: %w", err)
	}
	return string(plain), nil
}

// Current reports whether stored is sealed with this Keyring's current key.
func (k *Keyring) Current(stored string) bool {
	return strings.HasPrefix(stored, prefix+k.current+":")
}

// Reserved reports whether a secret starts the way sealed values do
// ("sealed:", whatever the version), which a plain secret may not: stored
// as it is (before sealing existed) it could not be told from a sealed one.
func Reserved(secret string) bool { return strings.HasPrefix(secret, "sealed:") }
