package seal_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dispatch-webhooks/dispatch/libs/seal"
)

func keyring(t *testing.T, current string, previous ...string) *seal.Keyring {
	t.Helper()
	cur, err := seal.ParseKey(current)
	if err != nil {
		t.Fatal(err)
	}
	var prev [][]byte
	for _, p := range previous {
		k, err := seal.ParseKey(p)
		if err != nil {
			t.Fatal(err)
		}
		prev = append(prev, k)
	}
	k, err := seal.NewKeyring(cur, prev...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealAndOpen(t *testing.T) {
	t.Parallel()
	oldKey, newKey := seal.NewKey(), seal.NewKey()
	old := keyring(t, oldKey)
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	sealed := old.Seal("sub_1", secret)
	if strings.Contains(sealed, secret) || !strings.HasPrefix(sealed, "sealed:v1:") {
		t.Fatalf("sealed value %q", sealed)
	}
	if sealed == old.Seal("sub_1", secret) {
		t.Fatal("sealing twice gave the same value: the nonce is not random")
	}
	got, err := old.Open("sub_1", sealed)
	if err != nil || got != secret {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := old.Open("sub_2", sealed); err == nil {
		t.Fatal("a secret opened under another subscription's id")
	}
	if got, err := old.Open("sub_1", "plain-legacy-secret"); err != nil || got != "plain-legacy-secret" {
		t.Fatalf("a value stored before sealing: %q, %v", got, err)
	}

	rotated := keyring(t, newKey, oldKey)
	if got, err := rotated.Open("sub_1", sealed); err != nil || got != secret {
		t.Fatalf("the previous key no longer opens: %q, %v", got, err)
	}
	if rotated.Current(sealed) || !rotated.Current(rotated.Seal("sub_1", secret)) {
		t.Fatal("Current does not tell the keys apart")
	}
	if _, err := keyring(t, newKey).Open("sub_1", sealed); !errors.Is(err, seal.ErrUnknownKey) {
		t.Fatalf("a value of a key not configured: %v", err)
	}
	for _, bad := range []string{"sealed:v1:", "sealed:v1:abcd", "sealed:v1:" + strings.Split(sealed, ":")[2] + ":!!", sealed[:len(sealed)-4]} {
		if _, err := rotated.Open("sub_1", bad); err == nil {
			t.Errorf("Open(%q) did not fail", bad)
		}
	}
	for _, bad := range []string{"", "short", strings.Repeat("A", 43)} {
		if _, err := seal.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

func FuzzOpen(f *testing.F) {
	k, _ := seal.NewKeyring(make([]byte, seal.KeySize))
	f.Add("sub", k.Seal("sub", "secret"))
	f.Add("sub", "sealed:v1:00000000:AAAA")
	f.Fuzz(func(t *testing.T, owner, stored string) {
		_, _ = k.Open(owner, stored) // never panics
		if got, err := k.Open(owner, k.Seal(owner, stored)); err != nil || got != stored {
			t.Fatalf("round trip of %q: %q, %v", stored, got, err)
		}
	})
}

// TestReserved: every sealed value is reserved, so no secret a client
// chose can look like one.
func TestReserved(t *testing.T) {
	t.Parallel()
	k := keyring(t, seal.NewKey())
	for s, want := range map[string]bool{
		k.Seal("sub", "whsec_abc"): true,
		"sealed:v2:anything":       true,
		"sealed:":                  true,
		"my-secret-key":            false,
		"whsec_sealed:v1:":         false,
		"Sealed:v1:x":              false,
	} {
		if got := seal.Reserved(s); got != want {
			t.Errorf("Reserved(%q) = %v, want %v", s, got, want)
		}
	}
}
