package apikey_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/dispatch-webhooks/dispatch/libs/apikey"
)

func TestNewKeysAreRecognisableAndUnique(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^dsp_[a-z2-7]{52}$`)
	seen := map[string]bool{}
	for range 100 {
		key, hash := apikey.New()
		if !shape.MatchString(key) {
			t.Fatalf("key %q does not have the documented shape", key)
		}
		if seen[key] {
			t.Fatal("a key repeated")
		}
		seen[key] = true
		if !apikey.Equal(hash, apikey.HashOf(key)) {
			t.Fatal("the hash of a key differs from the one New returned")
		}
		if apikey.Equal(hash, apikey.HashOf(key+"x")) {
			t.Fatal("two keys share a hash")
		}
		if d := apikey.Display(key); d != key[:10] {
			t.Fatalf("Display(%q) = %q", key, d)
		}
	}
}

func TestWellFormed(t *testing.T) {
	t.Parallel()
	key, _ := apikey.New()
	for k, want := range map[string]bool{
		key:                               true,
		"dsp_" + strings.Repeat("a", 52):  true,
		"dsp_" + strings.Repeat("a", 51):  false,
		"dsp_" + strings.Repeat("a", 53):  false,
		"dsp_" + strings.Repeat("A", 52):  false,
		"dsp_" + strings.Repeat("8", 52):  false,
		"dpl_" + strings.Repeat("a", 52):  false, // a portal token, not a key
		"test-admin-key-0123456789abcdef": false,
		"":                                false,
	} {
		if got := apikey.WellFormed(k); got != want {
			t.Errorf("WellFormed(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestWellFormedPortalToken(t *testing.T) {
	t.Parallel()
	token, _ := apikey.NewPortalToken()
	key, _ := apikey.New()
	for s, want := range map[string]bool{
		token:                            true,
		key:                              false,
		"dpl_" + strings.Repeat("a", 51): false,
		"dpl_" + strings.Repeat("A", 52): false,
	} {
		if got := apikey.WellFormedPortalToken(s); got != want {
			t.Errorf("WellFormedPortalToken(%q) = %v, want %v", s, got, want)
		}
	}
}
