package seal_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/dispatch-webhooks/dispatch/libs/seal"
)

func rawKey(t *testing.T) []byte {
	t.Helper()
	k, err := seal.ParseKey(seal.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestBox: a value opens with its own additional data under the sealing
// key or a previous one, and under nothing else; a derived box shares no
// key with the box of the key it was derived from.
func TestBox(t *testing.T) {
	t.Parallel()
	oldKey, newKey := rawKey(t), rawKey(t)
	old, err := seal.NewBox(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := seal.NewBox(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	derived, err := seal.DeriveBox("purpose", oldKey)
	if err != nil {
		t.Fatal(err)
	}
	plain, ad := []byte("the position"), []byte("sub_1")
	sealed := old.Seal(plain, ad)
	if sealed == old.Seal(plain, ad) {
		t.Fatal("sealing twice gave the same value: the nonce is not random")
	}
	for _, tc := range []struct {
		name  string
		box   *seal.Box
		value string
		ad    []byte
		opens bool
	}{
		{"its own key", old, sealed, ad, true},
		{"a previous key of a rotated box", rotated, sealed, ad, true},
		{"a rotated box's new value under the old box", old, rotated.Seal(plain, ad), ad, false},
		{"other additional data", old, sealed, []byte("sub_2"), false},
		{"a derived box", derived, sealed, ad, false},
		{"altered", old, flip(t, sealed), ad, false},
		{"truncated", old, sealed[:20], ad, false},
		{"not base64url", old, "!!" + sealed, ad, false},
		{"empty", old, "", ad, false},
	} {
		got, err := tc.box.Open(tc.value, tc.ad)
		switch {
		case tc.opens && (err != nil || !bytes.Equal(got, plain)):
			t.Errorf("%s: Open = %q, %v", tc.name, got, err)
		case !tc.opens && !errors.Is(err, seal.ErrNotSealed):
			t.Errorf("%s: Open = %q, %v; want ErrNotSealed", tc.name, got, err)
		}
	}
	if _, err := seal.NewBox([]byte("short")); err == nil {
		t.Error("a key of the wrong size made a box")
	}
	if _, err := seal.NewBox(); err == nil {
		t.Error("a box without a key")
	}
}

// flip changes one bit of the ciphertext of a sealed value.
func flip(t *testing.T, s string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	return base64.RawURLEncoding.EncodeToString(raw)
}

// FuzzBoxOpen: whatever a value is, Open answers without panicking, and
// nothing opens but what Seal made: under this key only "x" is ever sealed
// (the seed, made again in each fuzzing process), so anything else opening
// would be a forged GCM tag.
func FuzzBoxOpen(f *testing.F) {
	box, err := seal.NewBox(make([]byte, seal.KeySize))
	if err != nil {
		f.Fatal(err)
	}
	made := box.Seal([]byte("x"), nil)
	f.Add(made)
	f.Add("")
	f.Add("AAAA")
	f.Add(made[:len(made)-1] + "A")
	f.Fuzz(func(t *testing.T, value string) {
		plain, err := box.Open(value, nil)
		if err == nil && string(plain) != "x" {
			t.Fatalf("%q opened as %q", value, plain)
		}
	})
}
