package signing_test

import (
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

func TestSignStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	s, err := signing.NewSigner(vecSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sign(vecID, time.Unix(vecTS, 0), []byte(vecBody)); got != vecSig {
		t.Fatalf("Sign = %q, want %q", got, vecSig)
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
	current, previous := signing.GenerateSecret(), signing.GenerateSecret()
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
	tests := []struct {
		secret string
		ok     bool
	}{
		{vecSecret, true},
		{signing.GenerateSecret(), true},
		{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", false},
		{"whsec_", false},
		{"whsec_not base64!", false},
		{"whsec_" + strings.Repeat("A", 24), false},         // 18 bytes: too short
		{"whsec_" + strings.Repeat("A", 88), false},         // 66 bytes: too long
		{"whsec_" + strings.Repeat("A", 84) + "AA==", true}, // 64 bytes
	}
	for _, tt := range tests {
		_, err := signing.ParseSecret(tt.secret)
		if (err == nil) != tt.ok {
			t.Errorf("ParseSecret(%q) error = %v, want ok=%v", tt.secret, err, tt.ok)
		}
	}
}

func FuzzSignVerify(f *testing.F) {
	f.Add("evt_1", int64(1614265330), []byte(`{"a":1}`))
	f.Add("", int64(0), []byte{})
	v0 := signing.GenerateSecret()
	signer, err := signing.NewSigner(v0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id string, unix int64, body []byte) {
		if id == "" || unix < 0 {
			return
		}
		ts := time.Unix(unix, 0)
		v, err := signing.NewVerifier([]string{v0}, signing.WithClock(func() time.Time { return ts }))
		if err != nil {
			t.Fatal(err)
		}
		sig := signer.Sign(id, ts, body)
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
