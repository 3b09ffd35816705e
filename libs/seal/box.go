package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// ErrNotSealed is a value that does not open under any of a Box's keys:
// made with another key, altered, or not sealed at all.
var ErrNotSealed = errors.New("not sealed under this key")

// Box is the one sealing primitive of Dispatch: AES-256-GCM with a random
// nonce, the result written as base64url (no padding) of nonce, ciphertext
// and tag. A Keyring wraps it for stored secrets (with a prefix and the
// key's fingerprint); the dashboard's session cookies and the API's sealed
// cursors use it bare, because their values must be short and must never
// pass through unsealed. Additional data binds a value to its purpose and
// owner: a value sealed for one does not open as another.
//
// A Box seals with its first key and opens with any of them, so a key can
// be replaced while values sealed under the previous one still open.
type Box struct {
	aeads []cipher.AEAD
}

// NewBox returns a Box for keys of KeySize bytes, the first one sealing.
func NewBox(keys ...[]byte) (*Box, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: a box needs a key")
	}
	b := &Box{}
	for _, key := range keys {
		if len(key) != KeySize {
			return nil, fmt.Errorf("seal: key must be %d bytes, got %d", KeySize, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		b.aeads = append(b.aeads, aead)
	}
	return b, nil
}

// DeriveBox returns a Box whose keys are derived from keys with HKDF-SHA256
// and info, so that one configured key serves several purposes without any
// two of them sharing an encryption key.
func DeriveBox(info string, keys ...[]byte) (*Box, error) {
	derived := make([][]byte, len(keys))
	for i, k := range keys {
		d, err := hkdf.Key(sha256.New, k, nil, info, KeySize)
		if err != nil {
			return nil, fmt.Errorf("seal: derive a key: %w", err)
		}
		derived[i] = d
	}
	return NewBox(derived...)
}

// Seal encrypts plain under the first key, bound to additional.
func (b *Box) Seal(plain, additional []byte) string {
	aead := b.aeads[0]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, additional))
}

// Open decrypts a value Seal made with the same additional data under any
// of the Box's keys; anything else is ErrNotSealed.
func (b *Box) Open(value string, additional []byte) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	n := b.aeads[0].NonceSize()
	if err != nil || len(raw) < n+b.aeads[0].Overhead() {
		return nil, ErrNotSealed
	}
	for _, aead := range b.aeads {
		if plain, err := aead.Open(nil, raw[:n], raw[n:], additional); err == nil {
			return plain, nil
		}
	}
	return nil, ErrNotSealed
}
