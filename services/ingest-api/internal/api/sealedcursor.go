package api

import (
	"crypto/rand"
	"encoding/binary"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/domain"
	"github.com/dispatch-webhooks/dispatch/libs/seal"
	"github.com/dispatch-webhooks/dispatch/libs/store"
)

// A bulk redelivery's cursor is the position of the last delivery it
// queued: its creation time and event id. A key without read may not
// learn either, so the cursor it is given is sealed: AES-256-GCM of the
// position, with the subscription's id as additional data, under a key
// derived from each of Config.CursorKeys. Any instance with those keys
// opens it; nobody else can read it, or make one that opens.
//
// A bare seal.Box, not a seal.Keyring: the Keyring's prefix and key id
// would take a cursor of a 255-character event id past the after
// parameter's 400 characters, and it passes unsealed values through as
// they are, which here would let a caller make up a position of its own.

// cursorKeyInfo separates the keys derived for cursors from the keys
// they are derived from (which seal subscription secrets) and from any
// other use of them.
const cursorKeyInfo = "dispatch redelivery cursor v1"

// cursorSealer seals cursors with a seal.Box of keys derived for them.
type cursorSealer struct {
	box *seal.Box
}

// newCursorSealer derives a cursor key from each of keys, the first one
// sealing. Without keys it makes one of its own: its cursors then open
// only in this process.
func newCursorSealer(keys [][]byte) *cursorSealer {
	if len(keys) == 0 {
		own := make([]byte, seal.KeySize)
		_, _ = rand.Read(own)
		keys = [][]byte{own}
	}
	box, err := seal.DeriveBox(cursorKeyInfo, keys...)
	if err != nil {
		// Derivation cannot fail for these sizes, whatever the keys are.
		panic(err)
	}
	return &cursorSealer{box: box}
}

// seal is the cursor of position p in subscriptionID's redelivery:
// base64url (no padding) of nonce, ciphertext and tag, the position
// written as 8 bytes of Unix microseconds and the event id. For the
// longest event id that is 388 characters.
func (c *cursorSealer) seal(subscriptionID string, p store.Position) string {
	plain := binary.BigEndian.AppendUint64(nil, uint64(p.Time.UnixMicro()))
	plain = append(plain, p.ID...)
	return c.box.Seal(plain, []byte(subscriptionID))
}

// open reads a cursor that seal made for subscriptionID; ok is false for
// anything else, a cursor of another subscription's redelivery included.
func (c *cursorSealer) open(subscriptionID, s string) (_ *store.Position, ok bool) {
	plain, err := c.box.Open(s, []byte(subscriptionID))
	if err != nil || len(plain) < 8 {
		return nil, false
	}
	t := time.UnixMicro(int64(binary.BigEndian.Uint64(plain))).UTC() //nolint:gosec // G115: authenticated above, so the int64 sealed by this code
	id := string(plain[8:])
	if t.Before(minCursorTime) || t.After(maxCursorTime) || domain.ValidateEventID(id) != nil {
		return nil, false
	}
	return &store.Position{Time: t, ID: id}, true
}
