package apikey_test

import (
	"regexp"
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
