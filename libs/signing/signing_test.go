package signing_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/signing"
)

// The Standard Webhooks reference test vector.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// The same message signed with a plain secret, computed outside Go (Python's
// hmac module, raw key "my-secret-key"), so that the vector does not merely
// repeat this package's own arithmetic.
const (
	plainSecret = "my-secret-key"
	plainSig    = "v1,drRCR7i/rUD0PqIb/DoKqZ4zFj6WxUvEUH2KI0gHpNE="
)

func TestSignVectors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, secret, want string }{
		{"whsec secret (Standard Webhooks reference)", vecSecret, vecSig},
		{"plain secret (raw key)", plainSecret, plainSig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := signing.NewSigner(tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Sign(vecID, time.Unix(vecTS, 0), []byte(vecBody)); got != tt.want {
				t.Fatalf("Sign = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(vecTS, 0)
	other := signing.GenerateSecret()
	ts := strconv.Itoa(vecTS)
	tests := []struct {
		name    string
		secrets []string
		id, ts  string
		sig     string
		body    string
		now     time.Time
		want    error
	}{
		{"valid", []string{vecSecret}, vecID, ts, vecSig, vecBody, now, nil},
		{"valid, plain secret", []string{plainSecret}, vecID, ts, plainSig, vecBody, now, nil},
		{"plain secret is not its whsec reading", []string{plainSecret}, vecID, ts, vecSig, vecBody, now, signing.ErrNoMatch},
		{"changed body", []string{vecSecret}, vecID, ts, vecSig, `{"test": 2432232315}`, now, signing.ErrNoMatch},
		{"changed id", []string{vecSecret}, "msg_other", ts, vecSig, vecBody, now, signing.ErrNoMatch},
		{"wrong secret", []string{other}, vecID, ts, vecSig, vecBody, now, signing.ErrNoMatch},
		{"stale", []string{vecSecret}, vecID, ts, vecSig, vecBody, now.Add(5*time.Minute + time.Second), signing.ErrTimestampTooOld},
		{"future", []string{vecSecret}, vecID, ts, vecSig, vecBody, now.Add(-5*time.Minute - time.Second), signing.ErrTimestampTooNew},
		{"within tolerance", []string{vecSecret}, vecID, ts, vecSig, vecBody, now.Add(4 * time.Minute), nil},
		{"bad timestamp", []string{vecSecret}, vecID, "yesterday", vecSig, vecBody, now, signing.ErrInvalidTimestamp},
		{"missing signature", []string{vecSecret}, vecID, ts, "", vecBody, now, signing.ErrMissingHeader},
		{"unknown version only", []string{vecSecret}, vecID, ts, "v2," + strings.TrimPrefix(vecSig, "v1,"), vecBody, now, signing.ErrNoMatch},
		{"rotation: old secret still accepted", []string{other, vecSecret}, vecID, ts, vecSig, vecBody, now, nil},
		{"rotation: several signatures sent", []string{vecSecret}, vecID, ts, "v1,AAAA " + vecSig, vecBody, now, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := signing.NewVerifier(tt.secrets, signing.WithClock(func() time.Time { return tt.now }))
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(tt.id, tt.ts, tt.sig, []byte(tt.body)); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRotationSignsWithEverySecret(t *testing.T) {
	t.Parallel()
	// A rotation may go from either form to the other.
	current, previous := signing.GenerateSecret(), "an old plain secret"
	s, err := signing.NewSigner(current, previous)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig := s.Sign("evt_1", now, []byte("{}"))
	if n := len(strings.Fields(sig)); n != 2 {
		t.Fatalf("got %d signatures in %q, want 2", n, sig)
	}
	for _, secret := range []string{current, previous} {
		v, err := signing.NewVerifier([]string{secret})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify("evt_1", strconv.FormatInt(now.Unix(), 10), sig, []byte("{}")); err != nil {
			t.Fatalf("a receiver holding one of the secrets must verify: %v", err)
		}
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	generated := signing.GenerateSecret()
	ascii := "x"
	for c := ' '; c <= '~'; c++ {
		ascii += string(c)
	}
	b64 := func(s string) []byte {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, signing.SecretPrefix))
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	tests := []struct {
		name   string
		secret string
		key    []byte // the HMAC key; nil when the secret is invalid
		reason string // part of the error when invalid
	}{
		{"whsec: reference secret", vecSecret, b64(vecSecret), ""},
		{"whsec: generated", generated, b64(generated), ""},
		{"whsec: 24 bytes", "whsec_" + strings.Repeat("A", 32), make([]byte, 24), ""},
		{"whsec: 64 bytes", "whsec_" + strings.Repeat("A", 84) + "AA==", make([]byte, 64), ""},
		{"whsec: nothing after the prefix", "whsec_", nil, "must encode 24 to 64 bytes, not 0"},
		{"whsec: not base64", "whsec_not base64!", nil, "must continue with standard base64"},
		{"whsec: URL-safe base64", "whsec_" + strings.Repeat("-_", 16), nil, "must continue with standard base64"},
		{"whsec: 18 bytes", "whsec_" + strings.Repeat("A", 24), nil, "not 18"},
		{"whsec: 66 bytes", "whsec_" + strings.Repeat("A", 88), nil, "not 66"},
		{"plain: the seed README's secret", "my-secret-key", []byte("my-secret-key"), ""},
		{"plain: base64 without the prefix is used as it is", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", []byte("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), ""},
		{"plain: other case of the prefix", "WHSEC_abcdefgh", []byte("WHSEC_abcdefgh"), ""},
		{"plain: 8 characters", "12345678", []byte("12345678"), ""},
		{"plain: 256 characters", strings.Repeat("x", 256), []byte(strings.Repeat("x", 256)), ""},
		{"plain: every printable ASCII character", ascii, []byte(ascii), ""},
		{"plain: inner spaces", "correct horse battery staple", []byte("correct horse battery staple"), ""},
		{"plain: empty", "", nil, "must be 8 to 256 characters long, not 0"},
		{"plain: 7 characters", "1234567", nil, "must be 8 to 256 characters long, not 7"},
		{"plain: 257 characters", strings.Repeat("x", 257), nil, "not 257"},
		{"plain: leading space", " my-secret-key", nil, "must not start or end with white space"},
		{"plain: trailing newline", "my-secret-key\n", nil, "must not start or end with white space"},
		{"plain: trailing no-break space", "my-secret-key\u00a0", nil, "must not start or end with white space"},
		{"plain: NUL", "my\x00secret-key", nil, "must be printable ASCII, character 3 is a control character"},
		{"plain: tab", "my\tsecret-key", nil, "character 3 is a control character"},
		{"plain: DEL", "my-secret-key\x7f", nil, "character 14 is a control character"},
		{"plain: non-ASCII letter", "my-secrét-key", nil, "must be printable ASCII, character 8 is not ASCII"},
		{"plain: zero-width space", "my-\u200bsecret-key", nil, "character 4 is not ASCII"},
		{"plain: not UTF-8", "my-secret-key\xff", nil, "character 14 is not ASCII"},
		{"plain: 256 characters but more bytes", strings.Repeat("é", 256), nil, "character 1 is not ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := signing.ParseSecret(tt.secret)
			if tt.key != nil {
				if err != nil {
					t.Fatalf("ParseSecret = %v, want the key", err)
				}
				if !bytes.Equal(key, tt.key) {
					t.Fatalf("key = %x, want %x", key, tt.key)
				}
				return
			}
			if !errors.Is(err, signing.ErrInvalidSecret) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("ParseSecret = %v, want ErrInvalidSecret saying %q", err, tt.reason)
			}
			if len(tt.secret) >= signing.MinPlainSecretLength && strings.Contains(err.Error(), tt.secret) {
				t.Fatalf("the error %q shows the secret", err)
			}
			if _, err := signing.NewSigner(signing.GenerateSecret(), tt.secret); !errors.Is(err, signing.ErrInvalidSecret) || !strings.Contains(err.Error(), "secret 1") {
				t.Fatalf("NewSigner = %v, want ErrInvalidSecret naming secret 1", err)
			}
		})
	}
}

// FuzzSignVerify checks, for any secret, that ParseSecret and NewSigner
// agree, that a valid secret's key is what its form says, that signatures
// equal a plain HMAC-SHA256 over that key (what any receiver computes) and
// that they verify, on the message signed only.
func FuzzSignVerify(f *testing.F) {
	f.Add(vecSecret, "evt_1", int64(1614265330), []byte(`{"a":1}`))
	f.Add(signing.GenerateSecret(), "", int64(0), []byte{})
	f.Add(plainSecret, "evt_123", int64(1614265330), []byte(`{"order_id":"12345"}`))
	f.Add("whsec_", "evt_1", int64(1), []byte("{}"))
	f.Add("whsec_short", "evt_1", int64(1), []byte("{}"))
	f.Add(" padded secret ", "evt_1", int64(1), []byte("{}"))
	f.Add("ctrl\x01secret", "evt_1", int64(1), []byte("{}"))
	f.Add(strings.Repeat("é", 256), "evt_1", int64(1), []byte("{}"))
	f.Fuzz(func(t *testing.T, secret, id string, unix int64, body []byte) {
		key, err := signing.ParseSecret(secret)
		signer, serr := signing.NewSigner(secret)
		if (err == nil) != (serr == nil) {
			t.Fatalf("ParseSecret = %v but NewSigner = %v", err, serr)
		}
		if err != nil {
			if !errors.Is(err, signing.ErrInvalidSecret) {
				t.Fatalf("error %v does not wrap ErrInvalidSecret", err)
			}
			return
		}
		if enc, ok := strings.CutPrefix(secret, signing.SecretPrefix); ok {
			want, derr := base64.StdEncoding.DecodeString(enc)
			if derr != nil || !bytes.Equal(key, want) || len(key) < signing.MinSecretBytes || len(key) > signing.MaxSecretBytes {
				t.Fatalf("whsec secret accepted with key %x", key)
			}
		} else if !bytes.Equal(key, []byte(secret)) || strings.TrimSpace(secret) != secret || strings.ContainsFunc(secret, func(r rune) bool { return r < ' ' || r > '~' }) {
			t.Fatalf("plain secret %q accepted with key %x", secret, key)
		}
		if id == "" || unix < 0 {
			return
		}
		ts := time.Unix(unix, 0)
		sig := signer.Sign(id, ts, body)
		h := hmac.New(sha256.New, key)
		h.Write([]byte(id + "." + strconv.FormatInt(unix, 10) + "."))
		h.Write(body)
		if want := "v1," + base64.StdEncoding.EncodeToString(h.Sum(nil)); sig != want {
			t.Fatalf("Sign = %q, a plain HMAC gives %q", sig, want)
		}
		v, err := signing.NewVerifier([]string{secret}, signing.WithClock(func() time.Time { return ts }))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(id, strconv.FormatInt(unix, 10), sig, body); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
		if err := v.Verify(id, strconv.FormatInt(unix, 10), sig, append(body, 'x')); !errors.Is(err, signing.ErrNoMatch) {
			t.Fatalf("signature over a changed body accepted: %v", err)
		}
	})
}

func BenchmarkSign(b *testing.B) {
	s, err := signing.NewSigner(signing.GenerateSecret())
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(strings.Repeat(`{"order_id":42,"total":"12.50"}`, 32)) // about 1 KiB
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s.Sign("evt_123", now, body)
	}
}
